"""`pyrunc explain` as an ordinary user: the plan of a rootless bundle is what the container gets
(capability sets, no_new_privs, the id maps), and explain makes no state root, cgroup or container."""

from __future__ import annotations

import json
import os

from testlib import PYRUNC


def test_explain_as_user_is_what_the_container_gets(rootless_user):
    u = rootless_user
    b = u.bundle(f"b-explain-{os.urandom(4).hex()}", [
        "sh", "-c", "grep -E '^(Cap|NoNewPrivs|Seccomp)' /proc/$$/status; echo @; cat /proc/$$/uid_map /proc/$$/gid_map"])
    before = os.path.exists(os.path.join(u.xdg, "pyrunc"))
    proc = u.run([PYRUNC, "explain", "--format", "json", "-b", b])
    assert proc.returncode == 0, proc.stderr
    plan = json.loads(proc.stdout)
    assert plan["host"]["euid"] == u.uid
    assert os.path.exists(os.path.join(u.xdg, "pyrunc")) == before  # no state root made
    assert [w for w in plan["cgroup"]["writes"]] == []  # no limits, no device rules (rootless)
    proc = u.run([PYRUNC, "run", "-b", b, f"explain-{os.urandom(3).hex()}"])
    assert proc.returncode == 0, proc.stderr
    status, _, maps = proc.stdout.partition("@\n")
    got = {k: v.strip() for k, _, v in (line.partition(":") for line in status.splitlines())}
    for key, mask in plan["capabilities"]["status"].items():
        assert got[key] == mask, (key, got, plan["capabilities"])
    assert got["NoNewPrivs"] == str(int(plan["noNewPrivileges"]["value"]))
    assert got["Seccomp"] == str(plan["seccomp"]["mode"])
    want = [[m["containerID"], m["hostID"], m["size"]] for kind in ("uid", "gid")
            for m in plan["idMappings"] if m["kind"] == kind]
    assert [list(map(int, line.split())) for line in maps.splitlines()] == want


def test_explain_refuses_what_rootless_create_refuses(rootless_user):
    u = rootless_user

    def groups(config):
        config["process"]["user"]["additionalGids"] = [5]

    def no_userns(config):
        config["linux"]["namespaces"] = [n for n in config["linux"]["namespaces"] if n["type"] != "user"]

    for edit, field in ((groups, ".process.user.additionalGids"), (no_userns, ".linux.namespaces")):
        b = u.bundle(f"b-explain-{os.urandom(4).hex()}", ["true"], edit=edit)
        explained = u.run([PYRUNC, "explain", "-b", b])
        ran = u.run([PYRUNC, "run", "-b", b, f"explain-{os.urandom(3).hex()}"])
        assert explained.returncode == ran.returncode == 1
        assert explained.stderr == ran.stderr and field in explained.stderr and explained.stderr.count("\n") == 1
