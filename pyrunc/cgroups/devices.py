"""Device access rules → v1 `devices.allow/deny` lines or a v2 eBPF program.

The spec's `linux.resources.devices` come first, in order, then runc's default
allow list (RUNTIME-DEFAULTS.md). The rules are folded through an emulator of
the v1 devices controller (runc's `devices/emulator.go` semantics): the result
is a default verdict plus exceptions that all carry the opposite verdict. That
one normalised form feeds both v1 (write the default, then the exceptions) and
v2 (an eBPF BPF_PROG_TYPE_CGROUP_DEVICE program: one block per exception,
then the default), so both hierarchies make the same decisions, including
refusing rules that v1 would silently ignore (punching a hole in a wildcard).
"""

from __future__ import annotations

import struct
from pyrunc.record import tuple_record  # namedtuple without importing collections
TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs ~4 ms on the run hot path

if TYPE_CHECKING:
    from typing import Any

    from pyrunc.spec import DeviceRule

from pyrunc.errors import ConfigError

WILDCARD = -1


class Rule(tuple_record("Rule", "allow type major minor access")):
    """One device rule: allow (bool), type ("a", "c", "b"), major and minor
    (WILDCARD for *), access (a subset of "rwm", in that order). A
    namedtuple, not a dataclass: this module is on the `run` hot path."""

    __slots__ = ()

    def line(self) -> str:
        if self.type == "a":
            return "a"
        major = "*" if self.major == WILDCARD else str(self.major)
        minor = "*" if self.minor == WILDCARD else str(self.minor)
        return f"{self.type} {major}:{minor} {self.access}"


def _r(t: str, major: int, minor: int, access: str = "rwm") -> Rule:
    return Rule(True, t, major, minor, access)


# runc's specconv.AllowedDevices, in its order: mknod of anything, then the
# nodes every container gets (null, random, full, tty, zero, urandom,
# console, pts, ptmx, tun).
DEFAULT_RULES: tuple[Rule, ...] = (
    _r("c", WILDCARD, WILDCARD, "m"), _r("b", WILDCARD, WILDCARD, "m"),
    _r("c", 1, 3), _r("c", 1, 8), _r("c", 1, 7), _r("c", 5, 0), _r("c", 1, 5), _r("c", 1, 9),
    _r("c", 5, 1), _r("c", 136, WILDCARD), _r("c", 5, 2), _r("c", 10, 200),
)


def _norm_access(access: str) -> str:
    return "".join(c for c in "rwm" if c in access)


def parse_rules(entries: tuple[DeviceRule, ...], prefix: str = ".linux.resources",
                source: str = "config.json") -> list[Rule]:
    """`linux.resources.devices` (typed, checked by pyrunc.config) → Rules (without the defaults);
    what the devices cgroup cannot express fails here, naming the field."""
    out = []
    for i, entry in enumerate(entries):
        p = f"{prefix}.devices[{i}]"
        dtype = entry.type or "a"
        nums = []
        for key, value in (("major", entry.major), ("minor", entry.minor)):
            if value is None or value == -1:
                nums.append(WILDCARD)
            elif not 0 <= value <= 0x7FFFFFFF:  # eBPF compares sign-extended imm32
                raise ConfigError(f"{p}.{key}", f"{value!r} is not a device number", source)
            else:
                nums.append(value)
        access = "rwm" if entry.access is None else entry.access
        out.append(Rule(entry.allow, dtype, nums[0], nums[1], _norm_access(access)))
    return out


class DeviceState(tuple_record("DeviceState", "default_allow exceptions")):
    """What a devices cgroup enforces: a default verdict (bool) and a tuple
    of exception Rules, each with allow == not default_allow."""

    __slots__ = ()


class Emulator:
    """The v1 devices controller's whitelist/blacklist semantics, in memory."""

    def __init__(self, default_allow: bool = True, field: str = ".linux.resources.devices",
                 source: str = "config.json") -> None:
        self.default_allow = default_allow
        self.rules: dict[tuple[str, int, int], set[str]] = {}
        self.field = field
        self.source = source

    def apply(self, rule: Rule) -> None:
        if rule.type == "a":  # the all-devices rule resets everything
            self.default_allow = rule.allow
            self.rules = {}
            return
        # An allow rule adds an exception to a deny-by-default cgroup and
        # removes one from an allow-by-default cgroup; deny is the mirror.
        if rule.allow != self.default_allow:
            key = (rule.type, rule.major, rule.minor)
            self.rules.setdefault(key, set()).update(rule.access)
        else:
            self._remove(rule)

    def _remove(self, rule: Rule) -> None:
        perms = set(rule.access)
        for major, minor in ((WILDCARD, rule.minor), (rule.major, WILDCARD), (WILDCARD, WILDCARD)):
            if (major, minor) == (rule.major, rule.minor):
                continue
            partial = self.rules.get((rule.type, major, minor), set())
            if partial & perms:
                hole = Rule(not rule.allow, rule.type, major, minor, _norm_access("".join(partial)))
                raise ConfigError(self.field, f"rule {rule.line()} cannot punch a hole in the wildcard rule "
                                              f"{hole.line()} (cgroup v1 would ignore it)", self.source)
        key = (rule.type, rule.major, rule.minor)
        left = self.rules.get(key, set()) - perms
        if left:
            self.rules[key] = left
        else:
            self.rules.pop(key, None)

    def state(self) -> DeviceState:
        """Exceptions in the order their rules first came: the config's own
        rules before the defaults appended after them, so devices.list lists
        them in the config's order (runtime-spec: "apply entries in the listed
        order"; runtime-tools checks it, crun does it)."""
        allow = not self.default_allow
        excs = tuple(Rule(allow, t, ma, mi, _norm_access("".join(p)))
                     for (t, ma, mi), p in self.rules.items())
        return DeviceState(self.default_allow, excs)


def compute(rules: list[Rule], *, with_defaults: bool = True, prefix: str = ".linux.resources",
            source: str = "config.json") -> DeviceState:
    """Fold the rules (then runc's defaults) over a deny-all start, as runc's
    buildEmulator does: no rules at all means only the defaults are allowed."""
    emu = Emulator(default_allow=False, field=f"{prefix}.devices", source=source)
    for rule in [*rules, *(DEFAULT_RULES if with_defaults else ())]:
        emu.apply(rule)
    return emu.state()


def v1_plan(state: DeviceState) -> dict[str, str]:
    """devices.allow/deny writes, in order: the default first, then exceptions."""
    first, rest = ("devices.allow", "devices.deny") if state.default_allow else ("devices.deny", "devices.allow")
    plan = {first: "a"}
    if state.exceptions:
        plan[rest] = "\n".join(r.line() for r in state.exceptions)
    return plan


def parse_list(text: str) -> DeviceState:
    """`devices.list` → DeviceState (`a *:* rwm` alone means allow-all)."""
    lines = [ln.split() for ln in text.splitlines() if ln.strip()]
    if lines == [["a", "*:*", "rwm"]]:
        return DeviceState(True, ())
    excs = []
    for t, nums, access in lines:
        major, minor = (WILDCARD if n == "*" else int(n) for n in nums.split(":"))
        excs.append(Rule(True, t, major, minor, access))
    return DeviceState(False, tuple(excs))


# --- eBPF -------------------------------------------------------------------------------------
# struct bpf_cgroup_dev_ctx { u32 access_type; /* (access << 16) | type */ u32 major; u32 minor; }
BPF_DEVCG_ACC_MKNOD, BPF_DEVCG_ACC_READ, BPF_DEVCG_ACC_WRITE = 1, 2, 4
BPF_DEVCG_DEV_BLOCK, BPF_DEVCG_DEV_CHAR = 1, 2
_ACC = {"m": BPF_DEVCG_ACC_MKNOD, "r": BPF_DEVCG_ACC_READ, "w": BPF_DEVCG_ACC_WRITE}
_TYPE = {"b": BPF_DEVCG_DEV_BLOCK, "c": BPF_DEVCG_DEV_CHAR}

# opcodes (linux/bpf.h, bpf_common.h)
LDX_MEM_W = 0x61  # BPF_LDX | BPF_MEM | BPF_W
ALU32_AND_K = 0x54
ALU32_RSH_K = 0x74
ALU32_MOV_K = 0xB4
ALU32_MOV_X = 0xBC
JMP_JNE_K = 0x55
JMP_JEQ_K = 0x15
JMP_JNE_X = 0x5D
JMP_EXIT = 0x95


def insn(code: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> bytes:
    """One struct bpf_insn (little-endian host assumed, as on x86_64/aarch64)."""
    return struct.pack("<BBhi", code, (src << 4) | dst, off, imm)


def bpf_program(state: DeviceState) -> bytes:
    """Assemble the device filter: R2=type, R3=access, R4=major, R5=minor;
    each exception is a block that jumps to the next block on mismatch and
    returns its verdict on a match; the last block returns the default."""
    head = [insn(LDX_MEM_W, 2, 1, 0), insn(ALU32_AND_K, 2, imm=0xFFFF),
            insn(LDX_MEM_W, 3, 1, 0), insn(ALU32_RSH_K, 3, imm=16),
            insn(LDX_MEM_W, 4, 1, 4), insn(LDX_MEM_W, 5, 1, 8)]
    blocks: list[list[tuple[int, int, int, int]]] = []  # (code, dst, src, imm) with off filled later
    for rule in state.exceptions:
        access = 0
        for c in rule.access:
            access |= _ACC[c]
        block = [(JMP_JNE_K, 2, 0, _TYPE[rule.type])]
        if access != 7:  # rwm matches any request: no check
            if rule.allow:  # an allow exception must cover every requested bit
                block += [(ALU32_MOV_X, 1, 3, 0), (ALU32_AND_K, 1, 0, access), (JMP_JNE_X, 1, 3, 0)]
            else:  # a deny exception hits if it shares any bit (v1's match_exception_partial;
                # runc checks "covers" here too, which lets O_RDWR past a "w" deny on v2)
                block += [(ALU32_MOV_X, 1, 3, 0), (ALU32_AND_K, 1, 0, access), (JMP_JEQ_K, 1, 0, 0)]
        if rule.major != WILDCARD:
            block.append((JMP_JNE_K, 4, 0, rule.major))
        if rule.minor != WILDCARD:
            block.append((JMP_JNE_K, 5, 0, rule.minor))
        block += [(ALU32_MOV_K, 0, 0, 1 if rule.allow else 0), (JMP_EXIT, 0, 0, 0)]
        blocks.append(block)
    out = list(head)
    for block in blocks:
        n = len(block)
        for i, (code, dst, src, imm) in enumerate(block):
            off = n - i - 1 if code in (JMP_JNE_K, JMP_JNE_X, JMP_JEQ_K) else 0  # jump to the next block's start
            out.append(insn(code, dst, src, off, imm))
    out += [insn(ALU32_MOV_K, 0, imm=1 if state.default_allow else 0), insn(JMP_EXIT)]
    return b"".join(out)


def disassemble(prog: bytes) -> list[str]:
    """Human-readable listing (used by tests and --debug)."""
    names = {LDX_MEM_W: "ldxw", ALU32_AND_K: "and32", ALU32_RSH_K: "rsh32", ALU32_MOV_K: "mov32",
             ALU32_MOV_X: "mov32", JMP_JNE_K: "jne", JMP_JNE_X: "jne", JMP_JEQ_K: "jeq", JMP_EXIT: "exit"}
    out = []
    for pc in range(0, len(prog), 8):
        code, regs, off, imm = struct.unpack("<BBhi", prog[pc:pc + 8])
        dst, src = regs & 0xF, regs >> 4
        name = names.get(code, f"op{code:#x}")
        if code == LDX_MEM_W:
            out.append(f"{name} r{dst}, [r{src}+{off}]")
        elif code in (ALU32_AND_K, ALU32_RSH_K, ALU32_MOV_K):
            out.append(f"{name} r{dst}, {imm}")
        elif code == ALU32_MOV_X:
            out.append(f"{name} r{dst}, r{src}")
        elif code in (JMP_JNE_K, JMP_JEQ_K):
            out.append(f"{name} r{dst}, {imm}, +{off}")
        elif code == JMP_JNE_X:
            out.append(f"{name} r{dst}, r{src}, +{off}")
        else:
            out.append(name)
    return out
