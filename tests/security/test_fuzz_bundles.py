"""Fuzzing hostile bundles through `pyrunc run` (issue 18): a valid busybox bundle whose config gets
mounts (binds of a volume directory of the bundle, tmpfs, proc...), devices, masked/readonly
paths, a cwd and args with path tricks (`..`, symlinks in the rootfs
pointing at a host directory, absolute and relative; /proc/self; long and odd names), sysctls and
odd hostnames, a few at a time.

Every run either succeeds or fails with one `pyrunc: ...` line (no traceback), and after it: the host
directory the rootfs links point at is unchanged (nothing created, removed or written through a
link), the bundle outside its rootfs is unchanged, no mount is left on the host (H1, the `host`
fixture checks H1-H4 again at the end), and the state root is empty.
PYRUNC_FUZZ_EXAMPLES=N runs N examples (default: a short run).
"""

from __future__ import annotations

import copy
import json
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pbsec import snapshot_tree

EXAMPLES = int(os.environ.get("PYRUNC_FUZZ_EXAMPLES", "0")) or 25
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=EXAMPLES <= 25,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

# Destinations: "/out" and "/rel" are links in the rootfs to the host directory (absolute and relative)
DESTS = ["/out", "/out/sub", "/out/new/deeper", "/rel", "/rel/x", "/../../x", "/tmp/../../../y", "/proc/self/cwd/z",
         "/dev/../../w", "/tmp//a/./b/", "/", "", "relative/d", "/etc/passwd", "/bin/sh", "/proc", "/proc/sys",
         "/sys/kernel", "/é\u202e", "/" + "n" * 300, "/dev/null/x", "/loop", "/loop/x"]
SOURCES = ["VOL", "VOL/file", "/nonexistent", "tmpfs", "proc", "BUNDLE/config.json", "rootfs", "relative"]
OPTIONS = ["rbind", "bind", "ro", "rro", "nosuid", "mode=755", "size=1m", "rprivate", "idmap", "x-junk", "strictatime",
           "remount", "rec"]
ARGS = [["true"], ["/out/file"], ["../../../bin/true"], ["sh", "-c", "true"], ["/proc/self/exe"], ["/rel/file"],
        ["true", "\u00e9" * 100], [""]]
SYSCTLS = [{"net.ipv4.ip_forward": "1"}, {"kernel.core_pattern": "|/out/file"}, {"../../x": "1"},
           {"net/ipv4/../../../kernel/modprobe": "/out/file"}, {"kernel.domainname": "x"}]


@st.composite
def mutations(draw) -> list[tuple[str, object]]:  # type: ignore[no-untyped-def]
    out = []
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["mount", "mount", "cwd", "args", "masked", "readonly", "device", "sysctl",
                                     "hostname"]))
        if kind == "mount":
            mtype = draw(st.sampled_from(["bind", "tmpfs", "proc", "none", "sysfs"]))
            out.append((kind, {"destination": draw(st.sampled_from(DESTS)), "type": mtype,
                               "source": draw(st.sampled_from(SOURCES)),
                               "options": draw(st.lists(st.sampled_from(OPTIONS), max_size=3, unique=True))}))
        elif kind in ("cwd", "masked", "readonly"):
            out.append((kind, draw(st.sampled_from(DESTS))))
        elif kind == "args":
            out.append((kind, draw(st.sampled_from(ARGS))))
        elif kind == "device":
            out.append((kind, {"path": draw(st.sampled_from(DESTS)), "type": draw(st.sampled_from("cbup")),
                               "major": 1, "minor": 3, "fileMode": 0o666}))
        elif kind == "sysctl":
            out.append((kind, draw(st.sampled_from(SYSCTLS))))
        else:
            out.append((kind, draw(st.sampled_from(["a" * 70, "é", "", "x\ny", "../..", "-"]))))
    return out


def _apply(config: dict, muts: list[tuple[str, object]], host_dir: str, bundle_path: str) -> dict:
    config = copy.deepcopy(config)
    for kind, value in muts:
        if kind == "mount":
            mount = dict(value)  # type: ignore[arg-type]
            mount["source"] = mount["source"].replace("VOL", os.path.join(bundle_path, "vol")).replace(
                "BUNDLE", bundle_path)
            config["mounts"].append(mount)
        elif kind == "cwd":
            config["process"]["cwd"] = value
        elif kind == "args":
            config["process"]["args"] = value
        elif kind == "masked":
            config["linux"]["maskedPaths"].append(value)
        elif kind == "readonly":
            config["linux"]["readonlyPaths"].append(value)
        elif kind == "device":
            config["linux"].setdefault("devices", []).append(value)
        elif kind == "sysctl":
            config["linux"]["sysctl"] = value
        else:
            config["hostname"] = value
    return config


@pytest.fixture
def fuzz_bundle(make_bundle, host_dir):
    b = make_bundle()
    b.args("true")
    os.symlink(host_dir, os.path.join(b.rootfs, "out"))
    os.symlink("../" * 12 + host_dir.lstrip("/"), os.path.join(b.rootfs, "rel"))
    os.symlink("loop", os.path.join(b.rootfs, "loop"))
    os.makedirs(os.path.join(b.path, "vol"))  # what binds take: a mount asked for may write into it
    with open(os.path.join(b.path, "vol", "file"), "w") as fh:
        fh.write("volume\n")
    os.makedirs(os.path.join(host_dir, "sub"))
    for name in ("file", "sub/data"):
        with open(os.path.join(host_dir, name), "w") as fh:
            fh.write("#!/bin/sh\necho host\n")
        os.chmod(os.path.join(host_dir, name), 0o755)
    return b


def _outside_rootfs(bundle) -> dict:
    snap = snapshot_tree(bundle.path)
    return {k: v for k, v in snap.items() if not k.startswith(("rootfs", "vol")) and k != "config.json"
            and not k.endswith(".stderr")}


@FUZZ
@given(mutations())
def test_hostile_bundle(pyrunc_rt, fuzz_bundle, host, host_dir, muts) -> None:
    rt, b = pyrunc_rt, fuzz_bundle
    base = copy.deepcopy(b.config)
    before_host, before_bundle = snapshot_tree(host_dir), _outside_rootfs(b)
    try:
        with open(os.path.join(b.path, "config.json"), "w") as fh:
            json.dump(_apply(base, muts, host_dir, b.path), fh)
        res = rt.run(b, timeout=60)
        if res.returncode != 0:
            assert "Traceback" not in res.stderr, res.stderr
            lines = [line for line in res.stderr.splitlines() if line.strip()]
            assert len(lines) == 1 and lines[0].startswith("pyrunc: "), (muts, res.stderr)
        assert snapshot_tree(host_dir) == before_host, f"the host directory changed: {muts}"
        assert _outside_rootfs(b) == before_bundle, f"the bundle changed outside its rootfs: {muts}"
        assert not host.new_mounts(), f"mounts left: {host.new_mounts()} ({muts})"
        left = [n for n in os.listdir(rt.root) if n != "@seccomp"] if os.path.isdir(rt.root) else []
        assert not left, f"state left: {left} ({muts})"
    finally:
        b.config = base
        b.write()
