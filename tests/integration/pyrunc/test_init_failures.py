"""Issue 12: no failure of init is silent.

Every step of init after the sync points gets a failure injected, and the
verbs must say so: create/start/run exit non-zero with a message naming the
step, the message is in --log when one is given, and `state` no longer says
the container runs. The seccomp part works from what init really does: an
strace of a run lists the syscalls init makes, before the filter (each one,
denied by the profile, must not matter: the filter comes later) and after it
(only execve: denied, it must be reported by start and run).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess

import pytest

from testlib import PYRUNC



def _deny(bundle, names: list[str], action: str = "SCMP_ACT_ERRNO") -> None:
    bundle.config["linux"]["seccomp"] = {"defaultAction": "SCMP_ACT_ALLOW",
                                         "syscalls": [{"names": names, "action": action}]}


def _strace_init(bundle, tmp_path, cid) -> tuple[list[str], list[str]]:
    """(syscalls init makes before loading the filter, syscalls between the
    filter and the process's own code) for a run of `true`, from strace -f."""
    bundle.config["linux"]["seccomp"] = {"defaultAction": "SCMP_ACT_ALLOW",
                                         "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_ERRNO"}]}
    bundle.set_args("/bin/true")
    log = tmp_path / "strace.log"
    root = tmp_path / "strace-root"
    proc = subprocess.run(["strace", "-f", "-qq", "-o", str(log), PYRUNC, "--root", str(root), "run", "-b",
                           bundle.path, cid], capture_output=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    lines = log.read_text().splitlines()
    loader = next(ln.split()[0] for ln in lines
                  if "seccomp(SECCOMP_SET_MODE_FILTER" in ln and "{len=" in ln and ln.split()[-1] == "0")
    mine = [ln.split(None, 1)[1] for ln in lines if ln.split()[0] == loader]
    calls = [m.group(1) for m in (re.match(r"([a-z0-9_]+)\(", ln) for ln in mine) if m]  # not "<... resumed>"
    at = calls.index("seccomp", calls.index("seccomp") + 1) if _probe_first(mine) else calls.index("seccomp")
    exec_at = calls.index("execve", at)
    return sorted(set(calls[:at])), calls[at + 1:exec_at + 1]


def _probe_first(mine: list[str]) -> bool:
    """pyrunc probes seccomp(2) with a NULL filter (EFAULT) before the real load."""
    loads = [ln for ln in mine if ln.startswith("seccomp(SECCOMP_SET_MODE_FILTER")]
    return len(loads) > 1 and "{len=" not in loads[0]


@pytest.fixture(scope="module")
def init_syscalls(tmp_path_factory, busybox_rootfs):
    if shutil.which("strace") is None:
        pytest.skip("strace is not installed (apt-get install strace)")
    from testlib import Bundle

    tmp = tmp_path_factory.mktemp("strace")
    bundle = Bundle(str(tmp / "bundle"), busybox_rootfs).write()
    return _strace_init(bundle, tmp, "t-strace-init")


def test_nothing_but_execve_runs_after_the_filter(init_syscalls):
    before, between = init_syscalls
    assert between == ["execve"], between
    assert {"close_range", "getcwd", "capset", "setresuid"} <= set(before)  # the ones that used to run after


# What the exec'd /bin/true (busybox, static) needs itself: denying these
# breaks the process, not init, and says nothing about init.
PROCESS_OWN = {"execve", "brk", "arch_prctl", "set_tid_address", "set_robust_list", "rseq", "prlimit64",
               "getuid", "geteuid", "exit_group", "exit", "mprotect", "readlink", "mmap", "munmap",
               "rt_sigprocmask", "rt_sigaction", "getpid", "uname", "write", "ioctl", "fstat", "newfstatat"}


def test_denying_any_syscall_init_makes_before_the_filter_changes_nothing(init_syscalls, pyrunc, bundle, cid):
    """One container, each syscall init makes before the filter denied by it
    at once: with the filter loaded last, init never meets the denial."""
    before, _ = init_syscalls
    denied = sorted(set(before) - PROCESS_OWN)
    assert len(denied) > 20
    _deny(bundle, denied)
    bundle.set_args("/bin/true")
    proc = pyrunc("run", "-b", bundle.path, cid)
    assert proc.returncode == 0, (denied, proc.stderr)


@pytest.mark.parametrize("action", ["SCMP_ACT_ERRNO", "SCMP_ACT_KILL"])
def test_execve_denied_is_reported_by_start_and_run(pyrunc, bundle, cid, tmp_path, action):
    _deny(bundle, ["execve", "execveat"], action)
    bundle.set_args("/bin/true")
    assert pyrunc("create", "-b", bundle.path, cid).returncode == 0
    start = pyrunc("--log", str(tmp_path / "log"), "start", cid)
    if action == "SCMP_ACT_ERRNO":
        assert start.returncode != 0
        assert b'exec: "/bin/true": operation not permitted' in start.stderr
        assert "operation not permitted" in (tmp_path / "log").read_text()
    else:  # killed by SIGSYS inside execve: nothing can write; start sees init die before its exec
        assert start.returncode != 0 and b"killed by signal 31 before or at its execve" in start.stderr
    assert json.loads(pyrunc("state", cid).stdout)["status"] == "stopped"
    assert pyrunc("delete", cid).returncode == 0
    run = pyrunc("run", "-b", bundle.path, cid)
    assert run.returncode != 0 and run.stderr
    assert pyrunc("state", cid).returncode != 0  # run cleaned up


def test_suite_profile_without_close_range(pyrunc, bundle, cid):
    """runtime-tools' default: an allow-list without close_range, no NNP
    (the profile that made init die silently)."""
    base = ["read", "write", "openat", "close", "execve", "exit_group", "brk", "arch_prctl", "mmap", "munmap",
            "set_tid_address", "set_robust_list", "rseq", "prlimit64", "rt_sigaction", "rt_sigprocmask",
            "newfstatat", "fstat", "ioctl", "getuid", "geteuid", "getpid", "readlink", "uname", "mprotect"]
    bundle.config["linux"]["seccomp"] = {"defaultAction": "SCMP_ACT_ERRNO",
                                         "syscalls": [{"names": base, "action": "SCMP_ACT_ALLOW"}]}
    bundle.config["process"]["noNewPrivileges"] = False
    bundle.set_args("/bin/echo", "ran")
    proc = pyrunc("run", "-b", bundle.path, cid)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == b"ran\n"


def test_missing_executable_fails_create(pyrunc, bundle, cid):
    bundle.set_args("/bin/nope")
    proc = pyrunc("create", "-b", bundle.path, cid)
    assert proc.returncode != 0 and b'exec: "/bin/nope": no such file or directory' in proc.stderr
    assert pyrunc("state", cid).returncode != 0


def test_bad_format_fails_start_naming_exec(pyrunc, bundle, cid):
    """An executable file execve refuses (ENOEXEC): known only at execve, after
    create has returned; start says so."""
    with open(os.path.join(bundle.rootfs, "bin", "junk"), "wb") as f:
        f.write(b"\x7fELF garbage")
    os.chmod(os.path.join(bundle.rootfs, "bin", "junk"), 0o755)
    bundle.set_args("/bin/junk")
    assert pyrunc("create", "-b", bundle.path, cid).returncode == 0
    start = pyrunc("start", cid)
    assert start.returncode != 0 and b'exec: "/bin/junk": exec format error' in start.stderr
    assert json.loads(pyrunc("state", cid).stdout)["status"] == "stopped"
    pyrunc("delete", cid)


def test_unreadable_cwd_fails_create(pyrunc, bundle, cid):
    os.makedirs(os.path.join(bundle.rootfs, "locked", "in"))
    os.chmod(os.path.join(bundle.rootfs, "locked"), 0o700)
    bundle.config["process"]["user"] = {"uid": 1000, "gid": 1000}
    bundle.config["process"]["cwd"] = "/locked/in"
    bundle.set_args("true")
    proc = pyrunc("create", "-b", bundle.path, cid)
    assert proc.returncode != 0 and b"cwd" in proc.stderr and b"/locked/in" in proc.stderr
    assert pyrunc("state", cid).returncode != 0


@pytest.mark.parametrize("kind,verb", [("prestart", "create"), ("createRuntime", "create"),
                                       ("createContainer", "create"), ("startContainer", "start")])
def test_failing_hook_fails_its_verb(pyrunc, bundle, cid, tmp_path, kind, verb):
    bundle.config["hooks"] = {kind: [{"path": "/bin/sh", "args": ["sh", "-c", "echo broke >&2; exit 3"]}]}
    bundle.set_args("true")
    log = tmp_path / "log"
    if verb == "start":
        assert pyrunc("create", "-b", bundle.path, cid).returncode == 0
    proc = pyrunc("--log", str(log), verb, *(("-b", bundle.path) if verb == "create" else ()), cid)
    assert proc.returncode != 0
    assert f"{kind} hook #0".encode() in proc.stderr and b"exit status 3: broke" in proc.stderr
    assert f"{kind} hook #0" in log.read_text()
    state = pyrunc("state", cid)
    assert state.returncode != 0 or json.loads(state.stdout)["status"] == "stopped"
    pyrunc("delete", "-f", cid)


def test_failing_start_container_hook_fails_run(pyrunc, bundle, cid):
    bundle.config["hooks"] = {"startContainer": [{"path": "/bin/false"}]}
    bundle.set_args("true")
    proc = pyrunc("run", "-b", bundle.path, cid)
    assert proc.returncode != 0 and b"startContainer hook #0" in proc.stderr
    assert pyrunc("state", cid).returncode != 0


def test_notify_listener_failure_is_reported(pyrunc, bundle, cid):
    """A notify profile loads before ready (its fd must reach create): the
    listener it cannot reach fails create, naming it."""
    bundle.config["linux"]["seccomp"] = {"defaultAction": "SCMP_ACT_ALLOW",
                                         "listenerPath": "/nonexistent/listener.sock",
                                         "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_NOTIFY"}]}
    bundle.set_args("true")
    proc = pyrunc("create", "-b", bundle.path, cid)
    assert proc.returncode != 0 and b"listener" in proc.stderr
    assert pyrunc("state", cid).returncode != 0


def test_exec_failure_fails_run(pyrunc, bundle, cid):
    with open(os.path.join(bundle.rootfs, "bin", "junk"), "wb") as f:
        f.write(b"\x7fELF garbage")
    os.chmod(os.path.join(bundle.rootfs, "bin", "junk"), 0o755)
    bundle.set_args("/bin/junk")
    proc = pyrunc("run", "-b", bundle.path, cid)
    assert proc.returncode != 0 and b"exec format error" in proc.stderr
    assert pyrunc("state", cid).returncode != 0
