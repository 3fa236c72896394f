"""Privileges as config.json says: /proc/self/status inside the container, pyrunc and runc alike.

Expected values follow from the config and the kernel's execve rules
(capabilities(7)): for a process with no file capabilities,
  uid 0:     P' = bounding | I,  E' = P'   (root's file sets count as full),
             capped to the old permitted set when noNewPrivileges is on
  uid != 0:  P' = E' = A'       (only ambient survives)
  I' = I, bounding' = bounding, A' = A & P & I.
Inheritable and ambient are empty unless listed (CVE-2022-29162).
"""

from __future__ import annotations

import pytest

from seclib import DOCKER_CAPS, parse_status
from pyrunc.capabilities import prepare_caps

STATUS = "grep -E '^(Cap|NoNewPrivs|Seccomp)' /proc/self/status"


def expected(config: dict) -> dict[str, int]:
    plan = prepare_caps(config["process"].get("capabilities"))
    bnd, inh, amb = plan.mask("bounding"), plan.mask("inheritable"), plan.mask("ambient")
    nnp = bool(config["process"].get("noNewPrivileges", False))
    if config["process"].get("user", {}).get("uid", 0) == 0:
        prm = bnd | inh
        if nnp:
            prm &= plan.mask("permitted")
        eff = prm
    else:
        prm = eff = amb
    return {"CapInh": inh, "CapPrm": prm, "CapEff": eff, "CapBnd": bnd, "CapAmb": amb,
            "NoNewPrivs": int(nnp)}


def run_status(rt, bundle) -> dict[str, str]:
    bundle.sh(STATUS)
    out = rt.run(bundle)
    assert out.returncode == 0, out.stderr
    return parse_status(out.stdout)


def check(rt, bundle) -> dict[str, str]:
    status = run_status(rt, bundle)
    want = expected(bundle.config)
    got = {k: int(status[k], 16) for k in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")}
    got["NoNewPrivs"] = int(status["NoNewPrivs"])
    assert got == want, f"{rt.name}: {status}"
    return status


def test_docker_default_root(rt, make_bundle, host) -> None:
    status = check(rt, make_bundle())
    assert status["Seccomp"] == "0"


def test_runc_spec_template_ambient_without_inheritable(rt, make_bundle, host) -> None:
    b = make_bundle()
    three = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
    b.process["capabilities"] = {s: list(three) for s in ("bounding", "effective", "permitted", "ambient")}
    status = check(rt, b)
    assert int(status["CapAmb"], 16) == 0 and int(status["CapInh"], 16) == 0


def test_no_capabilities_object_means_none(rt, make_bundle, host) -> None:
    b = make_bundle()
    del b.process["capabilities"]
    status = check(rt, b)
    assert int(status["CapBnd"], 16) == 0 and int(status["CapEff"], 16) == 0


def test_non_root_user_loses_all_but_ambient(rt, make_bundle, host) -> None:
    b = make_bundle()
    b.process["user"] = {"uid": 1000, "gid": 1000}
    status = check(rt, b)
    assert int(status["CapEff"], 16) == 0


def test_non_root_user_with_ambient(rt, make_bundle, host) -> None:
    b = make_bundle()
    b.process["user"] = {"uid": 1000, "gid": 1000, "additionalGids": [5, 6]}
    caps = ["CAP_NET_BIND_SERVICE", "CAP_KILL"]
    b.process["capabilities"] = {"bounding": DOCKER_CAPS, "effective": caps, "permitted": caps,
                                 "inheritable": caps, "ambient": caps}
    status = check(rt, b)
    assert int(status["CapAmb"], 16) == (1 << 10) | (1 << 5)


def test_bounding_wider_than_permitted_as_root(rt, make_bundle, host) -> None:
    b = make_bundle()
    b.process["capabilities"] = {"bounding": DOCKER_CAPS + ["CAP_NET_ADMIN"], "effective": ["CAP_CHOWN"],
                                 "permitted": ["CAP_CHOWN"]}
    check(rt, b)


def test_unknown_capability_is_ignored(rt, make_bundle, host) -> None:
    b = make_bundle()
    b.process["capabilities"] = {s: ["CAP_KILL", "CAP_NOT_A_THING"] for s in ("bounding", "effective", "permitted")}
    check(rt, b)


@pytest.mark.parametrize("nnp", [True, False])
def test_no_new_privileges(rt, make_bundle, host, nnp: bool) -> None:
    b = make_bundle()
    b.process["noNewPrivileges"] = nnp
    if not nnp:
        del b.process["noNewPrivileges"]  # absent means false (runc)
    assert run_status(rt, b)["NoNewPrivs"] == str(int(nnp))


def test_seccomp_filter_installed(rt, make_bundle, host) -> None:
    b = make_bundle()
    b.config["linux"]["seccomp"] = {"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"],
                                    "syscalls": [{"names": ["mkdirat", "mkdir"], "action": "SCMP_ACT_ERRNO"}]}
    b.sh(STATUS + "; mkdir /x && echo made-dir")
    out = rt.run(b)
    status = parse_status(out.stdout)
    assert status.get("Seccomp") == "2", out.stdout + out.stderr
    assert status.get("Seccomp_filters") == "1"
    assert "made-dir" not in out.stdout


def test_no_seccomp_when_absent(rt, make_bundle, host) -> None:
    status = run_status(rt, make_bundle())
    assert status["Seccomp"] == "0"
