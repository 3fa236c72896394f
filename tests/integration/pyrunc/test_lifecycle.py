"""create/start/run/state/list/kill/delete with real containers, pyrunc and runc side by side."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time

import pytest


def _status(rt, cid) -> str:
    proc = rt("state", cid)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)["status"]


def test_run_exit_code_and_output(runtime, bundle, cid):
    bundle.set_args("sh", "-c", "echo out; echo err >&2; exit 7")
    proc = runtime("run", "-b", bundle.path, cid)
    assert proc.returncode == 7
    assert proc.stdout == b"out\n"
    assert b"err\n" in proc.stderr
    assert runtime("state", cid).returncode != 0  # deleted after run


def test_run_pid1_and_hostname(runtime, bundle, cid):
    bundle.config["hostname"] = "box1"
    bundle.set_args("sh", "-c", "echo $$; hostname")
    proc = runtime("run", "-b", bundle.path, cid, check=True)
    assert proc.stdout.split() == [b"1", b"box1"]


def _wait_running(rt, cid) -> None:
    for _ in range(200):
        proc = rt("state", cid)
        if proc.returncode == 0 and json.loads(proc.stdout)["status"] == "running":
            return
        time.sleep(0.05)
    raise AssertionError(f"{cid} never ran")


def test_signal_exit_status_is_128_plus_n(runtime, bundle, cid):
    bundle.set_args("sleep", "30")
    proc = subprocess.Popen([runtime.binary, "--root", runtime.root, "run", "-b", bundle.path, cid])
    runtime.ids.add(cid)
    _wait_running(runtime, cid)
    runtime("kill", cid, "KILL", check=True)
    assert proc.wait(timeout=10) == 128 + 9


def test_create_start_state_delete(runtime, bundle, cid):
    bundle.set_args("sleep", "30")
    runtime("create", "-b", bundle.path, cid, check=True)
    st = json.loads(runtime("state", cid).stdout)
    assert st["status"] == "created" and st["pid"] > 0 and st["id"] == cid
    assert st["bundle"] == bundle.path and st["rootfs"] == bundle.rootfs
    assert list(st)[:7] == ["ociVersion", "id", "pid", "status", "bundle", "rootfs", "created"]
    runtime("start", cid, check=True)
    assert _status(runtime, cid) == "running"
    again = runtime("start", cid)
    assert again.returncode != 0
    not_stopped = runtime("delete", cid)
    assert not_stopped.returncode != 0
    runtime("kill", cid, "KILL", check=True)
    for _ in range(50):
        if _status(runtime, cid) == "stopped":
            break
        time.sleep(0.05)
    assert _status(runtime, cid) == "stopped"
    assert json.loads(runtime("state", cid).stdout)["pid"] == 0
    runtime("delete", cid, check=True)
    assert runtime("state", cid).returncode != 0


def test_start_holds_init_before_releasing_it(pyrunc, bundle, cid, tmp_path):
    """`start` opens init's pidfd before the fifo: the fifo releases init, and a `true` can
    exit and be reaped (containerd's shim is a subreaper) before a later pidfd_open, which
    failed with ESRCH ("start: No such process") under docker about one run in fifteen."""
    import shutil

    if shutil.which("strace") is None:
        pytest.skip("strace is not installed")
    bundle.set_args("true")
    pyrunc("create", "-b", bundle.path, cid, check=True)
    trace = tmp_path / "trace"
    out = subprocess.run(["strace", "-f", "-qq", "-e", "trace=pidfd_open,openat", "-o", str(trace),
                          pyrunc.binary, "--root", pyrunc.root, "start", cid],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    calls = [line for line in trace.read_text().splitlines() if "pidfd_open(" in line or "exec.fifo" in line]
    assert calls and "pidfd_open(" in calls[0], calls


def test_delete_created_container(runtime, bundle, cid):
    bundle.set_args("true")
    runtime("create", "-b", bundle.path, cid, check=True)
    pid = json.loads(runtime("state", cid).stdout)["pid"]
    runtime("delete", cid, check=True)
    assert not os.path.exists(f"/proc/{pid}/stat") or b" Z " in open(f"/proc/{pid}/stat", "rb").read()


def test_delete_force_running(runtime, bundle, cid):
    bundle.set_args("sleep", "30")
    runtime("run", "-d", "-b", bundle.path, cid, check=True)
    assert _status(runtime, cid) == "running"
    runtime("delete", "-f", cid, check=True)
    assert runtime("state", cid).returncode != 0


def test_kill_signal_forms(pyrunc, bundle, cid):
    bundle.set_args("sleep", "30")
    pyrunc("run", "-d", "-b", bundle.path, cid, check=True)
    assert pyrunc("kill", cid, "NOPE").returncode != 0
    pyrunc("kill", cid, "9", check=True)
    for _ in range(50):
        if _status(pyrunc, cid) == "stopped":
            break
        time.sleep(0.05)
    assert pyrunc("kill", cid, "KILL").returncode != 0  # not running any more
    pyrunc("delete", cid, check=True)


def test_list_formats(pyrunc, bundle, cid):
    bundle.set_args("sleep", "30")
    assert pyrunc("list", "-f", "json").stdout == b"null\n"
    pyrunc("create", "-b", bundle.path, cid, check=True)
    table = pyrunc("list").stdout.decode().splitlines()
    assert table[0].split() == ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]
    assert table[1].split()[0] == cid and table[1].split()[2] == "created"
    assert pyrunc("list", "-q").stdout.decode() == cid + "\n"
    docs = json.loads(pyrunc("list", "-f", "json").stdout)
    assert docs[0]["id"] == cid and docs[0]["owner"] == "root"
    pyrunc("delete", "-f", cid, check=True)


def test_list_matches_runc_layout(tmp_path, bundle):
    """Column layout equal to runc's tabwriter output for the same container set."""
    import shutil

    if not shutil.which("runc"):
        pytest.skip("runc not installed")
    from pyrunc.query import tabwrite

    rows = [["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"],
            ["abc", "12", "created", "/tmp/x", "2026-01-01T00:00:00.000000001Z", "root"]]
    text = tabwrite(rows)
    assert text.splitlines()[0] == "ID          PID         STATUS      BUNDLE      CREATED                          OWNER"


def test_pid_file_and_run_from_parent_folder(pyrunc, bundle, tmp_path):
    bundle.set_args("sh", "-c", "exit 3")
    name = "t-" + os.path.basename(str(tmp_path))[-8:].replace("_", "")
    parent = os.path.dirname(bundle.path)
    os.rename(bundle.path, os.path.join(parent, name))
    proc = pyrunc("run", name, cwd=parent)
    assert proc.returncode == 3, proc.stderr
    pidfile = tmp_path / "pid"
    pyrunc("create", "--pid-file", str(pidfile), "-b", os.path.join(parent, name), name, check=True)
    assert int(pidfile.read_text()) == json.loads(pyrunc("state", name).stdout)["pid"]
    pyrunc("delete", "-f", name, check=True)


def test_concurrent_create_one_winner(pyrunc, bundle, cid):
    bundle.set_args("sleep", "30")
    results = []

    def go():
        results.append(pyrunc("create", "-b", bundle.path, cid).returncode)

    threads = [threading.Thread(target=go) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results).count(0) == 1, results
    assert _status(pyrunc, cid) == "created"
    pyrunc("delete", "-f", cid, check=True)


def test_run_forwards_signals(pyrunc, bundle, cid):
    bundle.set_args("sh", "-c", "trap 'echo got-term; exit 42' TERM; while true; do sleep 0.1; done")
    proc = subprocess.Popen([pyrunc.binary, "--root", pyrunc.root, "run", "-b", bundle.path, cid],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    pyrunc.ids.add(cid)
    _wait_running(pyrunc, cid)
    time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    out, _err = proc.communicate(timeout=10)
    assert proc.returncode == 42
    assert b"got-term" in out


def test_seccomp_filter_cached_under_the_state_root(pyrunc, bundle, cid):
    """The second container with the same profile reads the compiled filter (one entry under
    --root/@seccomp), still enforces it, and `list` does not take the cache for a container."""
    data = os.path.join(os.path.dirname(__file__), "..", "..", "data", "seccomp", "docker-default.json")
    with open(data) as f:
        profile = json.load(f)
    bundle.config["linux"]["seccomp"] = profile
    bundle.config["process"]["noNewPrivileges"] = True
    bundle.set_args("sh", "-c", "unshare -U true 2>/dev/null && echo ESCAPED || echo blocked")
    for i in range(2):
        out = pyrunc("run", "-b", bundle.path, f"{cid}-{i}", check=True)
        assert out.stdout.decode().strip() == "blocked"
    cache = os.path.join(pyrunc.root, "@seccomp")
    assert len([n for n in os.listdir(cache) if not n.startswith(".")]) == 1
    listed = pyrunc("list", "-q", check=True).stdout.decode().split()
    assert listed == []


def test_not_executable_is_permission_denied(runtime, bundle, cid):
    """Go's exec.LookPath, as runc: a path that exists but is not an executable file is EACCES's text
    (podman maps it to 126), a missing one ENOENT's (127)."""
    os.makedirs(os.path.join(bundle.rootfs, "etc"), exist_ok=True)
    with open(os.path.join(bundle.rootfs, "etc", "plain"), "w") as f:
        f.write("not a program\n")
    bundle.set_args("/etc/plain")
    out = runtime("run", "-b", bundle.path, cid)
    assert out.returncode != 0 and b"permission denied" in out.stderr.lower(), out.stderr
    bundle.set_args("/etc/missing")
    out = runtime("run", "-b", bundle.path, cid + "-2")
    assert out.returncode != 0 and b"no such file or directory" in out.stderr.lower(), out.stderr
