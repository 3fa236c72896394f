"""rootfs.plan: the filesystem steps of a container as plain values, computed
in the parent (golden files), and the refusals it raises before anything is made.

The golden files hold `rootfs.describe` of every op, one a line. After a
deliberate change: PYRUNC_UPDATE_GOLDEN=1 rewrites them; review the diff."""

from __future__ import annotations

import json
import os

import pytest

from pyrunc import rootfs, spec as specmod
from pyrunc.errors import ConfigError, SecurityError

HERE = os.path.dirname(os.path.abspath(__file__))
CASES = os.path.join(HERE, "rootfs_cases")
DATA = os.path.join(HERE, "..", "..", "data", "configs")
BUNDLE = "/bundles/b1"

# name -> (config file, plan keyword arguments): runc's default (pyrunc spec), what podman
# and containerd's CRI really sent (captured through a runtime wrapper, tests/data/configs),
# and hand-written edges.
CONFIGS = {
    "runc-default": (None, {}),
    "runc-default-userns": (None, {"bind_devices": True, "kcore": False}),
    "podman-run": (os.path.join(DATA, "podman-run.json"), {}),
    "containerd-sandbox": (os.path.join(DATA, "containerd-sandbox.json"), {}),
    "containerd-container": (os.path.join(DATA, "containerd-container.json"), {}),
    "edges": (os.path.join(CASES, "edges.json"), {"cgroup_ns": True}),
    "dev-bind": (os.path.join(CASES, "dev-bind.json"), {"bind_devices": True}),
}


def _spec(path: str | None, **changes) -> specmod.Spec:
    obj = specmod.default_config() if path is None else json.load(open(path))
    obj.update(changes)
    return specmod.parse(obj)


def _dump(ops) -> str:
    return "".join(rootfs.describe(op) + "\n" for op in ops)


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_plan_matches_golden(name):
    path, kwargs = CONFIGS[name]
    got = _dump(rootfs.plan(_spec(path), BUNDLE, **kwargs))
    golden = os.path.join(CASES, name + ".plan")
    if os.environ.get("PYRUNC_UPDATE_GOLDEN") == "1":
        with open(golden, "w") as f:
            f.write(got)
    with open(golden) as f:
        assert got == f.read()


def test_plan_is_pure_and_repeatable():
    """The same spec gives equal plans (values, not actions), in config order."""
    s = _spec(os.path.join(DATA, "podman-run.json"))
    a, b = rootfs.plan(s, BUNDLE), rootfs.plan(s, BUNDLE)
    assert a == b and hash(a) == hash(b)
    mounts = [op for op in a if op.kind in ("mount", "bind", "cgroup")]
    assert [op.index for op in mounts] == list(range(len(s.mounts)))
    assert all(op.field == f".mounts[{op.index}]" for op in mounts)
    phases = [op.phase for op in a]
    assert phases == sorted(phases)  # BUILD, then AFTER_HOOKS, then LAST


def test_plan_details():
    ops = rootfs.plan(_spec(os.path.join(CASES, "edges.json")), BUNDLE, cgroup_ns=True)
    by_dest = {op.dest: op for op in ops if op.kind in ("mount", "bind", "cgroup")}
    assert by_dest["/data"].source == BUNDLE + "/relative/src"  # joined to the bundle
    assert by_dest["/"].new_root and by_dest["/sys"].guard == "/sys"
    assert by_dest["/etc"].copyup and by_dest["/sys/fs/cgroup"].own_ns
    null = [op for op in ops if op.dest == "/dev/null"]
    assert len(null) == 1 and null[0].field == ".linux.devices[0]" and null[0].uid == 5
    assert [op.dest for op in ops if op.kind == "mask"] == ["/proc/kcore", "/proc/keys"]
    assert ops[-1].kind == "root-readonly" and ops[-1].phase == rootfs.LAST
    no_dev = rootfs.plan(_spec(os.path.join(CASES, "dev-bind.json")), BUNDLE)
    assert not [op for op in no_dev if op.kind in ("device", "symlink")]  # /dev is the host's bind


@pytest.mark.parametrize("mounts, linux, error, text", [
    ([{"destination": "/proc/self", "type": "tmpfs"}], {}, SecurityError, "inside /proc"),
    ([{"destination": "/proc", "type": "tmpfs"}], {}, SecurityError, "must be mounted as proc"),
    ([{"destination": "/x", "options": ["bind"]}], {}, ConfigError, "a bind mount needs a source"),
    ([{"destination": "/x", "type": "tmpfs", "options": ["ro", ""]}], {}, ConfigError, "empty mount option"),
    ([], {"devices": [{"path": "/dev/..", "type": "c", "major": 1, "minor": 3}]}, ConfigError,
     "must be an absolute path naming a file"),
])
def test_plan_refuses_before_anything_is_made(mounts, linux, error, text):
    obj = specmod.default_config()
    obj["mounts"] = mounts
    obj["linux"].update(linux)
    with pytest.raises(error, match=text):
        rootfs.plan(specmod.parse(obj), BUNDLE)


def test_readonly_root_needs_a_mount_namespace():
    s = _spec(None, root={"path": "rootfs", "readonly": True})
    with pytest.raises(ConfigError, match="needs a mount namespace"):
        rootfs.plan(s, BUNDLE, mount_ns=False)
    assert rootfs.plan(s, BUNDLE)[-1].kind == "root-readonly"
