"""Profile → one libseccomp-equivalent rule database per architecture.

This is the half of compilation that decides *what* each call gets; `codegen`
decides *how* the filter finds it. The steps are runc's (seccomp.InitSeccomp
and matchCall) over libseccomp 2.5's rule semantics (`ruletree`):

* rules whose action equals the default action are skipped (runc does, since
  libseccomp would refuse them);
* names pyrunc's table does not know are skipped with a debug log line;
* a rule with two checks on the same argument becomes one rule per check
  (runc's fallback, i.e. those checks are OR-ed);
* on x86, s390x and ppc64 a socket or SysV IPC call also gets a rule on the
  multiplexer (`socketcall`/`ipc`) with its first argument replaced by the call
  number, and no rule on the direct call where the arch has none;
* a rule libseccomp would refuse (EEXIST: identical checks, different actions)
  is a ConfigError naming the rule.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyrunc import logs
from pyrunc.errors import ConfigError
from pyrunc.seccomp.arches import Arch
from pyrunc.seccomp.rules import Profile, Rule
from pyrunc.seccomp.ruletree import DATUM_MAX, EQ, Cond, RuleDB, TreeLoop
from pyrunc.seccomp.tables.syscalls import SYSCALLS

SOCKET_CALLS = ("socket", "bind", "connect", "listen", "accept", "getsockname", "getpeername",
                "socketpair", "send", "recv", "sendto", "recvfrom", "shutdown", "setsockopt",
                "getsockopt", "sendmsg", "recvmsg", "accept4", "recvmmsg", "sendmmsg")
# SysV IPC call numbers of ipc(2) (linux/ipc.h)
IPC_CALLS = {"semop": 1, "semget": 2, "semctl": 3, "semtimedop": 4, "msgsnd": 11, "msgrcv": 12,
             "msgget": 13, "msgctl": 14, "shmat": 21, "shmdt": 22, "shmget": 23, "shmctl": 24}


@dataclass(frozen=True, slots=True)
class ArchDB:
    arch: Arch
    db: RuleDB


def build(profile: Profile, known: frozenset[str] | None = None) -> list[ArchDB]:
    """The rule database of every architecture of `profile`, native first.
    `known` restricts the names considered known (tests use it to model an older
    libseccomp); by default every name of pyrunc's table is known."""
    dbs = [ArchDB(a, RuleDB(a.bits, a.arg_offsets)) for a in profile.arches]
    for rule in profile.rules:
        if rule.action == profile.default_action:
            continue
        for name in rule.names:
            if name not in SYSCALLS or (known is not None and name not in known):
                logs.debug(f"unknown seccomp syscall {name!r} ignored")
                continue
            for conds in _condition_sets(rule):
                for adb in dbs:
                    try:
                        rc = _add(adb, name, rule.action, conds)
                    except TreeLoop:
                        raise ConfigError(rule.field, f"rule for {name} on {adb.arch.name}: libseccomp "
                                          "2.5 never finishes adding it (its rule tree becomes "
                                          "cyclic), so runc would hang; refusing") from None
                    if rc < 0:
                        raise ConfigError(rule.field, f"rule for {name} on {adb.arch.name} conflicts "
                                          "with an earlier rule with the same checks and a different "
                                          "action (libseccomp: EEXIST)")
    return dbs


def libseccomp_tree_layout(profile: Profile) -> bool:
    """runc turns on libseccomp's binary tree above 32 syscall entries (one per name)."""
    return sum(len(rule.names) for rule in profile.rules) > 32


def _condition_sets(rule: Rule) -> list[list[Cond]]:
    conds = [Cond(a.index, a.op, a.mask, a.datum) for a in rule.args]
    indexes = [c.arg for c in conds]
    if len(set(indexes)) != len(indexes):
        return [[c] for c in conds]
    return [conds]


def pseudo_number(name: str) -> int:
    """libseccomp's stand-in (a negative "pseudo syscall") for a name with no number
    on an arch. Rules on it stay in the database but produce no code; they still
    count for conflicts and for the order of a linear filter (see codegen)."""
    return -10000 - _PSEUDO.setdefault(name, len(_PSEUDO))


_PSEUDO: dict[str, int] = {}


def _add(adb: ArchDB, name: str, action: int, conds: list[Cond]) -> int:
    arch = adb.arch
    number = arch.number(name)
    mux: tuple[int | None, int] | None = None
    if arch.socketcall is not None and name in SOCKET_CALLS:
        mux = (arch.socketcall, SOCKET_CALLS.index(name) + 1)
    elif arch.ipc is not None and name in IPC_CALLS:
        mux = (arch.ipc, IPC_CALLS[name])
    if mux is not None:
        muxed = [c for c in conds if c.arg != 0] + [Cond(0, EQ, DATUM_MAX, mux[1])]
        rc = adb.db.add(mux[0], action, muxed)  # type: ignore[arg-type]
        if rc < 0:
            return rc
        return adb.db.add(pseudo_number(name) if number is None else number, action, conds)
    if number is None:
        if arch.socketcall is not None:
            return 0  # arches with multiplexers drop other pseudo syscalls
        return adb.db.add(pseudo_number(name), action, conds)
    return adb.db.add(number, action, conds)
