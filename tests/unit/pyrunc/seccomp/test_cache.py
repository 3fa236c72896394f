"""The compiled-filter cache (pyrunc/seccomp/cache.py): a hit is exactly what a compile gives,
anything damaged or foreign is a miss, the cache stays bounded, and failing to write it is
not an error."""

from __future__ import annotations

import json
import os

import pytest

from pyrunc import seccomp
from pyrunc.seccomp import cache
from pyrunc.spec import Seccomp, parse_seccomp, replace, to_json

DATA = os.path.join(os.path.dirname(__file__), "..", "..", "..", "data", "seccomp")
CAPS = ["CAP_CHOWN", "CAP_SYS_ADMIN"]


@pytest.fixture(scope="module")
def docker_profile() -> Seccomp:
    with open(os.path.join(DATA, "docker-default.json")) as f:
        return parse_seccomp(json.load(f))


def _entries(d) -> list[str]:
    return sorted(n for n in os.listdir(d) if not n.startswith("."))


def test_hit_equals_compile(docker_profile, tmp_path) -> None:
    plain = seccomp.prepare(docker_profile, bounding_caps=CAPS)
    first = seccomp.prepare(docker_profile, bounding_caps=CAPS, cache_dir=str(tmp_path))
    assert len(_entries(tmp_path)) == 1
    second = seccomp.prepare(docker_profile, bounding_caps=CAPS, cache_dir=str(tmp_path))
    assert plain == first == second and len(plain.program) > 1000


def test_key_covers_every_input(docker_profile, monkeypatch) -> None:
    base = cache.key(docker_profile, CAPS, ".linux.seccomp")
    copy = parse_seccomp(json.loads(json.dumps(to_json(docker_profile))))
    assert cache.key(copy, list(reversed(CAPS)), ".linux.seccomp") == base
    other = replace(docker_profile, default_errno_ret=38)
    assert cache.key(other, CAPS, ".linux.seccomp") != base
    assert cache.key(docker_profile, CAPS[:1], ".linux.seccomp") != base
    assert cache.key(docker_profile, CAPS, ".process.seccomp") != base
    monkeypatch.setattr(cache, "_code_fingerprint", lambda: "another compiler")
    assert cache.key(docker_profile, CAPS, ".linux.seccomp") != base


def test_fingerprint_follows_the_compiler_files() -> None:
    fp = cache._code_fingerprint()
    assert "ruledb.py:" in fp and "syscalls.py:" in fp


@pytest.mark.parametrize("damage", ["flip", "truncate", "header", "empty", "length"])
def test_damaged_entry_is_a_miss_and_rewritten(docker_profile, tmp_path, damage) -> None:
    good = seccomp.prepare(docker_profile, bounding_caps=CAPS, cache_dir=str(tmp_path))
    path = os.path.join(tmp_path, _entries(tmp_path)[0])
    data = open(path, "rb").read()
    header, _, program = data.partition(b"\n")
    broken = {"flip": header + b"\n" + program[:-1] + bytes([program[-1] ^ 1]),
              "truncate": data[:-8],
              "header": b"{not json\n" + program,
              "empty": b"",
              "length": header.replace(b'"length":', b'"length":1') + b"\n" + program}[damage]
    with open(path, "wb") as f:
        f.write(broken)
    k = _entries(tmp_path)[0]
    assert cache.get(str(tmp_path), k) is None
    assert seccomp.prepare(docker_profile, bounding_caps=CAPS, cache_dir=str(tmp_path)) == good
    assert cache.get(str(tmp_path), k) is not None  # the compile rewrote it


def test_bounded(tmp_path) -> None:
    for i in range(cache.MAX_ENTRIES + 5):
        profile = parse_seccomp({"defaultAction": "SCMP_ACT_ALLOW",
                                 "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": i + 1}]})
        seccomp.prepare(profile, cache_dir=str(tmp_path))
    assert len(_entries(tmp_path)) == cache.MAX_ENTRIES


def test_unwritable_cache_is_not_an_error(docker_profile, tmp_path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("a file where the cache dir would be")
    got = seccomp.prepare(docker_profile, bounding_caps=CAPS, cache_dir=str(blocker / "cache"))
    assert got == seccomp.prepare(docker_profile, bounding_caps=CAPS)


def test_invalid_profile_is_never_cached(tmp_path) -> None:
    bad = Seccomp("SCMP_ACT_NOTIFY")  # well-formed, refused by the compiler
    with pytest.raises(Exception) as err:
        seccomp.prepare(bad, cache_dir=str(tmp_path))
    assert "defaultAction" in str(err.value)
    assert not os.path.exists(tmp_path) or _entries(tmp_path) == []


def test_flags_and_listener_survive_the_cache(tmp_path) -> None:
    profile = parse_seccomp({"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_LOG"],
                             "listenerPath": "/run/listener.sock", "listenerMetadata": "meta",
                             "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]})
    first = seccomp.prepare(profile, cache_dir=str(tmp_path))
    hit = seccomp.prepare(profile, cache_dir=str(tmp_path))
    assert first == hit and hit.needs_notify and hit.listener_path == "/run/listener.sock"
    assert hit.flags & 2  # LOG
