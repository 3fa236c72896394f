"""Shared config.json test data for the spec tests: a config using every field, and helpers."""

from __future__ import annotations

import copy
import json
import pathlib

SCHEMA_PATH = pathlib.Path(__file__).resolve().parents[3] / "schemas" / "config.schema.json"

DELETE = object()


def schema_validator():
    import jsonschema

    return jsonschema.Draft202012Validator(json.loads(SCHEMA_PATH.read_text()))


def with_change(config: dict, path: tuple, value: object) -> dict:
    """A deep copy of `config` with the value at `path` (keys and indexes) replaced or deleted."""
    out = copy.deepcopy(config)
    node = out
    for step in path[:-1]:
        if isinstance(node, dict) and step not in node:
            node[step] = {}
        node = node[step]
    if value is DELETE:
        del node[path[-1]]
    elif isinstance(node, list) and path[-1] == len(node):
        node.append(value)
    else:
        node[path[-1]] = value
    return out


# Every field of the spec that pyrunc reads, with valid values.
FULL_CONFIG = {
    "ociVersion": "1.2.0",
    "root": {"path": "rootfs", "readonly": True},
    "hostname": "box",
    "domainname": "example.org",
    "process": {
        "terminal": False,
        "consoleSize": {"height": 25, "width": 80},
        "user": {"uid": 1000, "gid": 1000, "umask": 18, "additionalGids": [5, 6], "username": "u"},
        "args": ["/bin/sh", "-c", "true"],
        "env": ["PATH=/bin", "TERM=xterm"],
        "cwd": "/home",
        "capabilities": {
            "bounding": ["CAP_KILL"], "effective": ["CAP_KILL"], "inheritable": [],
            "permitted": ["CAP_KILL"], "ambient": [],
        },
        "rlimits": [
            {"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024},
            {"type": "RLIMIT_CORE", "hard": 18446744073709551615, "soft": 0},
        ],
        "apparmorProfile": "acme",
        "selinuxLabel": "system_u:system_r:svirt_lxc_net_t:s0:c124,c675",
        "noNewPrivileges": True,
        "oomScoreAdj": -500,
        "ioPriority": {"class": "IOPRIO_CLASS_BE", "priority": 4},
        "scheduler": {"policy": "SCHED_FIFO", "nice": -5, "priority": 10,
                      "flags": ["SCHED_FLAG_RESET_ON_FORK"], "runtime": 1, "deadline": 2, "period": 3},
        "execCPUAffinity": {"initial": "0-3,7", "final": "0"},
    },
    "mounts": [
        {"destination": "/proc", "type": "proc", "source": "proc"},
        {"destination": "/data", "type": "bind", "source": "/srv/data", "options": ["rbind", "ro"],
         "uidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}],
         "gidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}]},
        {"destination": "relative/dest", "type": "tmpfs", "source": "tmpfs"},
    ],
    "hooks": {
        "prestart": [{"path": "/usr/bin/fix-mounts", "args": ["fix-mounts", "a"], "env": ["K=v"]}],
        "createRuntime": [{"path": "/bin/true", "timeout": 5}],
        "createContainer": [{"path": "/bin/true"}],
        "startContainer": [{"path": "/bin/true"}],
        "poststart": [{"path": "/bin/true"}],
        "poststop": [{"path": "/bin/true"}],
    },
    "annotations": {"com.example.key": "value"},
    "linux": {
        "namespaces": [
            {"type": "pid"}, {"type": "network", "path": "/var/run/netns/x"}, {"type": "mount"},
            {"type": "ipc"}, {"type": "uts"}, {"type": "user"}, {"type": "cgroup"}, {"type": "time"},
        ],
        "uidMappings": [{"containerID": 0, "hostID": 1000, "size": 32000}],
        "gidMappings": [{"containerID": 0, "hostID": 1000, "size": 32000}],
        "timeOffsets": {"monotonic": {"secs": 86400, "nanosecs": 0}, "boottime": {"secs": -1}},
        "devices": [
            {"type": "c", "path": "/dev/fuse", "major": 10, "minor": 229, "fileMode": 438,
             "uid": 0, "gid": 0},
            {"type": "p", "path": "/dev/fifo"},
        ],
        "netDevices": {"eth1": {"name": "net0"}, "eth2": {}},
        "cgroupsPath": "/myRuntime/myContainer",
        "resources": {
            "devices": [{"allow": False, "access": "rwm"},
                        {"allow": True, "type": "c", "major": 10, "minor": 229, "access": "rw"}],
            "memory": {"limit": 536870912, "reservation": 536870912, "swap": -1, "kernel": -1,
                       "kernelTCP": -1, "swappiness": 0, "disableOOMKiller": False,
                       "useHierarchy": True, "checkBeforeUpdate": True},
            "cpu": {"shares": 1024, "quota": 1000000, "burst": 1000000, "period": 500000,
                    "realtimeRuntime": 950000, "realtimePeriod": 1000000, "cpus": "2-3",
                    "mems": "0-7", "idle": 0},
            "pids": {"limit": 32771},
            "blockIO": {
                "weight": 10, "leafWeight": 10,
                "weightDevice": [{"major": 8, "minor": 0, "weight": 500, "leafWeight": 300},
                                 {"major": 8, "minor": 16, "weight": 500}],
                "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 600}],
                "throttleWriteBpsDevice": [{"major": 8, "minor": 0, "rate": 600}],
                "throttleReadIOPSDevice": [{"major": 8, "minor": 0, "rate": 300}],
                "throttleWriteIOPSDevice": [{"major": 8, "minor": 16, "rate": 300}],
            },
            "hugepageLimits": [{"pageSize": "2MB", "limit": 209715200},
                               {"pageSize": "64KB", "limit": 1000000}],
            "network": {"classID": 1048577, "priorities": [{"name": "eth0", "priority": 500}]},
            "rdma": {"mlx5_1": {"hcaHandles": 3, "hcaObjects": 10000}, "mlx4_0": {"hcaObjects": 1000}},
            "unified": {"io.max": "259:0 rbps=2097152", "memory.high": "1073741824"},
        },
        "rootfsPropagation": "slave",
        "seccomp": {
            "defaultAction": "SCMP_ACT_ERRNO",
            "defaultErrnoRet": 1,
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
            "flags": ["SECCOMP_FILTER_FLAG_LOG"],
            "listenerPath": "/run/seccomp-agent.socket",
            "listenerMetadata": "meta",
            "syscalls": [
                {"names": ["getcwd", "chmod"], "action": "SCMP_ACT_ALLOW"},
                {"names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38,
                 "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"},
                          {"index": 1, "value": 255, "valueTwo": 8, "op": "SCMP_CMP_MASKED_EQ"}]},
            ],
        },
        "sysctl": {"net.ipv4.ip_forward": "1", "net.core.somaxconn": "256"},
        "maskedPaths": ["/proc/kcore"],
        "readonlyPaths": ["/proc/sys"],
        "mountLabel": "system_u:object_r:svirt_sandbox_file_t:s0:c715,c811",
        "intelRdt": {"closID": "guaranteed_group", "l3CacheSchema": "L3:0=7f0;1=1f",
                     "memBwSchema": "MB:0=20;1=70", "schemata": ["L2:0=f"], "enableMonitoring": True},
        "memoryPolicy": {"mode": "MPOL_INTERLEAVE", "nodes": "2-3", "flags": ["MPOL_F_STATIC_NODES"]},
        "personality": {"domain": "LINUX32", "flags": []},
    },
    "vm": {"hypervisor": {"path": "/usr/bin/qemu"}},
    "x-unknown-extension": {"ignored": True},
}

MINIMAL_CONFIG = {"ociVersion": "1.0.0", "root": {"path": "rootfs"}}
