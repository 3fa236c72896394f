"""`pyrunc seccomp compile|check|disasm` and profile resolution."""

from __future__ import annotations

import json
import os

import pytest

from pyrunc.errors import ConfigError
from pyrunc.seccomp import bpf, profiles
from pyrunc.seccomp.arches import ARCHES
from pyrunc.cli import main
from pyrunc.seccomp.tool import compile_verb
from pyrunc.verbs import GlobalOptions

from .oracle import DATA, load_profile

DOCKER = os.path.join(DATA, "docker-default.json")
COMMON = os.path.join(DATA, "containers-common-seccomp.json")


def run(*args: str) -> str:
    import io
    from contextlib import redirect_stderr, redirect_stdout

    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(["seccomp", *args])
    assert code == 0, out.getvalue() + err.getvalue()
    return out.getvalue().strip()


@pytest.mark.parametrize("path", [DOCKER, COMMON])
def test_compile_and_disasm_both_profiles(path: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "filter.bpf"
    run("compile", path, "--arch", "x86_64", "-o", str(out))
    data = out.read_bytes()
    assert len(data) % 8 == 0 and 50 < len(data) // 8 < 4096
    listing = run("disasm", str(out))
    assert listing.splitlines()[0].strip().startswith("0: ld  [4]")
    assert "ret ALLOW" in listing


@pytest.mark.parametrize("path, args, expected", [
    (DOCKER, ["mkdir"], "ALLOW"),
    (DOCKER, ["unshare", "0x10000000"], "ERRNO(1)"),
    (DOCKER, ["mount"], "ERRNO(1)"),
    (DOCKER, ["clone", "0x10000000"], "ERRNO(1)"),
    (DOCKER, ["clone", "0x11"], "ALLOW"),
    (DOCKER, ["clone3"], "ERRNO(38)"),
    (DOCKER, ["personality", "0x100000000"], "ERRNO(1)"),
    (DOCKER, ["personality", "8"], "ALLOW"),
    (DOCKER, ["socket", "40"], "ERRNO(1)"),
    (DOCKER, ["socket", "2"], "ALLOW"),
    (DOCKER, ["socketcall", "1", "--arch", "x86"], "ALLOW"),
    (DOCKER, ["mkdirat", "--arch", "aarch64"], "ALLOW"),
    (DOCKER, ["unshare", "--caps", "CAP_SYS_ADMIN"], "ALLOW"),
    # containers-common leaves clone flags and reboot to capabilities
    (COMMON, ["clone", "0x10000000"], "ALLOW"),
    (COMMON, ["reboot"], "ALLOW"),
    (COMMON, ["read"], "ALLOW"),
    (COMMON, ["0x7fffffff"], "ERRNO(38)"),
])
def test_check(path: str, args: list[str], expected: str) -> None:
    assert run("check", path, *args) == expected


def test_check_counts_instructions() -> None:
    out = run("check", DOCKER, "read", "-v")
    assert out.startswith("ALLOW  (") and out.endswith("instructions)")


def test_check_accepts_config_json_and_oci(tmp_path) -> None:  # type: ignore[no-untyped-def]
    oci = {"defaultAction": "SCMP_ACT_ALLOW",
           "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]}
    (tmp_path / "oci.json").write_text(json.dumps(oci))
    (tmp_path / "config.json").write_text(json.dumps({"ociVersion": "1.0.2", "linux": {"seccomp": oci}}))
    assert run("check", str(tmp_path / "oci.json"), "mkdir") == "ERRNO(13)"
    assert run("check", str(tmp_path / "config.json"), "mkdir") == "ERRNO(13)"


def test_bad_profile_is_one_line_naming_the_field(tmp_path) -> None:  # type: ignore[no-untyped-def]
    bad = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 9, "value": 1, "op": "SCMP_CMP_EQ"}]}]}
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(bad))
    with pytest.raises(ConfigError, match=r"^bad.json: \.syscalls\[0\]\.args\[0\]\.index: "):
        compile_verb(GlobalOptions(), {"profile": str(path)})


def test_docker_resolution_rules() -> None:
    prof = load_profile("docker-default.json")
    arch = ARCHES["x86_64"]
    old, _ = profiles.load_any(prof, arch, kernel=(4, 4))
    new, _ = profiles.load_any(prof, arch, kernel=(6, 1))
    names_old = {n for r in old["syscalls"] if r["action"] == "SCMP_ACT_ALLOW" for n in r["names"]}
    names_new = {n for r in new["syscalls"] if r["action"] == "SCMP_ACT_ALLOW" for n in r["names"]}
    assert "ptrace" in names_new and "ptrace" not in names_old  # includes.minKernel 4.8
    assert new["architectures"] == ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]
    admin, _ = profiles.load_any(prof, arch, ["CAP_SYS_ADMIN"], kernel=(6, 1))
    assert any("setns" in r["names"] for r in admin["syscalls"] if r["action"] == "SCMP_ACT_ALLOW")


def test_containers_common_errno_names() -> None:
    oci, _ = profiles.load_any(load_profile("containers-common-seccomp.json"), ARCHES["x86_64"])
    assert oci["defaultErrnoRet"] == 38
    assert all("errno" not in r and "name" not in r for r in oci["syscalls"])


def test_both_architectures_and_archmap_is_an_error() -> None:
    with pytest.raises(ConfigError, match="archMap"):
        profiles.to_oci({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86"],
                         "archMap": [{"architecture": "SCMP_ARCH_X86_64"}]}, ARCHES["x86_64"], None)


def test_interpreter_and_disassembler_basics() -> None:
    prog = [bpf.Insn(bpf.BPF_LD | bpf.BPF_W | bpf.BPF_ABS, k=0),
            bpf.Insn(bpf.BPF_JMP | bpf.BPF_JEQ | bpf.BPF_K, 0, 1, 7),
            bpf.Insn(bpf.BPF_RET | bpf.BPF_K, k=bpf.RET_ERRNO | 5),
            bpf.Insn(bpf.BPF_RET | bpf.BPF_K, k=bpf.RET_ALLOW)]
    assert bpf.decode(bpf.encode(prog)) == prog
    assert bpf.run(prog, bpf.seccomp_data(7, 0)) == (bpf.RET_ERRNO | 5, 3)
    assert bpf.action_name(bpf.run(prog, bpf.seccomp_data(8, 0))[0]) == "ALLOW"
    assert "jeq #0x7  true:2 false:3" in bpf.disassemble(prog)
    with pytest.raises(bpf.BPFError):
        bpf.run(prog[:2], bpf.seccomp_data(8, 0))
