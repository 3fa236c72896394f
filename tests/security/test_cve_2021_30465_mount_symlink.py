"""SECURITY-ANCHORS §3 and §4, CVE-2021-30465 / CVE-2024-45310: mount destinations
and missing mount targets behind a symlink that escapes the rootfs.

Deterministic variant: rootfs/mnt is a relative symlink climbing out of the
rootfs to a host path. The mounts (and the directories made for them) must
land inside the rootfs, or the runtime must refuse; the host path must not be
created or mounted over.
"""

from __future__ import annotations

import os


def escaping_link(host_target: str) -> str:
    return "../" * 12 + host_target.lstrip("/")


def test_tmpfs_and_bind_through_escaping_symlink(rt, make_bundle, host, host_dir) -> None:
    target = os.path.join(host_dir, "pyrunc-target")
    b = make_bundle()
    os.symlink(escaping_link(target), os.path.join(b.rootfs, "mnt"))
    data = os.path.join(b.path, "data")
    os.makedirs(data)
    b.config["mounts"] += [{"destination": "/mnt/sub", "type": "tmpfs", "source": "tmpfs"},
                           {"destination": "/mnt", "source": data, "type": "bind", "options": ["bind"]}]
    b.sh("grep -c . /proc/self/mountinfo")
    out = rt.run(b)
    assert not os.path.lexists(target), f"{rt.name} created host {target}: rc={out.returncode} {out.stderr}"
    assert os.listdir(host_dir) == []
    if out.returncode == 0:
        assert os.path.isdir(os.path.join(b.rootfs, target.lstrip("/"))), "mount went neither inside nor refused"


def test_missing_targets_are_made_inside_the_root(rt, make_bundle, host, host_dir) -> None:
    target = os.path.join(host_dir, "vol")
    os.makedirs(target)
    b = make_bundle()
    os.symlink(escaping_link(target), os.path.join(b.rootfs, "vol"))
    b.config["mounts"] += [{"destination": "/vol/new1/new2", "type": "tmpfs", "source": "tmpfs"}]
    b.sh("test -d /vol/new1/new2 && echo inside")
    out = rt.run(b)
    assert os.listdir(target) == [], f"{rt.name}: made {os.listdir(target)} on the host ({out.stderr})"
    if out.returncode == 0:
        assert "inside" in out.stdout
        assert os.path.isdir(os.path.join(b.rootfs, target.lstrip("/"), "new1", "new2"))


def test_absolute_symlink_destination(rt, make_bundle, host, host_dir) -> None:
    target = os.path.join(host_dir, "abs")
    os.makedirs(target)
    b = make_bundle()
    os.symlink(target, os.path.join(b.rootfs, "abs"))
    b.config["mounts"] += [{"destination": "/abs/t", "type": "tmpfs", "source": "tmpfs"}]
    b.sh("touch /abs/t/x && echo wrote")
    out = rt.run(b)
    assert os.listdir(target) == [], f"{rt.name}: wrote {os.listdir(target)} on the host ({out.stderr})"


def test_race_symlink_exchange(rt, make_bundle, host, host_dir) -> None:
    """§3/§4 race: a host-side loop swaps V/x (a dir) and V/y (a symlink to /) with
    renameat2(RENAME_EXCHANGE) while the container binds V at /vol and mounts a tmpfs at
    /vol/x/t/new. 60 runs by default, PYRUNC_STRESS=N for more. Pass: no tmpfs lands on the
    host and nothing is created at /t or /t/new on the host."""
    import threading

    from pyrunc import syscalls

    rt.oracle_gap("CVE-2021-30465 race: the exchange loop makes it create /t on the host's /", dangerous=True)
    runs = int(os.environ.get("PYRUNC_STRESS", "60"))
    assert not os.path.lexists("/t")
    vol = os.path.join(host_dir, "V")
    os.makedirs(os.path.join(vol, "x", "t"))
    os.symlink("/", os.path.join(vol, "y"))
    b = make_bundle()
    os.makedirs(os.path.join(b.rootfs, "vol"))
    b.config["mounts"] += [{"destination": "/vol", "type": "bind", "source": vol, "options": ["rbind"]},
                           {"destination": "/vol/x/t/new", "type": "tmpfs", "source": "tmpfs"}]
    b.sh("true")
    stop = threading.Event()

    def swap() -> None:
        x, y = os.path.join(vol, "x"), os.path.join(vol, "y")
        while not stop.is_set():
            syscalls.renameat2(-100, x, -100, y, syscalls.RENAME_EXCHANGE)

    swapper = threading.Thread(target=swap, daemon=True)
    swapper.start()
    try:
        for _ in range(runs):
            rt.run(b)
            assert not os.path.lexists("/t"), f"{rt.name} created /t on the host"
            assert not host.new_mounts(), f"{rt.name}: {host.new_mounts()}"
    finally:
        stop.set()
        swapper.join(5)
    assert not os.path.lexists("/t")
