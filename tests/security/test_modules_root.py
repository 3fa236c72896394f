"""The security modules' syscall halves, exercised directly in forked children (root):
capability order, fd hygiene, the cwd check, sysctl writes through the private
procfs, and LSM writes refusing a non-procfs target. No runtime involved, so a
failure here points at the module, not at its wiring."""

from __future__ import annotations

import json
import os
import tempfile

import pytest

from pyrunc import capabilities, fds, lsm, sysctl, syscalls
from pyrunc.errors import PyruncError, SecurityError


CHILD_PIPE: list[int] = []


def in_child(fn) -> dict:
    """Run fn() in a forked child; returns {"ok": its JSON result} or {"err": its error text}."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        CHILD_PIPE[:] = [w]
        try:
            result = {"ok": fn()}
        except BaseException as err:  # noqa: BLE001 -- reported to the parent
            result = {"err": f"{type(err).__name__}: {err}"}
        os.write(CHILD_PIPE[0], json.dumps(result).encode())
        os._exit(0)
    os.close(w)
    data = b""
    while chunk := os.read(r, 65536):
        data += chunk
    os.close(r)
    os.waitpid(pid, 0)
    return json.loads(data)


def test_caps_full_order_non_root_with_ambient() -> None:
    plan = capabilities.prepare_caps({
        "bounding": ["CAP_NET_BIND_SERVICE", "CAP_KILL", "CAP_CHOWN"], "effective": ["CAP_NET_BIND_SERVICE"],
        "permitted": ["CAP_NET_BIND_SERVICE", "CAP_KILL"], "inheritable": ["CAP_NET_BIND_SERVICE"],
        "ambient": ["CAP_NET_BIND_SERVICE"]})

    def child():
        capabilities.drop_bounding(plan)
        capabilities.set_keepcaps()
        os.setgroups([])
        os.setresgid(1000, 1000, 1000)
        os.setresuid(1000, 1000, 1000)
        capabilities.clear_keepcaps()
        capabilities.apply_sets(plan)
        capabilities.raise_ambient(plan)
        return capabilities.status_masks()

    got = in_child(child)["ok"]
    assert got["CapBnd"] == plan.mask("bounding")
    assert got["CapPrm"] == plan.mask("permitted")
    assert got["CapEff"] == plan.mask("effective")
    assert got["CapInh"] == plan.mask("inheritable")
    assert got["CapAmb"] == 1 << 10


def test_caps_without_keepcaps_would_lose_permitted() -> None:
    """The control for the order: setuid without keepcaps empties P, and capset then fails."""
    plan = capabilities.prepare_caps({s: ["CAP_KILL"] for s in ("bounding", "effective", "permitted")})

    def child():
        capabilities.drop_bounding(plan)
        os.setresuid(1000, 1000, 1000)
        capabilities.apply_sets(plan)

    assert "capset" in in_child(child)["err"]


def test_caps_root_apply_caps() -> None:
    plan = capabilities.prepare_caps({s: ["CAP_KILL", "CAP_CHOWN"] for s in ("bounding", "effective", "permitted")})
    got = in_child(lambda: (capabilities.apply_caps(plan), capabilities.status_masks())[1])["ok"]
    assert got["CapEff"] == got["CapPrm"] == got["CapBnd"] == 0b100001 and got["CapInh"] == got["CapAmb"] == 0


def test_close_fds_before_exec() -> None:
    def child():
        os.dup2(CHILD_PIPE[0], 100)  # the report pipe, out of the way
        CHILD_PIPE[0] = 100
        syscalls.close_range(3, 99)
        extra = [os.open("/", os.O_RDONLY) for _ in range(6)]  # fds 3..8
        os.set_inheritable(3, False)
        fds.close_fds_before_exec(preserve=1, keep=[8, 100])
        left = fds.open_fds()  # its own directory fd takes the lowest free number, 4
        return {"extra": extra, "left": left, "inheritable": [os.get_inheritable(3), os.get_inheritable(8)]}

    got = in_child(child)["ok"]
    assert got["extra"] == [3, 4, 5, 6, 7, 8]
    assert got["left"] == [0, 1, 2, 3, 4, 8, 100]
    assert got["inheritable"] == [True, False]  # preserved fd inheritable, kept fd close-on-exec


def test_verify_cwd_refuses_a_leaked_host_dir(tmp_path) -> None:
    root = tmp_path / "root"
    root.mkdir()

    def child():
        outside = os.open("/tmp", os.O_RDONLY | os.O_DIRECTORY)
        os.chroot(str(root))
        os.chdir("/")
        fds.verify_cwd("/")
        os.fchdir(outside)  # what process.cwd=/proc/self/fd/N did in CVE-2024-21626
        fds.verify_cwd("/proc/self/fd/3")

    err = in_child(child)["err"]
    assert err.startswith("SecurityError") and "outside of the container" in err


def test_sysctl_write_through_private_procfs() -> None:
    def child():
        syscalls.unshare(syscalls.CLONE_NEWUTS | syscalls.CLONE_NEWIPC)
        plan = sysctl.validate_sysctl({"kernel.domainname": "pyrunc.test", "kernel.shmmni": "1234"}, {"uts", "ipc"})
        fd = sysctl.trusted_proc()
        sysctl.write_sysctls(fd, plan)
        with open("/proc/sys/kernel/domainname") as f, open("/proc/sys/kernel/shmmni") as g:
            return [f.read().strip(), g.read().strip()]

    before = open("/proc/sys/kernel/domainname").read()
    assert in_child(child)["ok"] == ["pyrunc.test", "1234"]
    assert open("/proc/sys/kernel/domainname").read() == before


def test_proc_writes_refuse_non_procfs_and_links(tmp_path) -> None:
    fake = tmp_path / "proc"
    (fake / "sys" / "kernel").mkdir(parents=True)
    (fake / "sys" / "kernel" / "domainname").write_text("")
    fd = os.open(str(fake), os.O_PATH | os.O_DIRECTORY)
    try:
        with pytest.raises(SecurityError, match="not on procfs"):
            sysctl.write_sysctls(fd, {"kernel/domainname": "x"})
        with pytest.raises(SecurityError, match="not on procfs"):
            sysctl.check_procfs(fd, str(fake))
    finally:
        os.close(fd)
    assert (fake / "sys" / "kernel" / "domainname").read_text() == ""
    proc = sysctl.trusted_proc()
    try:
        with pytest.raises(PyruncError):  # `self` is a symlink: never followed
            sysctl.open_proc_file(proc, "self/attr/exec")
    finally:
        os.close(proc)


def test_lsm_label_write_refuses_fake_proc(tmp_path) -> None:
    fake = tmp_path / "proc"
    attr = fake / "1" / "task" / "1" / "attr"
    attr.mkdir(parents=True)
    (attr / "exec").write_text("")
    (attr / "apparmor").mkdir()
    (attr / "apparmor" / "exec").write_text("")
    os.symlink("1/task/1", fake / "thread-self")
    fd = os.open(str(fake), os.O_PATH | os.O_DIRECTORY)
    try:
        with pytest.raises(SecurityError):
            lsm.apply_exec_labels(fd, "pyrunc-test", None)
        with pytest.raises(SecurityError):
            lsm.apply_exec_labels(fd, None, "system_u:system_r:container_t:s0")
    finally:
        os.close(fd)
    assert (attr / "exec").read_text() == "" and (attr / "apparmor" / "exec").read_text() == ""


def test_lsm_label_on_a_kernel_without_the_lsm_is_an_error() -> None:
    proc = sysctl.trusted_proc()
    try:
        if lsm.apparmor_enabled() or lsm.selinux_enabled():
            pytest.skip("this host has AppArmor or SELinux")
        err = in_child(lambda: lsm.apply_exec_labels(proc, None, "system_u:system_r:container_t:s0"))["err"]
        assert "selinuxLabel" in err
    finally:
        os.close(proc)
