"""pybuild top, port, kill, wait and restart (commands/lifecycle.py), with podman as the
oracle: the same output, exit codes and signals."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import select
import shutil
import struct
import subprocess
import sys
import termios
import time

import pytest

from netlib import Pb, free_port
from podmanlib import (SLEEP, ULIMITS, add_data, busybox_pb, container_id as _cid, one_line, podman,  # noqa: F401
                       podman_images, tar_of)
from test_build_common import make_busybox_rootfs, needs_busybox, needs_root

pytestmark = [needs_root, needs_busybox]


def test_top_and_port(pb, podman):
    port = free_port()
    pb("run", "-d", "--name", "web", "-p", f"{port}:1234", "-p", f"127.0.0.1:{free_port()}:53/udp", "busybox",
       *SLEEP)
    top = pb("top", "web").stdout.splitlines()
    assert top[0].split()[:3] == ["UID", "PID", "PPID"] and any("sleep 600" in line for line in top[1:])
    assert [line.split() for line in pb("top", "web", "-o", "pid,comm").stdout.splitlines()][1:] == \
        [[pb("inspect", "-f", "{{.State.Pid}}", "web").stdout.strip(), "sleep"]]
    port2 = free_port()
    theirs = podman.run_d("-p", f"{port2}:1234")
    assert pb("port", "web", "1234").stdout == f"0.0.0.0:{port}\n"
    assert podman("port", theirs, "1234").stdout == f"0.0.0.0:{port2}\n"
    assert pb("port", "web").stdout.splitlines()[0] == f"1234/tcp -> 0.0.0.0:{port}"
    assert podman("port", theirs).stdout.splitlines()[0] == f"1234/tcp -> 0.0.0.0:{port2}"
    assert pb("port", "web", "53/udp").stdout.startswith("127.0.0.1:")
    for args in (("web", "80"), ("web", "1234/udp"), ("nosuch",)):
        assert pb("port", *args, check=False).returncode == podman("port", *(
            (theirs,) + args[1:] if args[0] == "web" else ("nosuch-pbt16",))).returncode == 125
    assert 'failed to find published port "80"' in one_line(pb("port", "web", "80", check=False))
    pb("kill", "web")
    pb("wait", "web")
    for verb in ("top",):
        res = pb(verb, "web", check=False)
        assert res.returncode == 125 and "is not running" in one_line(res)
    assert pb("port", "web").stdout == ""  # as podman: nothing for a container that does not run


# ---- kill, wait, restart -----------------------------------------------------------------------------


def test_kill_and_wait_as_podman(pb, podman):
    pb("run", "-d", "--name", "k", "--network", "none", "busybox", "sh", "-c",
       "trap 'exit 42' USR1; while true; do sleep 0.1; done")
    theirs = podman.run_d("--network", "none")
    for bad in ("FOO", "SIGNOPE", "99"):
        assert podman("kill", "-s", bad, theirs).returncode == 125
        res = pb("kill", "-s", bad, "k", check=False)
        assert res.returncode == 125 and f"invalid signal: {bad}" in one_line(res)
    assert pb("ps", "-q").stdout.strip()  # still running: nothing was sent
    time.sleep(0.3)
    assert pb("kill", "-s", "USR1", "k").stdout == "k\n"
    assert pb("wait", "k").stdout == "42\n"
    assert podman("kill", theirs).stdout.strip() == theirs
    assert podman("wait", theirs).stdout == "137\n"
    pb("run", "-d", "--name", "k2", "--network", "none", "busybox", *SLEEP)
    pb("kill", "k2")
    assert pb("wait", "k2", "k").stdout == "137\n42\n"
    for verb, args in (("kill", ("k",)), ("wait", ("nosuch",)), ("kill", ("nosuch",))):
        res = pb(verb, *args, check=False)
        assert res.returncode == 125, (verb, args)
        one_line(res)
    assert podman("kill", theirs).returncode == podman("wait", "nosuch-pbt16").returncode == 125


def test_wait_reads_the_code_of_a_container_removed_on_exit(pb):
    cid = pb("run", "-d", "--rm", "--network", "none", "busybox", "sh", "-c", "sleep 1; exit 7").stdout.strip()
    assert pb("wait", cid).stdout == "7\n"
    for _ in range(100):
        if not pb("ps", "-aq").stdout:
            break
        time.sleep(0.05)
    assert pb("ps", "-aq").stdout == ""


def test_restart_keeps_changes_ports_and_volumes(pb):
    port = free_port()
    pb("run", "-d", "--rm", "--name", "r", "-p", f"{port}:1234", "-v", "rv:/data", "busybox", "sh", "-c",
       "while true; do echo up | nc -l -p 1234; done")
    pb("exec", "r", "sh", "-c", "echo kept > /root-change; echo vol > /data/v")
    pid1 = pb("inspect", "-f", "{{.State.Pid}}", "r").stdout
    assert pb("restart", "-t", "1", "r").stdout == "r\n"
    info = pb("inspect", "-f", "{{.State.Status}} {{.RestartCount}} {{.State.Pid}}", "r").stdout.split()
    assert info[:2] == ["running", "1"] and info[2] != pid1.strip()
    assert pb("exec", "r", "cat", "/root-change", "/data/v").stdout == "kept\nvol\n"
    from netlib import fetch

    assert fetch("127.0.0.1", port) == b"up\n"
    res = pb("restart", "nosuch", check=False)
    assert res.returncode == 125 and "no such container" in one_line(res)
    waiter = pb.popen("wait", "r")  # --rm: it goes when it exits; the waiter still gets the code
    time.sleep(0.5)
    pb("kill", "r")
    assert waiter.communicate(timeout=60)[0] == "137\n"
