"""Unit tests (no root) for mount option planning, namespace planning, state and the fast argv parser."""

from __future__ import annotations

import json
import os
import threading

import pytest

from pyrunc import mountopts, namespaces, syscalls as s
from pyrunc.errors import ConfigError, ContainerExists, ContainerNotFound, PyruncError
from pyrunc.fastcli import _Fallback, parse
from pyrunc.query import tabwrite
from pyrunc.spec import Namespace
from pyrunc.state import State, StateStore, Status, refresh, validate_id


# ------------------------------------------------------------- mount options
def test_mount_flags_set_and_clear():
    o = mountopts.parse(("nosuid", "noexec", "nodev", "ro", "relatime"))
    assert o.flags == s.MS_NOSUID | s.MS_NOEXEC | s.MS_NODEV | s.MS_RDONLY | s.MS_RELATIME
    o = mountopts.parse(("ro", "rw", "suid"))
    assert o.flags == 0 and o.clear & s.MS_RDONLY and o.clear & s.MS_NOSUID


def test_mount_bind_rbind_and_type_bind():
    assert mountopts.parse(("rbind",)).flags == s.MS_BIND | s.MS_REC
    assert mountopts.parse(("bind",)).is_bind and not mountopts.parse(("bind",)).recursive
    assert mountopts.parse((), "bind").is_bind


def test_mount_propagation_and_data():
    o = mountopts.parse(("rprivate", "mode=755", "size=65536k", "nosuid"))
    assert o.propagation == (s.MS_PRIVATE | s.MS_REC,)
    assert o.data == "mode=755,size=65536k"
    assert o.flags == s.MS_NOSUID


def test_mount_recursive_attrs_and_extensions():
    o = mountopts.parse(("rro", "rnosuid", "rnoatime", "tmpcopyup"))
    assert o.attr_set & s.MOUNT_ATTR_RDONLY and o.attr_set & s.MOUNT_ATTR_NOSUID
    assert o.attr_clr & mountopts.MOUNT_ATTR_ATIME_MASK
    assert "tmpcopyup" in o.extensions


def test_mount_empty_option_names_field():
    with pytest.raises(ConfigError, match=r"\.mounts\[3\]\.options\[1\]"):
        mountopts.parse(("ro", ""), field=".mounts[3]")


def test_runc_template_mounts_plan():
    from pyrunc.spec import default_config

    plans = {m["destination"]: mountopts.parse(tuple(m.get("options", ())), m["type"])
             for m in default_config()["mounts"]}
    assert plans["/dev"].data == "mode=755,size=65536k"
    assert plans["/dev"].flags == s.MS_NOSUID | s.MS_STRICTATIME
    assert plans["/sys"].flags == s.MS_NOSUID | s.MS_NOEXEC | s.MS_NODEV | s.MS_RDONLY
    assert plans["/dev/pts"].data == "newinstance,ptmxmode=0666,mode=0620,gid=5"


# ------------------------------------------------------------- namespaces
def test_namespace_plan_flags_and_join_order(tmp_path):
    p = namespaces.plan((Namespace("pid"), Namespace("network"), Namespace("mount"), Namespace("user")))
    assert p.new_user and p.unshare_flags == s.CLONE_NEWPID | s.CLONE_NEWNET | s.CLONE_NEWNS
    f = tmp_path / "ns"
    f.write_text("")
    p = namespaces.plan((Namespace("mount", str(f)), Namespace("user", str(f)), Namespace("uts", str(f))))
    assert [t for t, _ in p.join] == ["user", "uts", "mount"]
    assert p.unshare_flags == 0 and not p.new_user


def test_namespace_plan_errors(tmp_path):
    with pytest.raises(ConfigError, match=r"\.linux\.namespaces\[1\]\.type"):
        namespaces.plan((Namespace("pid"), Namespace("bogus")))
    with pytest.raises(ConfigError, match="duplicate"):
        namespaces.plan((Namespace("pid"), Namespace("pid")))
    with pytest.raises(ConfigError, match=r"\.linux\.namespaces\[0\]\.path"):
        namespaces.plan((Namespace("net" if False else "network", str(tmp_path / "missing")),))


def test_id_map_text():
    from pyrunc.spec import IDMapping

    text = namespaces.id_map_text((IDMapping(0, 100000, 65536), IDMapping(65536, 5, 1)))
    assert text == b"0 100000 65536\n65536 5 1\n"
    assert namespaces.container_to_host_id(70000, (IDMapping(0, 100000, 65536),)) is None
    assert namespaces.container_to_host_id(10, (IDMapping(0, 100000, 65536),)) == 100010


# ------------------------------------------------------------- state
def test_validate_id():
    for ok in ("a", "abc-1.2_3+x", "A" * 100):
        validate_id(ok)
    for bad in ("", ".", "..", "a/b", "a b", "ä"):
        with pytest.raises(PyruncError):
            validate_id(bad)


def _pre_state(cid: str, creator: int | None = None) -> State:
    from pyrunc.state import proc_start_time

    pid = os.getpid() if creator is None else creator
    return State(id=cid, bundle="/b", rootfs="/b/rootfs", created="2026-01-01T00:00:00Z",
                 status=Status.CREATING, creator_pid=pid, creator_start=proc_start_time(pid) or 0)


def test_claim_is_exclusive(tmp_path):
    store = StateStore(str(tmp_path / "root"))
    results = []

    def claim():
        try:
            store.claim(_pre_state("x"))
            results.append("ok")
        except ContainerExists:
            results.append("exists")

    threads = [threading.Thread(target=claim) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count("ok") == 1 and results.count("exists") == 7
    assert os.listdir(tmp_path / "root") == ["x"]  # no staging dir left behind
    assert store.load("x").status is Status.CREATING  # its creator (this process) runs


def test_claim_appears_with_its_pre_state(tmp_path):
    store = StateStore(str(tmp_path))
    d = store.claim(_pre_state("c1"))
    assert d == str(tmp_path / "c1")
    assert sorted(os.listdir(d)) == ["state.json"]
    assert store.ids() == ["c1"]


def test_pre_state_of_a_dead_creator_reads_stopped(tmp_path):
    import subprocess

    dead = subprocess.Popen(["true"])
    dead.wait()
    store = StateStore(str(tmp_path))
    st = _pre_state("c1")
    st.creator_start += 1  # another process that once had this pid
    store.claim(st)
    assert store.load("c1").status is Status.STOPPED
    st2 = State(id="c2", bundle="/b", rootfs="/r", created="t", status=Status.CREATING, creator_pid=dead.pid,
                creator_start=1)
    store.claim(st2)
    assert store.load("c2").status is Status.STOPPED
    assert store.load("c2").oci()["pid"] == 0


def test_sweep_staging_removes_only_dead_creators(tmp_path):
    from pyrunc.state import STAGING, proc_start_time

    store = StateStore(str(tmp_path))
    staging = tmp_path / STAGING
    (staging / f"{os.getpid()}-{proc_start_time(os.getpid())}-aa").mkdir(parents=True)
    (staging / f"{os.getpid()}-{proc_start_time(os.getpid()) + 1}-bb" / "sub").mkdir(parents=True)
    (staging / "garbage").mkdir()
    store.sweep_staging()
    assert os.listdir(staging) == [f"{os.getpid()}-{proc_start_time(os.getpid())}-aa"]


def test_staging_is_not_an_id():
    from pyrunc.state import STAGING, validate_id

    with pytest.raises(PyruncError):
        validate_id(STAGING)


def test_state_roundtrip_and_derived_status(tmp_path):
    import subprocess
    import sys
    import time

    # an "init" waiting on exec.fifo (comm pyrunc[init] until its execve), which "execs" (takes
    # another comm) when told on stdin
    init = subprocess.Popen([sys.executable, "-c", "import sys\n"
                             "open('/proc/self/comm', 'w').write('pyrunc[init]')\n"
                             "sys.stdin.readline(); open('/proc/self/comm', 'w').write('sleep')\n"
                             "sys.stdin.readline()"], stdin=subprocess.PIPE, text=True)

    def comm() -> str:
        with open(f"/proc/{init.pid}/comm") as fh:
            return fh.read().strip()

    while comm() != "pyrunc[init]":
        time.sleep(0.01)

    def execve() -> None:
        init.stdin.write("exec\n")
        init.stdin.flush()
        while comm() != "sleep":
            time.sleep(0.01)

    try:
        _derived_status(tmp_path, init.pid, execve)
    finally:
        init.kill()
        init.wait()


def _derived_status(tmp_path, init_pid: int, execve) -> None:  # type: ignore[no-untyped-def]
    store = StateStore(str(tmp_path))
    d = store.claim(_pre_state("c1"))
    st = State(id="c1", bundle="/b", rootfs="/b/rootfs", created="2026-01-01T00:00:00Z", state_dir=d,
               pid=init_pid, status=Status.CREATED)
    from pyrunc.state import proc_start_time

    st.pid_start = proc_start_time(init_pid)
    store.save(st)
    assert store.load("c1").status is Status.RUNNING        # no exec.fifo: running
    open(st.fifo_path, "w").close()
    assert store.load("c1").status is Status.CREATED        # fifo present, init waits on it: created
    execve()                                                # init exec'd (a start died after releasing it)
    assert store.load("c1").status is Status.RUNNING        # the stale fifo does not make it "created"
    st.pid_start += 1
    store.save(st)
    assert store.load("c1").status is Status.STOPPED        # same pid, other start time
    doc = store.load("c1").oci()
    assert doc["pid"] == 0 and list(doc) == ["ociVersion", "id", "pid", "status", "bundle", "rootfs",
                                             "created", "owner"]
    assert store.ids() == ["c1"]
    store.remove("c1")
    with pytest.raises(ContainerNotFound, match='container "c1" does not exist'):
        store.load("c1")


def test_state_json_has_no_runtime_only_fields(tmp_path):
    st = State(id="c", bundle="/b", rootfs="/r", created="t", state_dir=str(tmp_path))
    doc = json.loads(st.to_json())
    assert "state_dir" not in doc and doc["status"] == "creating"


def test_refresh_dead_pid_is_stopped(tmp_path):
    st = State(id="c", bundle="/b", rootfs="/r", created="t", state_dir=str(tmp_path), pid=2 ** 22 - 1,
               pid_start=1, status=Status.RUNNING)
    assert refresh(st) is Status.STOPPED


# ------------------------------------------------------------- argv and output
def test_fast_parser_runc_forms():
    g, verb, v = parse(["--root", "/r", "--log-format=json", "run", "-d", "-b", "/bnd", "--pid-file=/p", "x"])
    assert (g.root, g.log_format, verb) == ("/r", "json", "run")
    assert v["detach"] and v["bundle"] == "/bnd" and v["pid_file"] == "/p" and v["container_id"] == "x"
    _, verb, v = parse(["kill", "x", "KILL"])
    assert v["signal"] == "KILL"
    _, verb, v = parse(["exec", "-e", "A=1", "--env", "B=2", "x", "sh", "-c", "ls -l"])
    assert v["env"] == ("A=1", "B=2") and v["command"] == ("sh", "-c", "ls -l")


@pytest.mark.parametrize("argv", [["run"], ["run", "--help"], ["frob", "x"], ["kill", "a", "b", "c"],
                                  ["create", "--preserve-fds", "x", "y"], ["--nope", "state", "x"]])
def test_fast_parser_falls_back_to_click(argv):
    with pytest.raises(_Fallback):
        parse(argv)


def test_tabwrite_like_go():
    out = tabwrite([["ID", "PID"], ["a-very-long-container-id", "1"]])
    assert out == "ID" + " " * 25 + "PID\na-very-long-container-id   1\n"


def test_kill_signal_names():
    from pyrunc.kill import parse_signal

    assert parse_signal("9") == parse_signal("KILL") == parse_signal("SIGKILL") == parse_signal("kill") == 9
    assert parse_signal("SIGTERM") == 15
    for bad in ("0", "999", "NOPE", ""):
        with pytest.raises(PyruncError):
            parse_signal(bad)
