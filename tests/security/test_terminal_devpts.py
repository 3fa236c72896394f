"""Terminals: the pty comes from the container's own devpts, and the process
that sets it up is a host interpreter that gives the container nothing.

Anchors (SECURITY-ANCHORS.md): §9 and runc's 2025 devpts fixes (a /dev/pts
that is not a devpts, a planted or overmounted ptmx: runc now verifies
/dev/pts/ptmx is the devpts ptmx inode on a devpts mount); §11 CVE-2016-9962
(the exec helper while it joins, here with a terminal); §1 "don't import after
pivot_root" for the terminal paths of init and exec.
"""

from __future__ import annotations

import os
import stat

import pytest
from test_cve_2019_5736_exe import EVIL_SCAN, assert_scan_clean
from test_python_isolation import MARK, plant
from ttylib import DEVPTS_SUPER_MAGIC, ConsoleListener, drive


def _image_dev(b, ptmx: str) -> None:
    """No /dev tmpfs and no devpts: the image's own dev/pts, with `ptmx` planted."""
    b.config["mounts"] = [m for m in b.config["mounts"] if not m["destination"].startswith("/dev")]
    pts = os.path.join(b.rootfs, "dev", "pts")
    os.makedirs(pts, exist_ok=True)
    target = os.path.join(pts, "ptmx")
    if ptmx == "file":
        open(target, "w").close()
    elif ptmx == "fifo":
        os.mkfifo(target)
    elif ptmx == "symlink":
        os.symlink("/proc/sysrq-trigger", target)
    elif ptmx == "host-ptmx":  # the host's ptmx device node: a pty of the host's devpts
        os.mknod(target, 0o666 | stat.S_IFCHR, os.makedev(5, 2))
    elif ptmx == "pts-link":
        os.rmdir(pts)
        os.symlink("/proc", pts)


@pytest.mark.parametrize("ptmx", ["file", "fifo", "symlink", "host-ptmx", "pts-link", "bind-over-ptmx"])
def test_pty_only_from_the_containers_devpts(rt, make_bundle, host, tmp_path, ptmx: str) -> None:
    b = make_bundle()
    b.process["terminal"] = True
    if ptmx == "bind-over-ptmx":  # a devpts, with /dev/null bound over its ptmx by the config
        b.config["mounts"].append({"destination": "/dev/pts/ptmx", "type": "bind", "source": "/dev/null",
                                   "options": ["bind"]})
    else:
        _image_dev(b, ptmx)
    b.sh("tty; echo done")
    listener = ConsoleListener(str(tmp_path / "c.sock"))
    try:
        out = rt("run", "-d", "--console-socket", listener.path, "-b", b.path, rt.new_id(), timeout=30)
        if out.returncode == 0:
            listener.wait(20)
    finally:
        listener.close()
    if out.returncode == 0:  # only a pty of the container's devpts is acceptable
        assert listener.master_fs == DEVPTS_SUPER_MAGIC
        assert listener.master_stat.st_dev != os.stat("/dev/pts/ptmx").st_dev, "a pty of the host's devpts"
    else:
        assert len(out.stderr.strip().splitlines()) == 1, out.stderr
        assert not listener.fds
    if rt.name == "pyrunc":
        assert out.returncode != 0 and "/dev/pts" in out.stderr, out.stderr


def test_exec_tty_helpers_expose_nothing(rt, make_bundle, host, tmp_path) -> None:
    """§11 with terminals: while the host runs exec -t (console socket and
    foreground), a scanner in the container looks at every new process's exe
    and fds; nothing of the host may show, and no exe may open."""
    rt.require("exec")
    b = make_bundle()
    b.file("/bin/evil", "#!/bin/sh\n" + EVIL_SCAN, 0o755)
    b.args("/bin/evil")
    cid = rt.detach(b)
    for i in range(15):
        listener = ConsoleListener(str(tmp_path / f"c{i}.sock"))
        try:
            rt("exec", "-d", "-t", "--console-socket", listener.path, cid, "/bin/true")
            listener.wait(10)
        finally:
            listener.close()
        res = drive([*rt.cmd("exec", "-t", cid, "/bin/true")], timeout=30)
        assert res.status == 0 and res.restored, res.text
    assert_scan_clean(b)


def test_exec_tty_process_holds_only_its_pty(rt, make_bundle, host, tmp_path) -> None:
    """No host fd reaches the exec'd process: its fds are the pty slave and nothing else."""
    rt.require("exec")
    b = make_bundle()
    b.args("sleep", "60")
    cid = rt.detach(b)
    listener = ConsoleListener(str(tmp_path / "c.sock"))
    try:
        out = rt("exec", "-d", "-t", "--console-socket", listener.path, cid, "sh", "-c",
                 "cd /proc/self/fd && for f in *; do echo $f $(readlink $f); done")
        text = listener.wait(10).decode(errors="replace")
    finally:
        listener.close()
    assert out.returncode == 0, out.stderr
    lines = sorted(line.split()[0:2] for line in text.replace("\r", "").strip().splitlines())
    # 0-2: the pty; 3: the directory `for f in *` read (busybox sh's own fd, if any)
    assert [line for line in lines if line[0] in ("0", "1", "2")] == [
        ["0", "/dev/pts/0"], ["1", "/dev/pts/0"], ["2", "/dev/pts/0"]], text
    assert all(line[0] in ("0", "1", "2", "3") for line in lines), text


@pytest.mark.parametrize("how", ["run-console-socket", "exec-console-socket", "exec-foreground", "exec-fails"])
def test_terminal_paths_load_no_code_from_the_rootfs(pyrunc_rt, make_bundle, host, tmp_path, how: str) -> None:
    """§1: the terminal steps of init and of the exec process run after the
    container's mount namespace is theirs; they import nothing."""
    b = make_bundle()
    assert plant(b.rootfs) > 300
    listener = ConsoleListener(str(tmp_path / "c.sock"))
    try:
        if how == "run-console-socket":
            b.process["terminal"] = True
            b.sh("echo ran")
            out = pyrunc_rt("run", "-d", "--console-socket", listener.path, "-b", b.path, pyrunc_rt.new_id())
            assert out.returncode == 0, out.stderr
            assert b"ran" in listener.wait(10)
        else:
            b.args("sleep", "60")
            cid = pyrunc_rt.detach(b)
            if how == "exec-console-socket":
                out = pyrunc_rt("exec", "-d", "-t", "--console-socket", listener.path, cid, "echo", "ran")
                assert out.returncode == 0 and b"ran" in listener.wait(10), out.stderr
            elif how == "exec-foreground":
                res = drive(pyrunc_rt.cmd("exec", "-t", cid, "echo", "ran"), timeout=30)
                assert res.status == 0 and "ran" in res.text, res.text
            else:
                res = drive(pyrunc_rt.cmd("exec", "-t", "--cwd", "/nonexistent", cid, "true"), timeout=30)
                assert res.status == 255 and res.restored, res.text
    finally:
        listener.close()
    assert not os.path.exists(os.path.join(b.rootfs, MARK)), open(os.path.join(b.rootfs, MARK)).read()
    assert not os.path.exists("/" + MARK)
