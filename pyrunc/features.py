"""`pyrunc features`: what this runtime implements, as runc's `features` JSON (features.md).

Each answer comes from the module that does the work (mount option tables,
namespace flags, capability names, seccomp action/operator/arch/flag tables,
the cgroup drivers), so the report changes when they do. The few features that
are parsed but not implemented yet are listed in NOT_IMPLEMENTED next to the
place that refuses them; tests/unit/pyrunc/test_features.py checks that those
places still refuse.
"""

from __future__ import annotations

import json

import click

HOOKS = ("prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop")
OCI_VERSION_MIN = "1.0.0"

# mount options mountopts accepts but rootfs.mount_entry refuses with MissingFeature
NOT_IMPLEMENTED_MOUNT_OPTIONS = frozenset({"idmap", "ridmap"})


def mount_options() -> list[str]:
    from pyrunc import mountopts

    known = (set(mountopts.FLAGS) | set(mountopts.PROPAGATION) | set(mountopts.RECURSIVE)
             | set(mountopts.RECURSIVE_ATIME) | set(mountopts.EXTENSIONS))
    return sorted(known - NOT_IMPLEMENTED_MOUNT_OPTIONS)


def seccomp_features() -> dict:
    from pyrunc.seccomp import arches, rules
    from pyrunc.syscalls import seccomp_filter_flags_supported

    known = sorted(rules.FLAGS)
    host = arches.native()
    return {
        "enabled": True,
        "actions": sorted(rules.ACTIONS),
        "operators": sorted(rules.OPERATORS),
        # arches with a syscall table and the host's byte order (rules.parse refuses the others)
        "archs": sorted(n for n, a in arches.BY_SCMP.items() if a.big_endian == host.big_endian),
        "knownFlags": known,
        "supportedFlags": [f for f in known if seccomp_filter_flags_supported(rules.FLAGS[f])],
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
    """(AppArmor, SELinux): pyrunc writes both labels through /proc/thread-self/attr/exec."""
    from pyrunc import lsm

    supported = hasattr(lsm, "apply_exec_labels")
    return supported, supported


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
            "mountExtensions": {"idmap": {"enabled": False}},  # see NOT_IMPLEMENTED_MOUNT_OPTIONS
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


@click.command("features", short_help="show the enabled features")
def features() -> None:
    """Show the enabled features.

    The result is parsable as a JSON. See the OCI runtime spec (features.md)
    for the type definition. The output is experimental and subject to change.
    """
    click.echo(json.dumps(collect(), indent=4))
