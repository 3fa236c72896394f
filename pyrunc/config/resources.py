"""Field checks of `linux.resources` (config-linux.md "Control groups"), building the
`Resources` record the cgroup managers take.

schemas/config.schema.json states the same rules.
"""

from __future__ import annotations

from pyrunc.errors import ConfigError
from pyrunc.spec import (
    CPU, BlockIO, DeviceRule, HugepageLimit, InterfacePriority, Memory, Network, Pids, Rdma,
    Resources, ThrottleDevice, WeightDevice,
)
from pyrunc.config.checks import (
    _ABSENT, CGROUP_DEVICE_ACCESS, CGROUP_DEVICE_TYPES, I64, U16, U32, U64, Invalid, _enum, _int,
    _key, _o_bool, _o_int, _o_items, _o_str, _obj, _required, _str, _str_map,
)

_PAGE_UNITS = ("KB", "MB", "GB")


def load_resources(obj: object, prefix: str = ".linux.resources", source: str = "config.json") -> Resources:
    """A LinuxResources object on its own (`pyrunc update -r`, its flags) → Resources;
    the first bad field is one ConfigError naming it."""
    try:
        return parse_resources(obj, prefix)
    except Invalid as bad:
        raise ConfigError(bad.path or prefix or ".", bad.message, source) from None


def parse_resources(v: object, p: str) -> Resources:
    d = _obj(v, p)
    memory = cpu = pids = block_io = network = None
    m = d.get("memory", _ABSENT)
    if m is not _ABSENT:
        mp = f"{p}.memory"
        m = _obj(m, mp)
        memory = Memory(*(_o_int(m, k, mp, I64) for k in (
            "limit", "reservation", "swap", "kernel", "kernelTCP")),
            _o_int(m, "swappiness", mp, U64), _o_bool(m, "disableOOMKiller", mp),
            _o_bool(m, "useHierarchy", mp), _o_bool(m, "checkBeforeUpdate", mp))
    c = d.get("cpu", _ABSENT)
    if c is not _ABSENT:
        cp = f"{p}.cpu"
        c = _obj(c, cp)
        cpu = CPU(_o_int(c, "shares", cp, U64), _o_int(c, "quota", cp, I64),
                  _o_int(c, "burst", cp, U64), _o_int(c, "period", cp, U64),
                  _o_int(c, "realtimeRuntime", cp, I64), _o_int(c, "realtimePeriod", cp, U64),
                  _o_str(c, "cpus", cp), _o_str(c, "mems", cp), _o_int(c, "idle", cp, I64))
    x = d.get("pids", _ABSENT)
    if x is not _ABSENT:
        pids = Pids(_o_int(_obj(x, f"{p}.pids"), "limit", f"{p}.pids", I64))
    x = d.get("blockIO", _ABSENT)
    if x is not _ABSENT:
        block_io = _block_io(x, f"{p}.blockIO")
    x = d.get("network", _ABSENT)
    if x is not _ABSENT:
        np_ = f"{p}.network"
        n = _obj(x, np_)
        network = Network(_o_int(n, "classID", np_, U32), _o_items(n, "priorities", np_, _priority))
    rdma: dict[str, Rdma] = {}
    x = d.get("rdma", _ABSENT)
    if x is not _ABSENT:
        rp = f"{p}.rdma"
        for k, r in _obj(x, rp).items():
            kp = _key(k, rp)
            r = _obj(r, kp)
            if "hcaHandles" not in r and "hcaObjects" not in r:
                raise Invalid(kp, "needs hcaHandles or hcaObjects")
            rdma[k] = Rdma(_o_int(r, "hcaHandles", kp, U32), _o_int(r, "hcaObjects", kp, U32))
    x = d.get("unified", _ABSENT)
    unified = {} if x is _ABSENT else _str_map(x, f"{p}.unified")
    return Resources(
        devices=_o_items(d, "devices", p, _device_rule),
        memory=memory,
        cpu=cpu,
        pids=pids,
        block_io=block_io,
        hugepage_limits=_o_items(d, "hugepageLimits", p, _hugepage),
        network=network,
        rdma=rdma,
        unified=unified,
    )


def _device_rule(v: object, p: str) -> DeviceRule:
    d = _obj(v, p)
    allow = _required(d, "allow", p)
    if type(allow) is not bool:
        raise Invalid(f"{p}.allow", "must be a boolean")
    t = d.get("type", _ABSENT)
    a = d.get("access", _ABSENT)
    return DeviceRule(allow, None if t is _ABSENT else _enum(t, f"{p}.type", CGROUP_DEVICE_TYPES),
                      _o_int(d, "major", p, I64), _o_int(d, "minor", p, I64),
                      None if a is _ABSENT else _enum(a, f"{p}.access", CGROUP_DEVICE_ACCESS))


def _block_io(v: object, p: str) -> BlockIO:
    d = _obj(v, p)
    return BlockIO(_o_int(d, "weight", p, U16), _o_int(d, "leafWeight", p, U16),
                   _o_items(d, "weightDevice", p, _weight_device),
                   *(_o_items(d, k, p, _throttle) for k in (
                       "throttleReadBpsDevice", "throttleWriteBpsDevice",
                       "throttleReadIOPSDevice", "throttleWriteIOPSDevice")))


def _weight_device(v: object, p: str) -> WeightDevice:
    d = _obj(v, p)
    major = _int(_required(d, "major", p), f"{p}.major", I64)
    minor = _int(_required(d, "minor", p), f"{p}.minor", I64)
    if "weight" not in d and "leafWeight" not in d:
        raise Invalid(p, "needs weight or leafWeight")
    return WeightDevice(major, minor, _o_int(d, "weight", p, U16), _o_int(d, "leafWeight", p, U16))


def _throttle(v: object, p: str) -> ThrottleDevice:
    d = _obj(v, p)
    return ThrottleDevice(_int(_required(d, "major", p), f"{p}.major", I64),
                          _int(_required(d, "minor", p), f"{p}.minor", I64),
                          _int(_required(d, "rate", p), f"{p}.rate", U64))


def _hugepage(v: object, p: str) -> HugepageLimit:
    d = _obj(v, p)
    size = _str(_required(d, "pageSize", p), f"{p}.pageSize")
    num, unit = size[:-2], size[-2:]
    if unit not in _PAGE_UNITS or not num or num[0] == "0" or not num.isascii() or not num.isdigit():
        raise Invalid(f"{p}.pageSize", "must be a size such as 2MB or 1GB")
    return HugepageLimit(size, _int(_required(d, "limit", p), f"{p}.limit", U64))


def _priority(v: object, p: str) -> InterfacePriority:
    d = _obj(v, p)
    return InterfacePriority(_str(_required(d, "name", p), f"{p}.name"),
                             _int(_required(d, "priority", p), f"{p}.priority", U32))
