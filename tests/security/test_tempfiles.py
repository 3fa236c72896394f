"""Issue 11 finding 6: predictable temp files and writes to caller-named paths.

The attacker is a local user who can write to the directory of a file the
runtime will write (a shared /tmp, a world-writable pid-file dir). pyrunc used
to write `--pid-file P` through `.P.tmp<pid>`: a symlink planted at every
likely name sent the pid into any file root can write. Each test plants links
at every name the runtime could use, then checks the canary behind them and
that the runtime still did its job (runc 1.1.5 is the oracle where it has the
behaviour).
"""

from __future__ import annotations

import os
import subprocess

import pytest


def _plant_old_scheme(directory: str, name: str, target: str, count: int = 4000) -> list[str]:
    """Symlinks at `.NAME.tmp<pid>` for the next `count` pids (what the old scheme used)."""
    with open("/proc/sys/kernel/ns_last_pid") as f:
        last = int(f.read())
    with open("/proc/sys/kernel/pid_max") as f:
        pid_max = int(f.read())
    planted = []
    for i in range(1, count + 1):
        link = os.path.join(directory, f".{name}.tmp{(last + i) % pid_max}")
        os.symlink(target, link)
        planted.append(link)
    return planted


def _create(rt, bundle, cid: str, *extra: str) -> subprocess.CompletedProcess:
    """`create` with stdio on files: init inherits them, so a pipe would never reach EOF."""
    err = os.path.join(bundle.path, f"{cid}.stderr")
    with open(err, "w") as f:
        out = subprocess.run(rt.cmd("create", *extra, "-b", bundle.path, cid), stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=f, timeout=60)
    out.stderr = open(err).read()
    return out


def _create_with_pid_file(rt, make_bundle, pid_file) -> str:
    """create with --pid-file; the file must be a regular file holding init's pid."""
    b = make_bundle().args("sleep", "100")
    cid = rt.new_id()
    out = _create(rt, b, cid, "--pid-file", str(pid_file))
    assert out.returncode == 0, out.stderr
    assert pid_file.read_text() == str(rt.init_pid(cid))
    assert not pid_file.is_symlink()
    return cid


def _unexpected(directory: str, allowed: set[str]) -> list[str]:
    return sorted(set(os.listdir(directory)) - allowed)


def test_pid_file_with_planted_temp_names(rt, make_bundle, host, host_dir, tmp_path) -> None:
    victim = host.canary(os.path.join(host_dir, "victim"))
    piddir = tmp_path / "piddir"
    piddir.mkdir()
    planted = _plant_old_scheme(str(piddir), "pid", victim)
    _create_with_pid_file(rt, make_bundle, piddir / "pid")
    assert all(os.path.islink(p) for p in planted), "the planted links are not the runtime's to remove"
    assert _unexpected(str(piddir), {"pid"} | {os.path.basename(p) for p in planted}) == []


@pytest.mark.parametrize("kind", ["link-to-file", "dangling-link", "link-to-dir"])
def test_pid_file_that_is_a_symlink(rt, make_bundle, host, host_dir, tmp_path, kind: str) -> None:
    """The pid file replaces a link at its own name; never writes or creates through it."""
    piddir = tmp_path / "piddir"
    piddir.mkdir()
    if kind == "link-to-file":
        target = host.canary(os.path.join(host_dir, "victim"))
    elif kind == "dangling-link":
        target = os.path.join(host_dir, "created-through-link")
    else:
        target = host_dir
    os.symlink(target, piddir / "pid")
    _create_with_pid_file(rt, make_bundle, piddir / "pid")
    assert not os.path.exists(os.path.join(host_dir, "created-through-link"))
    assert sorted(os.listdir(host_dir)) == (["victim"] if kind == "link-to-file" else [])
    assert _unexpected(str(piddir), {"pid"}) == []


def test_exec_pid_file_with_planted_temp_names(rt, make_bundle, host, host_dir, tmp_path) -> None:
    victim = host.canary(os.path.join(host_dir, "victim"))
    b = make_bundle().args("sleep", "100")
    cid = rt.detach(b)
    piddir = tmp_path / "piddir"
    piddir.mkdir()
    planted = _plant_old_scheme(str(piddir), "epid", victim)
    os.symlink(victim, piddir / "epid")
    out = rt("exec", "--pid-file", str(piddir / "epid"), cid, "true")
    assert out.returncode == 0, out.stderr
    assert (piddir / "epid").read_text().isdigit()
    assert not (piddir / "epid").is_symlink()
    assert _unexpected(str(piddir), {"epid"} | {os.path.basename(p) for p in planted}) == []


def test_log_is_not_created_through_a_dangling_link(rt, make_bundle, host, host_dir, tmp_path) -> None:
    """`--log L` appends to an existing file or link as runc does, but a file is
    only ever created at L itself: a dangling link planted at L must not make
    the runtime create (and fill) the file it points to."""
    rt.oracle_gap("opens --log with O_CREAT and follows a dangling symlink")
    target = os.path.join(host_dir, "created-through-link")
    log = tmp_path / "log"
    os.symlink(target, log)
    out = rt("--log", str(log), "state", "no-such-container")  # any verb that logs an error
    assert out.returncode != 0
    assert not os.path.exists(target)
    # --log is opened before the verb runs, as runc does (issue 12): the
    # command fails on the log, naming why
    assert "dangling symlink" in out.stderr


def test_log_through_an_existing_link_still_works(rt, make_bundle, host, tmp_path) -> None:
    real = tmp_path / "real.log"
    real.write_text("")
    os.symlink(real, tmp_path / "log")
    out = rt("--log", str(tmp_path / "log"), "state", "no-such-container")
    assert out.returncode != 0
    assert "does not exist" in real.read_text()
