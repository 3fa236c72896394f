"""Docker / containers-common seccomp profiles → a plain OCI `spec.Seccomp` for this host.

`resolve` works on the typed record (config.seccomp checked its shape): as moby
(`profiles/seccomp.setupSeccomp`) and containers-common do, the `archMap` entry of
the native arch gives the arch list, errno names become numbers, and
`includes`/`excludes` are evaluated against the native arch (Go spelling), the
bounding capabilities and the running kernel. For an OCI profile it changes nothing.
Clients send such profiles in config.json too, so create and exec resolve every profile.

The tools (`pyrunc seccomp`) accept three shapes of JSON file: an OCI `linux.seccomp`
object, a whole config.json (its `linux.seccomp`, with the bounding set of `process`),
or a Docker/containers-common profile; `load` reads any of them.
"""

from __future__ import annotations

import errno
import os
from typing import Any

from pyrunc.errors import ConfigError
from pyrunc.seccomp.arches import Arch, go_name
from pyrunc.spec import Seccomp, Syscall, SyscallFilter

# Docker's default capability set (moby oci/caps/defaults.go), used for a
# profile that stands alone.
DOCKER_DEFAULT_CAPS = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
)
_DOCKER_KEYS = {"archMap", "defaultErrno"}
_RULE_KEYS = {"name", "errno", "includes", "excludes", "comment"}


def is_docker_profile(obj: dict[str, Any]) -> bool:
    if _DOCKER_KEYS & obj.keys():
        return True
    return any(isinstance(r, dict) and _RULE_KEYS & r.keys() for r in obj.get("syscalls") or [])


def kernel_version(release: str | None = None) -> tuple[int, int]:
    release = release or os.uname().release
    parts = release.split("-")[0].split(".")
    try:
        return int(parts[0]), int(parts[1]) if len(parts) > 1 else 0
    except ValueError:
        raise ConfigError("", f"cannot parse kernel release {release!r}") from None


def load(obj: Any, arch: Arch, caps: list[str] | None = None,
         kernel: tuple[int, int] | None = None, source: str = "profile") -> tuple[Seccomp, str]:
    """Any accepted shape → (the profile resolved for `arch`, field path for errors)."""
    from pyrunc.spec import parse_seccomp

    if not isinstance(obj, dict):
        raise ConfigError("", "a seccomp profile must be a JSON object", source)
    if "linux" in obj or "ociVersion" in obj:
        seccomp = (obj.get("linux") or {}).get("seccomp")
        if seccomp is None:
            raise ConfigError(".linux.seccomp", "absent", source)
        if caps is None:
            caps = ((obj.get("process") or {}).get("capabilities") or {}).get("bounding") or []
        field = ".linux.seccomp"
    else:
        seccomp, field = obj, ""
        if caps is None and is_docker_profile(obj):
            caps = list(DOCKER_DEFAULT_CAPS)
    typed = parse_seccomp(_file_form(seccomp, field, source), field, source)
    return resolve(typed, arch, caps, kernel, field, source), field


def load_any(obj: Any, arch: Arch, caps: list[str] | None = None,
             kernel: tuple[int, int] | None = None, source: str = "profile") -> tuple[dict[str, Any], str]:
    """`load` as JSON: (OCI linux.seccomp object, field path for errors)."""
    from pyrunc.record import to_json

    seccomp, field = load(obj, arch, caps, kernel, source)
    return to_json(seccomp), field  # type: ignore[return-value]


def to_oci(profile: dict[str, Any], arch: Arch, caps: list[str] | None,
           kernel: tuple[int, int] | None = None, field: str = "", source: str = "profile") -> dict[str, Any]:
    """A Docker/containers-common profile object resolved for this host, as OCI JSON."""
    from pyrunc.record import to_json
    from pyrunc.spec import parse_seccomp

    typed = parse_seccomp(_file_form(profile, field, source), field, source)
    return to_json(resolve(typed, arch, caps, kernel, field, source))  # type: ignore[return-value]


def _file_form(obj: Any, field: str, source: str) -> Any:
    """What a profile file may say that config.json may not: Go's `null` for an absent
    value, and moby's older `name` for a one-name rule."""
    if not isinstance(obj, dict):
        return obj
    out = {k: v for k, v in obj.items() if v is not None}
    if isinstance(out.get("archMap"), list):
        out["archMap"] = [{k: v for k, v in e.items() if v is not None} if isinstance(e, dict) else e
                          for e in out["archMap"]]
    if isinstance(out.get("syscalls"), list):
        rules = []
        for i, rule in enumerate(out["syscalls"]):
            if isinstance(rule, dict):
                rule = {k: v for k, v in rule.items() if v is not None}
                if rule.get("name") and rule.get("names"):
                    raise ConfigError(f"{field}.syscalls[{i}]", "give either name or names, not both", source)
                if rule.get("name"):
                    rule["names"] = [rule.pop("name")]
            rules.append(rule)
        out["syscalls"] = rules
    return out


def resolve(seccomp: Seccomp, arch: Arch, caps: list[str] | None, kernel: tuple[int, int] | None = None,
            field: str = ".linux.seccomp", source: str = "config.json") -> Seccomp:
    """The plain OCI profile `seccomp` means on a host of `arch` with bounding set `caps`
    (None: every `includes.caps` holds) and `kernel` (default: the running one)."""
    kernel = kernel or kernel_version()
    default_errno = _merge_errno(seccomp.default_errno_ret, seccomp.default_errno, "defaultErrnoRet",
                                 f"{field}.defaultErrno", source)
    if seccomp.arch_map and seccomp.architectures:
        raise ConfigError(f"{field}.archMap", "give either architectures or archMap, not both", source)
    arches = seccomp.architectures
    for entry in seccomp.arch_map:
        if entry.architecture == arch.scmp:
            arches = (entry.architecture, *entry.sub_architectures)
    native = go_name(arch)
    syscalls = []
    for i, rule in enumerate(seccomp.syscalls):
        rfield = f"{field}.syscalls[{i}]"
        if not _wanted(rule, native, caps, kernel, rfield, source):
            continue
        syscalls.append(Syscall(rule.names, rule.action,
                                _merge_errno(rule.errno_ret, rule.errno, "errnoRet", f"{rfield}.errno", source),
                                rule.args))
    return Seccomp(seccomp.default_action, default_errno, arches, seccomp.flags, seccomp.listener_path,
                   seccomp.listener_metadata, tuple(syscalls))


def _merge_errno(number: int | None, name: str | None, num_key: str, field: str, source: str) -> int | None:
    if name is None:
        return number
    named = getattr(errno, name, None) if name.startswith("E") else None
    if not isinstance(named, int):
        raise ConfigError(field, f"unknown errno name {name!r}", source)
    if number is not None and number != named:
        raise ConfigError(field, f"{name} disagrees with {num_key} {number}", source)
    return named


_NO_FILTER = SyscallFilter()


def _wanted(rule: Syscall, native: str, caps: list[str] | None, kernel: tuple[int, int],
            field: str, source: str) -> bool:
    bounding = set(caps or [])
    exc, inc = rule.excludes or _NO_FILTER, rule.includes or _NO_FILTER
    if native in exc.arches:
        return False
    if any(c in bounding for c in exc.caps):
        return False
    if exc.min_kernel and kernel >= _min_kernel(exc.min_kernel, f"{field}.excludes", source):
        return False
    if inc.arches and native not in inc.arches:
        return False
    if inc.caps and caps is not None and not all(c in bounding for c in inc.caps):
        return False
    if inc.min_kernel and kernel < _min_kernel(inc.min_kernel, f"{field}.includes", source):
        return False
    return True


def _min_kernel(text: str, field: str, source: str) -> tuple[int, int]:
    try:
        major, _, minor = text.partition(".")
        return int(major), int(minor or 0)
    except ValueError:
        raise ConfigError(f"{field}.minKernel", f"not a kernel version: {text!r}", source) from None
