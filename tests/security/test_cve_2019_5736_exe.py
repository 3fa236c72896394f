"""SECURITY-ANCHORS §1 and §11, CVE-2019-5736 / CVE-2016-9962, and the Python analogue
of issue 6 §3a: no container process can open the runtime's executable (for
pyrunc: the host Python interpreter) for writing.

Why the interpreter-level tests use a *copy* of python3.11: this very test
runs on /usr/bin/python3.11, which therefore stays busy (ETXTBSY) and would
make every write attempt fail for the wrong reason. A private copy that only
the runtime under test runs is idle once the runtime exits, so an unguarded
copy really is writable (the control tests show it) and a guarded one must
fail with EROFS/EPERM. Nothing is ever written: files are opened O_APPEND.
"""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import sys
import time

import pytest

from seclib import DOCKER_CAPS
from testlib import install_commands
from pyrunc import exeguard


@pytest.fixture
def interpreter_copy(host_dir):
    """A private copy of the interpreter (its own inode), installed as pip would install the
    commands for it: host_dir/inst/bin/{python3.11,pyrunc,pybuild,pyrunc-boot}."""
    inst = os.path.join(host_dir, "inst")
    os.makedirs(os.path.join(inst, "bin"))
    copy = os.path.join(inst, "bin", "python3.11")
    shutil.copy2(os.path.realpath(sys.executable), copy)
    install_commands(inst, copy)
    return copy


def _entry(interpreter_copy: str) -> str:
    return os.path.join(os.path.dirname(interpreter_copy), "pyrunc")


def _run_briefly(argv: list[str], **kw) -> tuple[int, int]:
    """Start `argv` (a python that sleeps), grab an O_RDONLY fd of /proc/PID/exe, wait for it to exit."""
    proc = subprocess.Popen(argv, **kw)
    try:
        for _ in range(100):
            try:
                fd = os.open(f"/proc/{proc.pid}/exe", os.O_RDONLY | os.O_CLOEXEC)
                break
            except FileNotFoundError:
                time.sleep(0.01)
        else:
            raise AssertionError("process vanished")
    finally:
        proc.wait(timeout=30)
    return fd, proc.returncode


def _reopen_for_write(fd: int) -> int | None:
    try:
        w = os.open(f"/proc/self/fd/{fd}", os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)
    except OSError as err:
        return err.errno
    os.close(w)
    return None


SLEEP = ["-I", "-S", "-c", "import time; time.sleep(0.2)"]


def test_control_unguarded_copy_is_writable_through_exe(interpreter_copy) -> None:
    fd, _ = _run_briefly([interpreter_copy, *SLEEP])
    assert _reopen_for_write(fd) is None  # this is the hole the guard closes
    os.close(fd)


def test_detached_readonly_mount_blocks_reopen_for_write(interpreter_copy) -> None:
    before = open("/proc/self/mountinfo").read()
    mfd = exeguard.detached_readonly_mount(interpreter_copy)
    fd, rc = _run_briefly([f"/proc/self/fd/{mfd}", *SLEEP], pass_fds=[mfd], executable=f"/proc/self/fd/{mfd}")
    assert rc == 0
    os.close(mfd)
    assert open("/proc/self/mountinfo").read() == before  # attached nowhere: nothing on the host
    assert os.fstatvfs(fd).f_flag & os.ST_RDONLY
    assert _reopen_for_write(fd) == errno.EROFS
    with pytest.raises(OSError) as err:  # nor can it be linked elsewhere and written there
        os.link(f"/proc/self/fd/{fd}", os.path.join(os.path.dirname(interpreter_copy), "hardlink"),
                follow_symlinks=True)
    assert err.value.errno in (errno.EXDEV, errno.EROFS, errno.ENOENT)
    os.close(fd)


def test_sealed_memfd_blocks_writes(interpreter_copy) -> None:
    mfd = exeguard.sealed_copy(interpreter_copy)
    fd, rc = _run_briefly([f"/proc/self/fd/{mfd}", *SLEEP], pass_fds=[mfd],
                          executable=f"/proc/self/fd/{mfd}")
    assert rc == 0
    os.close(mfd)
    try:
        w = os.open(f"/proc/self/fd/{fd}", os.O_WRONLY | os.O_CLOEXEC)
    except OSError as err:
        assert err.errno in (errno.EPERM, errno.EACCES)
    else:
        with pytest.raises(OSError) as err:
            os.pwrite(w, b"\0", 0)
        assert err.value.errno == errno.EPERM
        os.close(w)
    os.close(fd)


def test_waiting_init_exe_is_guarded(rt, make_bundle, host) -> None:
    cid = rt.create(make_bundle().args("true"))
    pid = rt.init_pid(cid)
    guard = exeguard.exe_guard(pid)
    assert guard is not None, f"{rt.name}: init's /proc/{pid}/exe -> {os.readlink(f'/proc/{pid}/exe')} is writable"


def _created(rt, make_bundle, name: str) -> tuple[str, int]:
    cid = rt.create(make_bundle(name).args("true"))
    return cid, rt.init_pid(cid)


# Listing /proc/1/fd is allowed to root (CAP_DAC_OVERRIDE) even when init is non-dumpable;
# following an entry (readlink, open) is what non-dumpability forbids.
PROBE = ("readlink /proc/1/exe && echo EXE-READABLE; "
         "for f in /proc/1/fd/*; do readlink $f && echo FD-READABLE; done; "
         "cat /proc/1/environ >/dev/null && echo ENV-READABLE; ( exec 4>>/proc/1/exe ) && echo EXE-WRITABLE; "
         "echo probed")


def test_waiting_init_is_nondumpable(rt, make_bundle, host) -> None:
    """A second container in the first one's pid namespace (Docker caps, no CAP_SYS_PTRACE)."""
    rt.oracle_gap("its init is dumpable while it waits in exec.fifo (exe, fds and environ readable)")
    _cid, pid = _created(rt, make_bundle, "ctr1")
    b = make_bundle("ctr2")
    b.config["linux"]["namespaces"] = [n if n["type"] != "pid" else {"type": "pid", "path": f"/proc/{pid}/ns/pid"}
                                       for n in b.config["linux"]["namespaces"]]
    b.sh(PROBE)
    out = rt.run(b)
    assert "probed" in out.stdout, out.stderr
    for word in ("EXE-READABLE", "FD-READABLE", "ENV-READABLE", "EXE-WRITABLE"):
        assert word not in out.stdout, f"{rt.name}: {out.stdout}"


def test_waiting_init_with_cap_sys_ptrace(rt, make_bundle, host) -> None:
    """With CAP_SYS_PTRACE non-dumpability no longer helps: the exe must be the guarded view/memfd."""
    _cid, pid = _created(rt, make_bundle, "ctr1")
    b = make_bundle("ctr2")
    b.config["linux"]["namespaces"] = [n if n["type"] != "pid" else {"type": "pid", "path": f"/proc/{pid}/ns/pid"}
                                       for n in b.config["linux"]["namespaces"]]
    b.process["capabilities"] = {s: DOCKER_CAPS + ["CAP_SYS_PTRACE"] for s in ("bounding", "effective", "permitted")}
    b.sh(PROBE)
    out = rt.run(b)
    assert "probed" in out.stdout, out.stderr
    assert "EXE-WRITABLE" not in out.stdout
    exe = os.readlink(f"/proc/{pid}/exe")
    assert exeguard.exe_guard(pid) is not None, f"{rt.name}: the waiting init's exe {exe} is writable"


EVIL_PY = """
import os
fd = os.open("/proc/self/exe", os.O_RDONLY)
os.dup2(fd, 7)
os.execv("/bin/sh", ["sh", "-c", {loop!r}])
"""
EVIL_LOOP = ("i=0; while [ $i -lt 100 ]; do "
             "if ( exec 4>>/proc/self/fd/7 ) 2>>/err.log; then echo OPENED-FOR-WRITE > /evil.log; exit 0; fi; "
             "i=$((i+1)); sleep 0.1; done; echo refused > /evil.log")


def test_proc_self_exe_as_process_args(pyrunc_rt, make_bundle, host, interpreter_copy) -> None:
    """T2: args ["/proc/self/exe"] runs the runtime's interpreter inside the container; it keeps an fd
    on itself, execs a shell, and retries a write open after the runtime has exited."""
    b = make_bundle()
    # an image with glibc and a Python stdlib (the host's, read-only): the interpreter can run in it
    for d in ("/usr/lib", "/usr/lib64"):
        os.makedirs(os.path.join(b.rootfs, d.lstrip("/")), exist_ok=True)
        b.config["mounts"].append({"destination": d, "type": "bind", "source": d, "options": ["rbind", "ro"]})
    os.symlink("usr/lib", os.path.join(b.rootfs, "lib"))
    os.symlink("usr/lib64", os.path.join(b.rootfs, "lib64"))
    b.args("/proc/self/exe", "-I", "-S", "-c", EVIL_PY.format(loop=EVIL_LOOP))
    cli = [_entry(interpreter_copy), "--root", pyrunc_rt.root]  # the command, installed for the copy
    cid = pyrunc_rt.new_id()
    for verb in (["create", "-b", b.path, cid], ["start", cid]):
        with open(os.path.join(b.path, "cli.stderr"), "w+") as err:
            rc = subprocess.run([*cli, *verb], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
                                timeout=60).returncode
            err.seek(0)
            assert rc == 0, err.read()
    log = os.path.join(b.rootfs, "evil.log")
    for _ in range(200):
        if os.path.exists(log) and open(log).read().strip():
            break
        time.sleep(0.1)
    verdict = open(log).read().strip() if os.path.exists(log) else "no log"
    errors = open(os.path.join(b.rootfs, "err.log")).read() if os.path.exists(os.path.join(b.rootfs, "err.log")) else ""
    assert verdict == "refused", f"interpreter reachable for writing: {verdict}; {errors[-300:]}"
    assert "Read-only file system" in errors or "Operation not permitted" in errors, errors[-300:]


def test_proc_self_exe_through_exec(pyrunc_rt, make_bundle, host, interpreter_copy) -> None:
    """T2 through `pyrunc exec`: the exec helper is the runtime's interpreter too."""
    b = make_bundle()
    for d in ("/usr/lib", "/usr/lib64"):
        os.makedirs(os.path.join(b.rootfs, d.lstrip("/")), exist_ok=True)
        b.config["mounts"].append({"destination": d, "type": "bind", "source": d, "options": ["rbind", "ro"]})
    os.symlink("usr/lib", os.path.join(b.rootfs, "lib"))
    os.symlink("usr/lib64", os.path.join(b.rootfs, "lib64"))
    b.args("sleep", "60")
    cli = [_entry(interpreter_copy), "--root", pyrunc_rt.root]
    cid = pyrunc_rt.new_id()
    for verb in (["run", "-d", "-b", b.path, cid],
                 ["exec", "-d", cid, "/proc/self/exe", "-I", "-S", "-c", EVIL_PY.format(loop=EVIL_LOOP)]):
        with open(os.path.join(b.path, "cli.stderr"), "w+") as err:
            rc = subprocess.run([*cli, *verb], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
                                timeout=60).returncode
            err.seek(0)
            assert rc == 0, err.read()
    log = os.path.join(b.rootfs, "evil.log")
    for _ in range(200):
        if os.path.exists(log) and open(log).read().strip():
            break
        time.sleep(0.1)
    verdict = open(log).read().strip() if os.path.exists(log) else "no log"
    assert verdict == "refused", f"interpreter reachable for writing through exec: {verdict}"


EVIL_SCAN = r"""
while [ ! -e /stop ]; do
  for d in /proc/[0-9]*; do
    p=${d#/proc/}
    [ "$p" = "$$" ] && continue
    t=$(readlink $d/exe 2>/dev/null) || continue
    [ -n "$t" ] || continue
    [ -e "$t" ] && continue
    if ( exec 3<$d/exe ) 2>/dev/null; then
      echo "opened-path $p $t" >> /evil.log
      if ( exec 3<$d/exe; exec 4>>/proc/self/fd/3 ) 2>/dev/null; then echo "opened-for-write $p $t" >> /evil.log; fi
    fi
    for f in $d/fd/*; do
      l=$(readlink $f 2>/dev/null) || continue
      case "$l" in /*) [ -e "$l" ] || echo "host-fd $p $l" >> /evil.log;; esac
    done
  done
done
echo scanned >> /evil.log
"""


def test_exec_helpers_expose_no_host_exe(rt, make_bundle, host) -> None:
    """§1 step 3 and §11: /bin/evil scans every new pid while the host runs many execs."""
    rt.require("exec")
    b = make_bundle()
    b.file("/bin/evil", "#!/bin/sh\n" + EVIL_SCAN, 0o755)
    b.args("/bin/evil")
    cid = rt.detach(b)
    for _ in range(50):
        rt("exec", cid, "/bin/true")
    assert_scan_clean(b)


def assert_scan_clean(b) -> None:
    """Stop EVIL_SCAN in bundle `b` and check its log: nothing opened, no host fd seen."""
    open(os.path.join(b.rootfs, "stop"), "w").close()
    for _ in range(100):
        if "scanned" in b.read("/evil.log"):
            break
        time.sleep(0.1)
    log = b.read("/evil.log")
    assert "scanned" in log
    assert "opened" not in log and "host-fd" not in log, log[:2000]
