"""Device rules: runc's emulator semantics, v1 lines, and the eBPF program's
decisions (run in a small interpreter against a model of the v1 kernel check)."""

import itertools

import pytest
from hypothesis import given, settings, strategies as st

from pyrunc.cgroups import devices as d
from pyrunc.errors import ConfigError
from testlib import typed

from .ebpf_interp import run

W = d.WILDCARD


def parse_rules(raw):
    """devices.parse_rules of a raw linux.resources.devices list, read as create reads it."""
    return d.parse_rules(typed({"devices": raw}).devices)


def rule(allow, t="c", major=W, minor=W, access="rwm"):
    return d.Rule(allow, t, major, minor, access)


def test_parse_rules():
    rules = parse_rules([{"allow": False, "access": "rwm"},
                           {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "wr"},
                           {"allow": True, "type": "b", "major": 8}])
    assert rules == [rule(False, "a"), rule(True, "c", 1, 3, "rw"), rule(True, "b", 8, W, "rwm")]


@pytest.mark.parametrize("raw,field", [
    ([{"type": "c"}], r"devices\[0\]\.allow"),
    ([{"allow": True, "type": "x"}], r"devices\[0\]\.type"),
    ([{"allow": True, "type": "c", "major": -3}], r"devices\[0\]\.major"),
    ([{"allow": True, "access": "rwx"}], r"devices\[0\]\.access"),
    ({"allow": True}, r"\.devices: must be an array"),
])
def test_parse_rules_bad(raw, field):
    with pytest.raises(ConfigError, match=field):
        parse_rules(raw)


def test_defaults_only():
    state = d.compute([])
    assert state.default_allow is False
    lines = [r.line() for r in state.exceptions]
    assert sorted(lines) == sorted(["c *:* m", "b *:* m", "c 1:3 rwm", "c 1:8 rwm", "c 1:7 rwm", "c 5:0 rwm",
                                    "c 1:5 rwm", "c 1:9 rwm", "c 5:1 rwm", "c 136:* rwm", "c 5:2 rwm",
                                    "c 10:200 rwm"])


def test_default_list_is_runcs():
    assert [r.line() for r in d.DEFAULT_RULES] == [
        "c *:* m", "b *:* m", "c 1:3 rwm", "c 1:8 rwm", "c 1:7 rwm", "c 5:0 rwm", "c 1:5 rwm",
        "c 1:9 rwm", "c 5:1 rwm", "c 136:* rwm", "c 5:2 rwm", "c 10:200 rwm"]


def test_v1_plan_deny_all_then_allow():
    plan = d.v1_plan(d.compute([rule(False, "a")]))
    assert list(plan) == ["devices.deny", "devices.allow"]
    assert plan["devices.deny"] == "a"
    assert "c 1:3 rwm" in plan["devices.allow"].split("\n")


def test_v1_plan_allow_all():
    # an allow-all rule after the defaults would be odd; before them it makes a blacklist
    state = d.compute([rule(True, "a"), rule(False, "c", 4, W, "rw")], with_defaults=False)
    assert d.v1_plan(state) == {"devices.allow": "a", "devices.deny": "c 4:* rw"}


def test_allow_all_then_defaults_stays_allow_all():
    state = d.compute([rule(True, "a")])
    assert state.default_allow and state.exceptions == ()


def test_access_merges_and_subtracts():
    emu = d.Emulator(default_allow=False)
    emu.apply(rule(True, "c", 1, 3, "r"))
    emu.apply(rule(True, "c", 1, 3, "w"))
    emu.apply(rule(False, "c", 1, 3, "r"))
    assert emu.state().exceptions == (rule(True, "c", 1, 3, "w"),)


def test_hole_in_wildcard_refused():
    with pytest.raises(ConfigError, match="cannot punch a hole"):
        d.compute([rule(False, "a"), rule(True, "c", 136, W, "rwm"), rule(False, "c", 136, 2, "w")],
                  with_defaults=False)


def test_parse_list_round_trip():
    state = d.compute([rule(False, "a")])
    text = "\n".join(r.line() for r in state.exceptions)
    assert set(d.parse_list(text).exceptions) == set(state.exceptions)
    assert d.parse_list("a *:* rwm\n") == d.DeviceState(True, ())


def test_disassembly_of_defaults():
    prog = d.bpf_program(d.compute([rule(False, "a"), rule(True, "c", 4, 64, "rw")], with_defaults=False))
    assert d.disassemble(prog) == [
        "ldxw r2, [r1+0]", "and32 r2, 65535", "ldxw r3, [r1+0]", "rsh32 r3, 16",
        "ldxw r4, [r1+4]", "ldxw r5, [r1+8]",
        "jne r2, 2, +7", "mov32 r1, r3", "and32 r1, 6", "jne r1, r3, +4", "jne r4, 4, +3", "jne r5, 64, +2",
        "mov32 r0, 1", "exit",
        "mov32 r0, 0", "exit"]


# --- decisions ------------------------------------------------------------------------
ACC = {"m": 1, "r": 2, "w": 4}
TYPES = {"c": 2, "b": 1}


def kernel_v1_allows(state, t, major, minor, access):
    """The v1 devices controller's check (security/device_cgroup.c): in
    whitelist mode one exception must cover every requested bit; in
    blacklist mode any exception sharing a bit denies."""
    def matches(ex):
        return (ex.type == t and ex.major in (W, major) and ex.minor in (W, minor))
    if not state.default_allow:
        return any(matches(ex) and set(access) <= set(ex.access) for ex in state.exceptions)
    return not any(matches(ex) and set(access) & set(ex.access) for ex in state.exceptions)


def decide(prog, t, major, minor, access):
    bits = 0
    for c in access:
        bits |= ACC[c]
    return run(prog, TYPES[t], bits, major, minor) == 1


REQUESTS = [(t, ma, mi, "".join(acc))
            for t in "cb" for ma, mi in [(1, 3), (1, 5), (136, 4), (8, 0), (4, 64), (10, 200), (5, 1), (0, 0)]
            for n in (1, 2, 3) for acc in itertools.combinations("rwm", n)]


def test_default_program_decisions():
    state = d.compute([rule(False, "a")])
    prog = d.bpf_program(state)
    assert decide(prog, "c", 1, 3, "rw")  # /dev/null
    assert decide(prog, "c", 136, 7, "rw")  # a pts
    assert decide(prog, "b", 8, 0, "m")  # mknod of any block device is allowed ...
    assert not decide(prog, "b", 8, 0, "r")  # ... opening it is not
    assert not decide(prog, "c", 4, 64, "w")
    for req in REQUESTS:
        assert decide(prog, *req) == kernel_v1_allows(state, *req), req


def test_blacklist_partial_overlap_denies():
    state = d.compute([rule(True, "a"), rule(False, "c", 1, 3, "w")], with_defaults=False)
    prog = d.bpf_program(state)
    assert decide(prog, "c", 1, 3, "r")
    assert not decide(prog, "c", 1, 3, "w")
    assert not decide(prog, "c", 1, 3, "rw")  # O_RDWR must not slip past a "w" deny


rules_st = st.lists(st.builds(
    d.Rule, st.booleans(), st.sampled_from("acb"), st.sampled_from([W, 1, 4, 8, 136]),
    st.sampled_from([W, 0, 3, 64]), st.sampled_from(["r", "w", "m", "rw", "rm", "wm", "rwm"])), max_size=8)


@settings(max_examples=300, deadline=None)
@given(rules_st, st.booleans())
def test_program_agrees_with_v1_model(rules, defaults):
    try:
        state = d.compute(rules, with_defaults=defaults)
    except ConfigError:
        return  # a hole in a wildcard: refused on both hierarchies
    prog = d.bpf_program(state)
    for req in REQUESTS:
        assert decide(prog, *req) == kernel_v1_allows(state, *req), (req, state)


@settings(max_examples=200, deadline=None)
@given(rules_st)
def test_emulator_matches_sequential_v1_writes(rules):
    """Folding the rules equals replaying them as devices.allow/deny writes on
    a kernel-like model (exact-key add/remove of access bits)."""
    try:
        state = d.compute(rules, with_defaults=False)
    except ConfigError:
        return
    default_allow, table = False, {}
    for r in rules:
        if r.type == "a":
            default_allow, table = r.allow, {}
            continue
        key = (r.type, r.major, r.minor)
        if r.allow != default_allow:
            table[key] = table.get(key, set()) | set(r.access)
        else:
            left = table.get(key, set()) - set(r.access)
            if left:
                table[key] = left
            else:
                table.pop(key, None)
    assert state.default_allow == default_allow
    assert {(e.type, e.major, e.minor): set(e.access) for e in state.exceptions} == table
