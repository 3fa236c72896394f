"""Issue 11 finding 7: host-global scratch paths.

`tmpcopyup` staged its tmpfs at the host's `/tmp/.pyrunc-copyup-<pid>`, and
init is always pid 1: parallel containers collided (`File exists`) and any
local user could block every such container by making that directory (or a
symlink). pyrunc now mounts the tmpfs straight on the destination and copies
through fds, so there is no scratch path at all. The copy itself is the image
author's attack surface: links must stay links, device nodes must be made
again (never read), ownership and modes kept (runc 1.1.5 is the oracle).
"""

from __future__ import annotations

import concurrent.futures
import os
import subprocess

import pytest

COPYUP = {"destination": "/data", "type": "tmpfs", "source": "tmpfs", "options": ["tmpcopyup", "mode=755"]}
LISTING = "cd /data && find . | sort | while read f; do stat -c '%n %F %u %g %a %s %t:%T' \"$f\"; done"


def _tmp_entries() -> set[str]:
    return {n for n in os.listdir("/tmp") if n.startswith(".pyrunc")}


def _alpha_bundle(make_bundle, mount: dict = COPYUP):
    """A bundle whose image has /data/a ("alpha") under a tmpcopyup mount."""
    b = make_bundle()
    b.file("/data/a", "alpha\n")
    b.config["mounts"].append(dict(mount))
    return b


def _image(b, specials: bool = False) -> None:
    data = os.path.join(b.rootfs, "data")
    os.makedirs(os.path.join(data, "sub", "deeper"))
    b.file("/data/a", "alpha\n", 0o640)
    os.chown(os.path.join(data, "a"), 1000, 1000)
    b.file("/data/sub/deeper/b", "beta\n", 0o600)
    b.file("/data/setuid", "#!/bin/sh\n", 0o4755)
    os.chmod(os.path.join(data, "sub"), 0o555)
    os.symlink("/etc/passwd", os.path.join(data, "abs-link"))
    os.symlink("a", os.path.join(data, "rel-link"))
    os.symlink("/nonexistent", os.path.join(data, "dangling"))
    os.lchown(os.path.join(data, "rel-link"), 1000, 1000)
    if specials:  # runc 1.1.5 fails on both (it lchowns a node its copy never made)
        os.mknod(os.path.join(data, "zero"), 0o600 | 0o020000, os.makedev(1, 5))  # char 1:5: never read
        os.chmod(os.path.join(data, "zero"), 0o620)
        os.mkfifo(os.path.join(data, "fifo"), 0o600)
        os.chmod(os.path.join(data, "fifo"), 0o600)
    with open(os.path.join(data, "sparse"), "wb") as f:
        f.seek(256 << 20)
        f.write(b"end")


def test_copy_matches_runc_and_the_image(rt, make_bundle, host) -> None:
    b = make_bundle()
    _image(b)
    b.config["mounts"].append(dict(COPYUP))
    b.sh(LISTING + "; cat /data/a /data/sub/deeper/b; readlink /data/abs-link")
    out = rt.run(b)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert "./a regular file 1000 1000 640 6 0:0" in lines
    assert "./abs-link symbolic link 0 0 777 11 0:0" in lines
    assert "./rel-link symbolic link 1000 1000 777 1 0:0" in lines
    assert "./setuid regular file 0 0 4755 10 0:0" in lines
    assert "./sub directory 0 0 555 60 0:0" in lines or any(
        line.startswith("./sub directory 0 0 555") for line in lines)
    assert lines[-3:] == ["alpha", "beta", "/etc/passwd"]


def test_copy_remakes_nodes_and_keeps_holes(pyrunc_rt, make_bundle, host) -> None:
    """Device nodes and fifos are made again with mknod, never opened (a node of the host's
    disk would be copied, /dev/zero would never end, a fifo would block init); runc 1.1.5
    fails on both and fills holes."""
    b = make_bundle()
    _image(b, specials=True)
    b.config["mounts"].append(dict(COPYUP))
    b.sh("stat -c '%F %a %t:%T' /data/zero /data/fifo; stat -c '%s %b %B' /data/sparse; tail -c 3 /data/sparse")
    out = pyrunc_rt.run(b)
    assert out.returncode == 0, out.stderr
    node, kind, sizes, tail = out.stdout.splitlines()
    assert node == "character special file 620 1:5"
    assert kind == "fifo 600 0:0"
    size, blocks, unit = (int(x) for x in sizes.split())
    assert size == (256 << 20) + 3 and blocks * unit < (1 << 20), sizes
    assert tail == "end"


@pytest.mark.parametrize("planted", ["dir", "symlink-to-host-dir", "file"])
def test_planted_host_scratch_path_changes_nothing(rt, make_bundle, host, host_dir, planted: str) -> None:
    """A local user's entry at the old scratch name must neither block the container nor be used."""
    victim = host.canary(os.path.join(host_dir, "victim"))
    path = "/tmp/.pyrunc-copyup-1"
    if os.path.lexists(path):
        pytest.skip(f"{path} exists on this machine already")
    if planted == "dir":
        os.mkdir(path)
    elif planted == "symlink-to-host-dir":
        os.symlink(host_dir, path)
    else:
        with open(path, "w") as f:
            f.write("x")
    try:
        before = sorted(os.listdir(host_dir))
        b = _alpha_bundle(make_bundle)
        b.sh("cat /data/a")
        out = rt.run(b)
        assert out.returncode == 0, out.stderr
        assert out.stdout == "alpha\n"
        assert sorted(os.listdir(host_dir)) == before and os.path.basename(victim) in before
    finally:
        if os.path.islink(path) or os.path.isfile(path):
            os.unlink(path)
        else:
            os.rmdir(path)


def test_parallel_copyups(rt, make_bundle, host) -> None:
    """Eight containers with tmpcopyup at once: none may see another's scratch space."""
    before = _tmp_entries()
    b = _alpha_bundle(make_bundle)
    b.sh("cat /data/a; echo $$ > /data/mine; sleep 0.3; cat /data/mine")
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        outs = list(pool.map(lambda _: rt.run(b), range(8)))
    for out in outs:
        assert out.returncode == 0, out.stderr
        assert out.stdout.splitlines()[0] == "alpha"
    assert _tmp_entries() == before


def test_readonly_copyup(rt, make_bundle, host) -> None:
    b = _alpha_bundle(make_bundle, dict(COPYUP, options=["tmpcopyup", "ro", "nosuid"]))
    b.sh("cat /data/a; touch /data/new && echo WRITABLE; grep ' /data ' /proc/mounts")
    out = rt.run(b)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == "alpha" and "WRITABLE" not in lines
    options = lines[-1].split()[3].split(",")
    assert "ro" in options and "nosuid" in options


def test_no_host_tmp_entries(pyrunc_rt, make_bundle, host) -> None:
    before = _tmp_entries()
    b = _alpha_bundle(make_bundle)
    b.args("true")
    with subprocess.Popen(pyrunc_rt.cmd("run", "-b", b.path, pyrunc_rt.new_id())) as p:
        seen = set()
        while p.poll() is None:
            seen |= _tmp_entries() - before
    assert p.returncode == 0
    assert not seen, f"scratch entries on the host's /tmp: {seen}"
