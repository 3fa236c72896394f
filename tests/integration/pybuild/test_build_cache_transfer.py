"""--cache-to / --cache-from: the build cache moves through a registry or a directory, so a fresh store
(a fresh machine) rebuilds without running any RUN step; with mounts=true the contents of
RUN --mount=type=cache directories move too."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from pybuild.store import Store

PYBUILD = os.path.join(os.path.dirname(sys.executable), "pybuild")
ENV = {**os.environ, "PYBUILD_REGISTRY_BACKOFF": "0.01", "SOURCE_DATE_EPOCH": "1700000000"}


def pb(root, *args, check=True):
    proc = subprocess.run([PYBUILD, "--root", root, *args], capture_output=True, text=True, timeout=300, env=ENV)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


@pytest.fixture(scope="module")
def base(registry, tmp_path_factory, busybox_rootfs):
    root = str(tmp_path_factory.mktemp("base") / "store")
    pb(root, "import", busybox_rootfs, "-t", "busybox", "-c", 'CMD ["sh"]')
    ref = f"{registry.url}/cache/busybox:1"
    pb(root, "push", "busybox", ref)
    return ref


def ran(proc, word: str) -> bool:
    """The RUN step printed `word` (a line of its own, not the echoed instruction)."""
    return word in {line.strip() for line in proc.stderr.splitlines()}


def _context(tmp_path, base_ref: str, arg: str = "one"):
    ctx = tmp_path / f"ctx-{arg}"
    ctx.mkdir()
    (ctx / "data.txt").write_text("payload\n")
    (ctx / "Dockerfile").write_text(f"""FROM {base_ref} AS deps
RUN echo RAN-DEPS && echo deps > /deps
FROM {base_ref}
COPY data.txt /data.txt
COPY --from=deps /deps /deps
RUN echo RAN-ONE && echo one > /one
ENV MODE=test
ARG FLAVOUR={arg}
RUN --mount=type=cache,target=/var/cache/app sh -c 'if [ -f /var/cache/app/warm ]; then echo CACHE-WARM; \\
else echo CACHE-COLD; echo x > /var/cache/app/warm; fi; echo RAN-TWO $FLAVOUR > /two'
""")
    return ctx


@pytest.mark.parametrize("kind", ["registry", "local"])
def test_fresh_store_rebuilds_from_exported_cache_without_running(registry, base, tmp_path, kind):
    ctx = _context(tmp_path, base)
    if kind == "registry":
        to = from_ = f"type=registry,ref={registry.url}/cache/app:{tmp_path.name[-8:]}"
        to += ",mode=max"
    else:
        to = f"type=local,dest={tmp_path / 'cache'},mode=max"
        from_ = f"type=local,src={tmp_path / 'cache'}"
    first = pb(str(tmp_path / "one"), "build", "-t", "app", "--cache-to", to, str(ctx))
    assert ran(first, "RAN-ONE") and ran(first, "RAN-DEPS")
    fresh = str(tmp_path / "two")
    second = pb(fresh, "build", "-t", "app", "--cache-from", from_, str(ctx))
    assert not any(ran(second, w) for w in ("RAN-ONE", "RAN-DEPS", "CACHE-COLD", "CACHE-WARM")), second.stderr
    assert second.stderr.count("--> CACHED") == 7
    assert second.stdout == first.stdout  # the same image ID
    assert Store(fresh).resolve("app").digest == Store(str(tmp_path / "one")).resolve("app").digest


def test_mode_min_exports_only_the_target_stage(registry, base, tmp_path):
    ctx = _context(tmp_path, base)
    pb(str(tmp_path / "one"), "build", "--cache-to", f"type=local,dest={tmp_path / 'cache'}", str(ctx))
    index = json.load(open(tmp_path / "cache" / "index.json"))
    layout = Store(str(tmp_path / "cache"), create=False)
    manifest = json.loads(layout.read_blob(index["manifests"][0]["digest"]))
    config = json.loads(layout.read_blob(manifest["config"]["digest"]))
    texts = json.dumps(config["steps"])
    assert "deps" in texts  # the target's COPY --from result holds /deps ...
    fresh = str(tmp_path / "two")
    second = pb(fresh, "build", "--cache-from", f"type=local,src={tmp_path / 'cache'}", str(ctx))
    assert ran(second, "RAN-DEPS")            # ... but the deps stage itself was not exported (min)
    assert not ran(second, "RAN-ONE")


def test_cache_mount_contents_travel_with_mounts_true(registry, base, tmp_path):
    ref = f"type=registry,ref={registry.url}/cache/mounts:1"
    first = pb(str(tmp_path / "one"), "build", "--cache-to", ref + ",mounts=true", str(_context(tmp_path, base)))
    assert ran(first, "CACHE-COLD")
    # another FLAVOUR: the last RUN misses the step cache and runs, with the imported cache mount
    other = _context(tmp_path, base, arg="two")
    fresh = str(tmp_path / "two")
    second = pb(fresh, "build", "--cache-from", ref, str(other))
    assert ran(second, "CACHE-WARM") and not ran(second, "RAN-ONE"), second.stderr
    # without mounts=true the cache mount does not travel
    pb(str(tmp_path / "one"), "build", "--cache-to", ref.replace("mounts:1", "nomounts:1"),
       str(_context(tmp_path, base, arg="three")))
    third = pb(str(tmp_path / "three"), "build", "--cache-from", ref.replace("mounts:1", "nomounts:1"),
               str(_context(tmp_path, base, arg="four")))
    assert ran(third, "CACHE-COLD")


def test_missing_cache_is_a_warning_and_bad_spec_an_error(registry, base, tmp_path):
    ctx = _context(tmp_path, base)
    out = pb(str(tmp_path / "s"), "build", "--cache-from", f"type=registry,ref={registry.url}/cache/none:1",
             str(ctx))
    assert "[warning] --cache-from" in out.stderr and "manifest unknown" in out.stderr
    bad = pb(str(tmp_path / "s"), "build", "--cache-to", "type=s3,bucket=x", str(ctx), check=False)
    assert bad.returncode == 1 and bad.stderr.strip().splitlines()[-1].startswith("pybuild: --cache-to")
