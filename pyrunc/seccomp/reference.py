"""libseccomp as an oracle (tests and bench only; never imported at run time).

Builds the filter runc would build for a parsed Profile, through the PyPI
package `pyseccomp` (ctypes over the system libseccomp), following
runc's InitSeccomp/matchCall step for step, and returns libseccomp's BPF.
"""

from __future__ import annotations

import os
import signal
import tempfile
import time

from pyrunc.seccomp.rules import Profile


class LibseccompHang(Exception):
    """libseccomp did not return (it loops forever on some rule sets)."""


def libseccomp_program_or_hang(profile: Profile, timeout: float = 5.0) -> bytes:
    """libseccomp_program() in a forked child, so a libseccomp that loops forever
    (as 2.5.4 does on some rule sets) cannot hang the caller. Raises OSError with
    libseccomp's errno when it refuses the profile, LibseccompHang on timeout."""
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            os.close(rfd)
            try:
                data = b"P" + libseccomp_program(profile)
            except OSError as err:
                data = b"E" + str(err.errno).encode()
            with os.fdopen(wfd, "wb") as out:
                out.write(data)
        except BaseException:  # noqa: BLE001 - the child must always exit
            code = 1
        finally:
            os._exit(code)
    os.close(wfd)
    chunks = []
    deadline = time.monotonic() + timeout
    with os.fdopen(rfd, "rb") as src:
        os.set_blocking(src.fileno(), False)
        while True:
            try:
                chunk = src.read()
            except BlockingIOError:
                chunk = None
            if chunk:
                chunks.append(chunk)
            elif chunk == b"":
                break
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                raise LibseccompHang
            time.sleep(0.002)
    os.waitpid(pid, 0)
    data = b"".join(chunks)
    if data[:1] == b"E":
        raise OSError(int(data[1:]), "libseccomp refused the profile")
    if data[:1] != b"P":
        raise RuntimeError("libseccomp child failed")
    return data[1:]


def libseccomp_program(profile: Profile, *, binary_tree: bool | None = None) -> bytes:
    """binary_tree None: as runc decides (above 32 syscall entries)."""
    import pyseccomp as ps  # the test extra; wraps the system libseccomp

    tokens = {"x86_64": ps.Arch.X86_64, "x86": ps.Arch.X86, "x32": ps.Arch.X32,
              "aarch64": ps.Arch.AARCH64, "arm": ps.Arch.ARM, "riscv64": ps.Arch.RISCV64,
              "s390x": ps.Arch.S390X, "ppc64le": ps.Arch.PPC64LE, "ppc64": ps.Arch.PPC64,
              "s390": ps.Arch.S390}
    filt = ps.SyscallFilter(profile.default_action)
    native = ps.system_arch()
    wanted = [tokens[a.name] for a in profile.arches]
    if native not in wanted:
        filt.remove_arch(native)  # first: libseccomp refuses to mix byte orders
    for token in wanted:
        if token != native:
            filt.add_arch(token)
    if binary_tree is None:
        binary_tree = sum(len(rule.names) for rule in profile.rules) > 32
    if binary_tree:
        filt.set_attr(ps.Attr.CTL_OPTIMIZE, 2)
    filt.set_attr(ps.Attr.CTL_NNP, 0)
    for rule in profile.rules:
        if rule.action == profile.default_action:
            continue
        for name in rule.names:
            number = ps.resolve_syscall(ps.Arch.NATIVE, name)
            if number == -1:  # __NR_SCMP_ERROR: runc skips unknown names
                continue
            conds = [ps.Arg(a.index, a.op, a.mask if a.op == 7 else a.datum, a.datum if a.op == 7 else 0)
                     for a in rule.args]
            indexes = [a.index for a in rule.args]
            if len(set(indexes)) != len(indexes):
                for cond in conds:
                    filt.add_rule(rule.action, number, cond)
            else:
                filt.add_rule(rule.action, number, *conds)
    with tempfile.TemporaryFile() as out:
        filt.export_bpf(out)
        out.seek(0)
        return out.read()
