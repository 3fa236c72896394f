"""`pyrunc features`: what this runtime implements, as runc's `features` JSON (features.md).

Each answer comes from the module that does the work (mount option tables,
namespace flags, capability names, seccomp action/operator/arch/flag tables,
the cgroup drivers) or from a probe of this host (seccomp filter flags,
idmapped mounts, AppArmor/SELinux), so the report says what pyrunc really does
here. tests/integration/pyrunc/test_features_live.py runs containers that use
each advertised feature and checks that the unadvertised ones are refused.
"""

from __future__ import annotations

import errno
import json
import sys

from pyrunc.verbs import GlobalOptions

HOOKS = ("prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop")
OCI_VERSION_MIN = "1.0.0"

IDMAP_OPTIONS = frozenset({"idmap", "ridmap"})


def mount_options() -> list[str]:
    from pyrunc import mountopts

    known = (set(mountopts.FLAGS) | set(mountopts.PROPAGATION) | set(mountopts.RECURSIVE)
             | set(mountopts.RECURSIVE_ATIME) | set(mountopts.EXTENSIONS))
    return sorted(known if idmap_supported() else known - IDMAP_OPTIONS)


def idmap_supported() -> bool:
    """mount_setattr(2) with MOUNT_ATTR_IDMAP exists (Linux 5.12): probed with
    an invalid call that a kernel without it answers ENOSYS."""
    from pyrunc import syscalls as s

    try:
        s.mount_setattr(-1, "", s.AT_EMPTY_PATH, attr_set=s.MOUNT_ATTR_IDMAP)
    except OSError as err:
        return err.errno != errno.ENOSYS
    return True


def seccomp_features() -> dict:
    from pyrunc.seccomp import arches, rules
    from pyrunc.syscalls import seccomp_filter_flags_supported

    known = sorted(rules.FLAGS)
    host = arches.native()
    return {
        "enabled": True,
        "actions": sorted(rules.ACTIONS),
        "operators": sorted(rules.OPERATORS),
        # arches with a syscall table and the host's byte order (rules.resolve refuses the others)
        "archs": sorted(n for n, a in arches.BY_SCMP.items() if a.big_endian == host.big_endian),
        "knownFlags": known,
        # probed as seccomp.prepare uses them: WAIT_KILLABLE_RECV only goes with a listener
        "supportedFlags": [f for f in known if seccomp_filter_flags_supported(
            rules.FLAGS[f] | (rules.FLAG_NEW_LISTENER if f == "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV" else 0))],
    }


def cgroup_features() -> dict:
    from pyrunc.cgroups import resources

    return {
        "v1": True,
        "v2": True,
        "systemd": False,      # cgroups/systemd.py: no D-Bus client, the driver refuses
        "systemdUser": False,
        "rdma": hasattr(resources, "rdma"),
    }


def lsm_features() -> tuple[bool, bool]:
    """(AppArmor, SELinux): enabled where this host has the LSM, since
    lsm.check_lsm refuses a label the host cannot apply."""
    from pyrunc import lsm

    return lsm.apparmor_enabled(), lsm.selinux_enabled()


def collect() -> dict:
    """The features object, keys in runc's order."""
    from pyrunc import capabilities, namespaces
    from pyrunc.spec import OCI_VERSION

    apparmor, selinux = lsm_features()
    return {
        "ociVersionMin": OCI_VERSION_MIN,
        "ociVersionMax": OCI_VERSION,
        "hooks": list(HOOKS),
        "mountOptions": mount_options(),
        "linux": {
            "namespaces": sorted(namespaces.FLAGS),
            "capabilities": list(capabilities.CAP_NAMES),
            "cgroup": cgroup_features(),
            "seccomp": seccomp_features(),
            "apparmor": {"enabled": apparmor},
            "selinux": {"enabled": selinux},
            "intelRdt": {"enabled": False},          # create.py refuses linux.intelRdt
            "mountExtensions": {"idmap": {"enabled": idmap_supported()}},  # pyrunc.mountsrc
            "netDevices": {"enabled": False},         # create.py refuses linux.netDevices
        },
        "annotations": {"org.pyrunc.version": _version()},
    }


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("pyrunc")
    except PackageNotFoundError:
        return "unknown"


def features_verb(g: GlobalOptions, v: dict) -> int:
    """`pyrunc features`: the report as runc prints it."""
    sys.stdout.write(json.dumps(collect(), indent=4) + "\n")
    return 0
