import pytest

from pyrunc.cgroups import hierarchy, systemd
from pyrunc.errors import CgroupError, ConfigError

HYBRID = """\
25 1 0:22 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755
26 25 0:23 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw
27 25 0:24 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,name=systemd
28 25 0:25 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct
29 25 0:26 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
30 1 0:5 / /proc rw - proc proc rw
"""


def test_parse_hybrid():
    h = hierarchy.parse_mountinfo(HYBRID)
    assert h.mode == "hybrid"
    assert h.unified == "/sys/fs/cgroup/unified"
    assert h.v1 == {"name=systemd": "/sys/fs/cgroup/systemd", "cpu": "/sys/fs/cgroup/cpu,cpuacct",
                    "cpuacct": "/sys/fs/cgroup/cpu,cpuacct", "memory": "/sys/fs/cgroup/memory"}


def test_parse_v1_only():
    text = "\n".join(line for line in HYBRID.splitlines() if "cgroup2" not in line)
    assert hierarchy.parse_mountinfo(text).mode == "v1"


def test_resolve():
    own = {"memory": "/user.slice/x", "": "/init.scope"}
    assert hierarchy.resolve("/pyrunc/a", "memory", own) == "/pyrunc/a"
    assert hierarchy.resolve("a/b", "memory", own) == "/user.slice/x/a/b"
    assert hierarchy.resolve("a", "", own) == "/init.scope/a"
    assert hierarchy.resolve("../../../../a", "memory", own) == "/user.slice/x/a"  # runc's CleanPath
    assert hierarchy.resolve("a", "cpu", own) == "/a"


@pytest.mark.parametrize("path, memory, cpu", [
    ("/", "/", "/"), ("//", "/", "/"), ("/x/../..", "/", "/"), ("/./", "/", "/"), ("//x//y/", "/x/y", "/x/y"),
    (".", "/user.slice/x", "/"), ("..", "/user.slice/x", "/"), ("a/../..", "/user.slice/x", "/"),
    ("../a", "/user.slice/x/a", "/a"),
])
def test_resolve_cleans_like_runc(path, memory, cpu):
    own = {"memory": "/user.slice/x"}
    assert hierarchy.resolve(path, "memory", own) == memory
    assert hierarchy.resolve(path, "cpu", own) == cpu


def test_systemd_parse():
    p = systemd.parse("machine.slice:libpod:abc", "abc")
    assert (p.slice, p.unit) == ("machine.slice", "libpod-abc.scope")
    assert systemd.parse("", "id1").unit == "pyrunc-id1.scope"
    with pytest.raises(ConfigError, match="slice:prefix:name"):
        systemd.parse("/a/b", "x")
    with pytest.raises(ConfigError, match="not a slice name"):
        systemd.parse("foo:p:n", "x")


@pytest.mark.skipif(systemd.running(), reason="systemd runs on this host")
def test_systemd_not_running_is_clear():
    from pyrunc import cgroups

    with pytest.raises(CgroupError, match="systemd is not running"):
        cgroups.new_manager("system.slice:pyrunc:x", "x", systemd=True)


def test_colon_path_without_systemd_flag():
    from pyrunc import cgroups

    with pytest.raises(CgroupError, match="needs --systemd-cgroup"):
        cgroups.new_manager("system.slice:pyrunc:x", "x")


def test_state_round_trip():
    from pyrunc import cgroups
    from pyrunc.cgroups.v1 import V1Manager
    from pyrunc.cgroups.v2 import V2Manager

    m1 = V1Manager({"memory": "/sys/fs/cgroup/memory/p/x"}, created=["/sys/fs/cgroup/memory/p"], path="/p/x")
    again = cgroups.load_manager(m1.to_state())
    assert again.to_state() == m1.to_state()
    m2 = V2Manager("/p/x", mount="/sys/fs/cgroup/unified")
    again2 = cgroups.load_manager(m2.to_state())
    assert again2.dir == "/sys/fs/cgroup/unified/p/x" and again2.to_state() == m2.to_state()
    with pytest.raises(CgroupError):
        cgroups.load_manager({"version": "v3"})


@pytest.mark.parametrize("state", [
    {"version": "v1"}, {"version": "v1", "paths": ["x"]}, {"version": "v1", "paths": {"memory": 1}},
    {"version": "v2", "path": "/x"}, {"version": "v2", "path": "/x", "mount": "/m", "created": "/x"},
    {"version": "v1", "paths": {}, "created": [1]},
])
def test_load_manager_rejects_malformed_state(state):
    from pyrunc import cgroups

    with pytest.raises(CgroupError, match="state.json"):
        cgroups.load_manager(state)


@pytest.mark.parametrize("path", ["/", "//", "/x/../..", "/./"])
def test_root_paths_are_refused_before_any_io(path, monkeypatch):
    from pyrunc import cgroups

    monkeypatch.setattr(hierarchy, "detect", lambda: hierarchy.parse_mountinfo(HYBRID))
    with pytest.raises(ConfigError, match=r"\.linux\.cgroupsPath: .* resolves to the root"):
        cgroups.new_manager(path, "x")


def test_relative_path_at_the_runtimes_root_is_refused(monkeypatch):
    from pyrunc import cgroups

    monkeypatch.setattr(hierarchy, "detect", lambda: hierarchy.parse_mountinfo(HYBRID))
    monkeypatch.setattr(hierarchy, "own_cgroups", lambda: {"memory": "/user.slice/x", "cpu": "/"})
    with pytest.raises(ConfigError, match="resolves to the root"):
        cgroups.new_manager("..", "x")
    m = cgroups.new_manager("a/../../b", "x")
    assert m.paths["memory"] == "/sys/fs/cgroup/memory/user.slice/x/b"
