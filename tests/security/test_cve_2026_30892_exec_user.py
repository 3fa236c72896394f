"""SECURITY-ANCHORS §16, CVE-2026-30892 (crun): `exec --user` parsing.

Every spelling either runs with exactly the ids asked for or is refused; a
non-zero uid never turns into uid 0 (4294967296 must not wrap around).
"""

from __future__ import annotations

import re

import pytest

CASES = ["1000:1000", "1000", "0:1000", "1000:0", "abc", "1000:", ":1000", "4294967296", "4294967296:0",
         "-1", "1000:4294967296", " 1000"]


@pytest.fixture
def running(rt, make_bundle):
    rt.require("exec")
    return rt.detach(make_bundle().args("sleep", "60"))


def test_exec_user_spellings(rt, running, host) -> None:
    rt.oracle_gap("`exec --user 4294967296` wraps around and runs as uid 0")
    for spec in CASES:
        out = rt("exec", "--user", spec, running, "id")
        if out.returncode != 0:
            continue  # refused: fine
        m = re.match(r"uid=(\d+)(?:\([^)]*\))? gid=(\d+)", out.stdout)
        assert m, (spec, out.stdout)
        uid, gid = int(m.group(1)), int(m.group(2))
        want_uid, _, want_gid = spec.strip().partition(":")
        if want_uid.isdigit():
            assert uid == int(want_uid), (spec, out.stdout)
        if want_gid.isdigit():
            assert gid == int(want_gid), (spec, out.stdout)
        if want_uid.strip() not in ("", "0"):
            assert uid != 0, f"{rt.name}: --user {spec!r} ran as root: {out.stdout}"
