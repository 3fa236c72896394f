"""SECURITY-ANCHORS §2, CVE-2024-21626: a leaked host fd + process.cwd = /proc/self/fd/N.

The runtime is started with host directories open on fds 7, 8 and 9 (as a
careless caller would leak them). No cwd of the form /proc/self/fd/N may put
the container's process on the host: each run either fails, or runs with its
cwd inside the container and never sees the host canary. The container's
process holds no fd beyond 0, 1, 2.
"""

from __future__ import annotations

import os
import subprocess

import pytest

UP = "../" * 12


def leaky(rt, host_dir: str, *args: str) -> subprocess.CompletedProcess:
    wrapper = f'exec 7</sys/fs/cgroup 8</ 9<{host_dir}; exec "$@"'
    return subprocess.run(["/bin/sh", "-c", wrapper, "sh", *rt.cmd(*args)], capture_output=True, text=True,
                          timeout=60)


@pytest.mark.parametrize("n", [3, 4, 5, 6, 7, 8, 9, 10, 12, 16, 20, 30])
def test_cwd_through_leaked_fd(rt, make_bundle, host, host_dir, n: int) -> None:
    secret = f"host-secret-{n}-{os.getpid()}"
    host.canary(os.path.join(host_dir, "hostname-canary"), secret + "\n")
    b = make_bundle()
    b.process["cwd"] = f"/proc/self/fd/{n}"
    rel = host_dir.lstrip("/")
    b.sh(f"pwd; ls {UP} > /out 2>&1; cat {UP}{rel}/hostname-canary; cat /proc/self/fd/{n}/{rel}/hostname-canary")
    b.write()
    out = leaky(rt, host_dir, "run", "-b", b.path, rt.new_id())
    assert secret not in out.stdout + out.stderr
    if out.returncode == 0:
        pwd = out.stdout.splitlines()[0] if out.stdout else ""
        assert pwd.startswith("/") and "unreachable" not in pwd, out.stdout


def test_only_stdio_reaches_the_container(rt, make_bundle, host, host_dir) -> None:
    """Looked at from the host, so no shell or `ls` of the container adds fds of its own."""
    b = make_bundle().args("sleep", "30")
    cid = rt.new_id()
    wrapper = f'exec 7</sys/fs/cgroup 8</ 9<{host_dir}; exec "$@"'
    rc = subprocess.run(["/bin/sh", "-c", wrapper, "sh", *rt.cmd("run", "-d", "-b", b.path, cid)],
                        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                        timeout=60).returncode
    assert rc == 0
    pid = rt.init_pid(cid)
    fds = {fd: os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")}
    assert sorted(fds) == ["0", "1", "2"], fds


def test_exec_cwd_through_leaked_fd(rt, make_bundle, host, host_dir) -> None:
    rt.require("exec")
    secret = f"host-secret-exec-{os.getpid()}"
    host.canary(os.path.join(host_dir, "hostname-canary"), secret + "\n")
    cid = rt.detach(make_bundle().args("sleep", "30"))
    rel = host_dir.lstrip("/")
    for n in (3, 4, 5, 6, 7, 8, 9, 10):
        out = leaky(rt, host_dir, "exec", "--cwd", f"/proc/self/fd/{n}", cid, "sh", "-c",
                    f"pwd; cat {UP}{rel}/hostname-canary")
        assert secret not in out.stdout + out.stderr, n
