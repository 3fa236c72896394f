"""Docker / containers-common seccomp profiles → OCI `linux.seccomp`.

The tools accept three shapes of JSON: an OCI `linux.seccomp` object, a whole
config.json (its `linux.seccomp`, with the bounding set of `process`), or a
Docker/containers-common profile. The latter is resolved for one host as moby
(`profiles/seccomp.setupSeccomp`) and containers-common do: the `archMap`
entry of the native arch gives the arch list, `name` becomes `names`, errno
names become numbers, and `includes`/`excludes` are evaluated against the
native arch (Go spelling), the bounding capabilities and the running kernel.
"""

from __future__ import annotations

import errno
import os
from typing import Any

from pyrunc.errors import ConfigError
from pyrunc.seccomp.arches import Arch, go_name

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


def load_any(obj: Any, arch: Arch, caps: list[str] | None = None,
             kernel: tuple[int, int] | None = None, source: str = "profile") -> tuple[dict[str, Any], str]:
    """Any accepted shape → (OCI linux.seccomp object, field path for errors)."""
    if not isinstance(obj, dict):
        raise ConfigError("", "a seccomp profile must be a JSON object", source)
    if "linux" in obj or "ociVersion" in obj:
        seccomp = (obj.get("linux") or {}).get("seccomp")
        if seccomp is None:
            raise ConfigError(".linux.seccomp", "absent", source)
        if caps is None:
            caps = ((obj.get("process") or {}).get("capabilities") or {}).get("bounding") or []
        if is_docker_profile(seccomp):
            return to_oci(seccomp, arch, caps, kernel, ".linux.seccomp", source), ".linux.seccomp"
        return seccomp, ".linux.seccomp"
    if is_docker_profile(obj):
        chosen = list(DOCKER_DEFAULT_CAPS) if caps is None else caps
        return to_oci(obj, arch, chosen, kernel, "", source), ""
    return obj, ""


def _errno_number(value: Any, field: str, source: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    number = getattr(errno, value, None) if isinstance(value, str) and value.startswith("E") else None
    if not isinstance(number, int):
        raise ConfigError(field, f"unknown errno name {value!r}", source)
    return number


def _merge_errno(obj: dict[str, Any], num_key: str, name_key: str, field: str, source: str) -> int | None:
    number = obj.get(num_key)
    if name_key in obj:
        named = _errno_number(obj[name_key], f"{field}.{name_key}", source)
        if number is not None and number != named:
            raise ConfigError(f"{field}.{name_key}", f"{obj[name_key]} disagrees with {num_key} {number}",
                              source)
        number = named
    return number


def to_oci(profile: dict[str, Any], arch: Arch, caps: list[str] | None,
           kernel: tuple[int, int] | None = None, field: str = "", source: str = "profile") -> dict[str, Any]:
    """Resolve a Docker/containers-common profile for this host."""
    kernel = kernel or kernel_version()
    out: dict[str, Any] = {"defaultAction": profile.get("defaultAction")}
    default_errno = _merge_errno(profile, "defaultErrnoRet", "defaultErrno", field, source)
    if default_errno is not None:
        out["defaultErrnoRet"] = default_errno
    if profile.get("archMap") and profile.get("architectures"):
        raise ConfigError(f"{field}.archMap", "give either architectures or archMap, not both", source)
    arches = list(profile.get("architectures") or [])
    for entry in profile.get("archMap") or []:
        if entry.get("architecture") == arch.scmp:
            arches = [entry["architecture"], *(entry.get("subArchitectures") or [])]
    if arches:
        out["architectures"] = arches
    for key in ("flags", "listenerPath", "listenerMetadata"):
        if key in profile:
            out[key] = profile[key]
    native = go_name(arch)
    syscalls = []
    for i, rule in enumerate(profile.get("syscalls") or []):
        rfield = f"{field}.syscalls[{i}]"
        if not isinstance(rule, dict):
            raise ConfigError(rfield, "must be an object", source)
        if rule.get("name") and rule.get("names"):
            raise ConfigError(rfield, "give either name or names, not both", source)
        if not _wanted(rule, native, caps, kernel, rfield, source):
            continue
        new: dict[str, Any] = {"names": [rule["name"]] if rule.get("name") else rule.get("names"),
                               "action": rule.get("action")}
        errno_ret = _merge_errno(rule, "errnoRet", "errno", rfield, source)
        if errno_ret is not None:
            new["errnoRet"] = errno_ret
        if rule.get("args"):
            new["args"] = rule["args"]
        syscalls.append(new)
    out["syscalls"] = syscalls
    return out


def _wanted(rule: dict[str, Any], native: str, caps: list[str] | None, kernel: tuple[int, int],
            field: str, source: str) -> bool:
    bounding = set(caps or [])
    exc, inc = rule.get("excludes") or {}, rule.get("includes") or {}
    if native in (exc.get("arches") or []):
        return False
    if any(c in bounding for c in exc.get("caps") or []):
        return False
    if exc.get("minKernel") and kernel >= _min_kernel(exc["minKernel"], f"{field}.excludes", source):
        return False
    if inc.get("arches") and native not in inc["arches"]:
        return False
    if inc.get("caps") and caps is not None and not all(c in bounding for c in inc["caps"]):
        return False
    if inc.get("minKernel") and kernel < _min_kernel(inc["minKernel"], f"{field}.includes", source):
        return False
    return True


def _min_kernel(text: Any, field: str, source: str) -> tuple[int, int]:
    try:
        major, _, minor = str(text).partition(".")
        return int(major), int(minor or 0)
    except ValueError:
        raise ConfigError(f"{field}.minKernel", f"not a kernel version: {text!r}", source) from None
