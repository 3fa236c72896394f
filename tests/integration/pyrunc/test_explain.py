"""`pyrunc explain`: the plan it prints is what the container really gets.

Each config is explained (`--format json`), then run for real with pyrunc; a
probe in the container writes what its process has (/proc/$$/status caps,
NoNewPrivs and Seccomp, limits, mountinfo, environ, ids, cwd, hostname,
namespaces, sysctls) to a bound directory, and the host reads the cgroup files.
Every fact must equal the plan. The configs: runc's default, a hand-written one
that sets much of the rest, and podman's and containerd's configs captured
from the drop-in tests (tests/data/configs), with their host paths (rootfs,
bind sources, sandbox namespaces) replaced by this test's.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid

import pytest

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "data", "configs")
HOST_NS = ("ipc", "uts", "net", "pid", "mnt", "cgroup", "user", "time")
NS_FILE = {"network": "net", "mount": "mnt"}
PROBE = r"""exec >/probe/out.tmp 2>&1
echo @status; cat /proc/$$/status
echo @limits; cat /proc/$$/limits
echo @mountinfo; cat /proc/$$/mountinfo
echo @environ; tr '\0' '\n' </proc/$$/environ
echo @id; id -u; id -g; id -G
echo @cwd; pwd
echo @hostname; hostname
echo @ns; for n in %s; do readlink /proc/self/ns/$n; done
echo @maps; cat /proc/self/uid_map /proc/self/gid_map
echo @sysctl; for p in %s; do echo "$p=$(cat /proc/sys/$p)"; done
echo @end
mv /probe/out.tmp /probe/out
exec sleep 600
"""


def explain(rt, *args: str) -> dict:
    proc = rt("explain", "--format", "json", *args)
    assert proc.returncode == 0, proc.stderr.decode()
    return json.loads(proc.stdout)


# ------------------------------------------------------------------ configs
def _hand_written(config: dict, tmp_path) -> dict:
    """Much of what the default leaves out: limits, caps for a non-root user, seccomp, sysctls."""
    config["hostname"] = "explained"
    config["linux"]["resources"] = {"memory": {"limit": 104857600}, "pids": {"limit": 123},
                                    "cpu": {"shares": 512}, "devices": config["linux"]["resources"]["devices"]}
    config["linux"]["sysctl"] = {"kernel.shmmax": "65536", "net.ipv4.ip_forward": "1"}
    proc = config["process"]
    proc["user"] = {"uid": 1000, "gid": 1000, "additionalGids": [1001, 1002]}
    proc["cwd"] = "/tmp"
    proc["env"] += ["EXPLAIN=yes", "HOME=/tmp"]
    proc["rlimits"] = [{"type": "RLIMIT_NOFILE", "soft": 512, "hard": 768},
                       {"type": "RLIMIT_CORE", "soft": 0, "hard": 0}]
    caps = ["CAP_CHOWN", "CAP_NET_BIND_SERVICE", "CAP_KILL"]
    proc["capabilities"] = {"bounding": caps + ["CAP_SYS_ADMIN"], "effective": caps, "permitted": caps,
                            "inheritable": ["CAP_NET_BIND_SERVICE", "CAP_KILL"], "ambient": ["CAP_NET_BIND_SERVICE"]}
    proc["noNewPrivileges"] = True
    config["linux"]["seccomp"] = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["mknod", "mknodat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1},
        {"names": ["kexec_load"], "action": "SCMP_ACT_KILL"}]}
    return config


def _root_with_caps(config: dict, tmp_path) -> dict:
    """uid 0 without no_new_privs: execve gives it bounding | inheritable, whatever permitted said."""
    proc = config["process"]
    proc["noNewPrivileges"] = False
    proc["capabilities"] = {"bounding": ["CAP_CHOWN", "CAP_SETUID", "CAP_SETGID"], "effective": ["CAP_CHOWN"],
                            "permitted": ["CAP_CHOWN"], "inheritable": ["CAP_SETGID"]}
    config["root"]["readonly"] = False
    return config


def _userns(config: dict, tmp_path) -> dict:
    """A user namespace: root in the container is host uid 100000; the maps are part of the plan."""
    config["linux"]["namespaces"].append({"type": "user"})
    config["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    config["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    config["mounts"] = [m for m in config["mounts"] if m["destination"] != "/sys/fs/cgroup"]
    config["root"]["readonly"] = False
    rootfs = config["root"]["path"]
    subprocess.run(["chown", "-R", "100000:100000", rootfs], check=True)
    path = os.path.dirname(rootfs)
    while path != "/":  # the mapped root must be able to reach its rootfs
        os.chmod(path, os.stat(path).st_mode | 0o011)
        path = os.path.dirname(path)
    return config


def _captured(name: str):
    def make(config: dict, tmp_path) -> dict:
        with open(os.path.join(DATA, name)) as f:
            captured = json.load(f)
        srcs = tmp_path / "srcs"
        srcs.mkdir(exist_ok=True)
        for i, m in enumerate(captured.get("mounts", [])):
            if m.get("type") == "bind" or "bind" in m.get("options", []) or "rbind" in m.get("options", []):
                src = srcs / f"m{i}"
                if m["destination"].startswith(("/etc/", "/run/.")):
                    src.write_text(f"from the test for {m['destination']}\n")
                else:
                    src.mkdir()
                m["source"] = str(src)
        for ns in captured["linux"].get("namespaces", []):
            ns.pop("path", None)  # the sandbox's namespaces: new ones here
        captured["root"]["path"] = config["root"]["path"]
        captured["process"]["terminal"] = False
        return captured
    return make


def _resources(res: dict):
    """Limits whose files create picks against the host's hierarchy (cgroups/v1host)."""
    def make(config: dict, tmp_path) -> dict:
        config["linux"]["resources"].update(res)
        return config
    return make


CASES = {
    "runc-default": lambda config, tmp_path: config,
    "hand-written": _hand_written,
    "root-caps": _root_with_caps,
    "userns": _userns,
    "podman-run": _captured("podman-run.json"),
    "containerd-sandbox": _captured("containerd-sandbox.json"),
    "containerd-container": _captured("containerd-container.json"),
    # blkio.weight goes to bfq's file where CFQ's is gone (this host: only below the root)
    "blkio-weight": _resources({"blockIO": {"weight": 300}}),
    # memory and memsw in the order a new cgroup takes them; -1 implies memsw -1
    "memory-swap": _resources({"memory": {"limit": 100 << 20, "swap": 200 << 20}}),
    "memory-unlimited": _resources({"memory": {"limit": -1}}),
    # below a parent create makes: it is seeded (cpuset) and given rt runtime first
    "realtime-nested": _resources({"cpu": {"realtimeRuntime": 1000}}),
}
CGROUPS_PATH = {"realtime-nested": "/pyrunc/{cid}-p/{cid}"}


def _prepare(bundle, cid: str, tmp_path, case: str) -> str:
    """The case's config, its probe bound at /probe, written to the bundle."""
    bundle.config["root"]["path"] = bundle.rootfs
    config = CASES[case](bundle.config, tmp_path)
    probe = tmp_path / "probe"
    probe.mkdir()
    os.chmod(probe, 0o777)
    config["mounts"].append({"destination": "/probe", "type": "bind", "source": str(probe), "options": ["rbind", "rw"]})
    if case == "hand-written":  # each hook notes its kind; the plan's order must be the order they ran in
        host, inside = f"{probe}/hooks", "/probe/hooks"
        (probe / "hooks").touch()
        os.chmod(probe / "hooks", 0o666)  # startContainer runs as the process user
        config["hooks"] = {kind: [{"path": "/bin/sh", "args": ["sh", "-c", f"echo {kind} >> {where}"]}]
                           for kind, where in (("createRuntime", host), ("createContainer", host),
                                               ("startContainer", inside), ("poststart", host))}
    config["linux"]["cgroupsPath"] = CGROUPS_PATH.get(case, "/pyrunc/{cid}").format(cid=cid)
    keys = [k.replace(".", "/") for k in config["linux"].get("sysctl", {})]
    config["process"]["args"] = ["sh", "-c", PROBE % (" ".join(HOST_NS), " ".join(keys))]
    config["process"]["terminal"] = False
    bundle.config = config
    bundle.write()
    return str(probe)


def _read_probe(probe: str, timeout: float = 30) -> dict[str, list[str]]:
    out = os.path.join(probe, "out")
    deadline = time.monotonic() + timeout
    while not os.path.exists(out):
        if time.monotonic() > deadline:
            partial = open(out + ".tmp").read() if os.path.exists(out + ".tmp") else "(nothing)"
            raise AssertionError(f"the probe did not finish: {partial}")
        time.sleep(0.05)
    sections: dict[str, list[str]] = {}
    current = None
    for line in open(out).read().splitlines():
        if line.startswith("@"):
            current = sections.setdefault(line[1:], [])
        elif current is not None:
            current.append(line)
    return sections


# ------------------------------------------------------------------ comparing
def _status(lines: list[str]) -> dict[str, str]:
    return {k: v.strip() for k, _, v in (line.partition(":") for line in lines)}


def _check_process(plan: dict, facts: dict[str, list[str]]) -> None:
    status = _status(facts["status"])
    for key, mask in plan["capabilities"]["status"].items():
        assert status[key] == mask, (key, status[key], plan["capabilities"])
    assert status["NoNewPrivs"] == str(int(plan["noNewPrivileges"]["value"]))
    assert status["Seccomp"] == str(plan["seccomp"]["mode"])
    limits = {line[:26].strip(): line[26:].split()[:2] for line in facts["limits"][1:]}
    names = {"RLIMIT_NOFILE": "Max open files", "RLIMIT_NPROC": "Max processes", "RLIMIT_CORE": "Max core file size"}
    for rl in plan["rlimits"]:
        assert limits[names[rl["type"]]] == [str(rl["soft"]), str(rl["hard"])], rl
    p = plan["process"]
    assert sorted(facts["environ"]) == sorted(p["env"])
    uid, gid, groups = facts["id"]
    assert (int(uid), int(gid)) == (p["user"]["uid"], p["user"]["gid"])
    assert set(map(int, groups.split())) == {p["user"]["gid"], *p["user"]["additionalGids"]}
    assert facts["cwd"] == [p["cwd"]]
    if plan["hostname"]["value"] is not None:
        assert facts["hostname"] == [plan["hostname"]["value"]]


def _check_namespaces(plan: dict, facts: dict[str, list[str]]) -> None:
    inside = dict(zip(HOST_NS, facts["ns"]))
    host = {n: os.readlink(f"/proc/self/ns/{n}") for n in HOST_NS}
    for entry in plan["namespaces"]:
        for t in entry["type"].split(","):
            name = NS_FILE.get(t, t)
            if entry["action"] == "join":
                assert entry["pathType"] == t
                assert inside[name] == os.readlink(entry["path"]), (t, "joined")
            elif entry["action"] == "host":
                assert inside[name] == host[name], (t, "shared with the host")
            else:
                assert inside[name] != host[name], (t, "its own")


def _check_maps(plan: dict, facts: dict[str, list[str]]) -> None:
    got = [tuple(map(int, line.split())) for line in facts["maps"]]
    want = [(m["containerID"], m["hostID"], m["size"]) for kind in ("uid", "gid")
            for m in plan["idMappings"] if m["kind"] == kind]
    if not want:  # the host's user namespace: its maps
        want = [tuple(map(int, line.split())) for f in ("uid_map", "gid_map") for line in open(f"/proc/self/{f}")]
    assert got == want, (got, want)


def _check_mounts(plan: dict, facts: dict[str, list[str]]) -> None:
    mounts = {}
    for line in facts["mountinfo"]:
        fields = line.split()
        sep = fields.index("-")
        mounts[fields[4]] = (fields[5].split(","), fields[sep + 1])  # the last mount at a point wins
    root = plan["rootfs"]
    assert ("ro" in mounts["/"][0]) == root["readonly"]
    last = {op.get("target"): i for i, op in enumerate(root["ops"])}  # a later op at the same target covers it
    for i, op in enumerate(root["ops"]):
        target = op.get("target")
        if op["kind"] in ("mount", "bind", "cgroup"):
            assert target in mounts, (op["field"], target, sorted(mounts))
            opts, fstype = mounts[target]
            if last[target] != i:
                continue
            if op["kind"] == "mount":
                assert fstype == op["fstype"], (op["field"], fstype)
                assert ("ro" in opts) == ("ro" in op.get("flags", [])), (op["field"], opts)
            if op["kind"] == "bind" and "ro" in op.get("remount", []):
                assert "ro" in opts, (op["field"], opts)


def _check_sysctl(plan: dict, facts: dict[str, list[str]]) -> None:
    got = dict(line.split("=", 1) for line in facts["sysctl"] if "=" in line)
    for sc in plan["sysctl"]:
        assert sc["applied"]
        assert got[sc["key"].replace(".", "/")].split() == sc["value"].split(), sc  # the kernel prints tabs


def _check_cgroup(plan: dict) -> None:
    """From the host: every file the plan writes holds its value (as the kernel stores it)."""
    page = os.sysconf("SC_PAGE_SIZE")
    last = {w["path"]: w for w in plan["cgroup"]["writes"]}  # a later write to a file replaces an earlier one
    for w in last.values():
        if w["file"].startswith("devices."):
            continue  # write-only; checked through devices.list below
        with open(w["path"]) as f:
            got = f.read().strip()
        if "limit_in_bytes" in w["file"] and w["value"] == "-1":
            assert int(got) >= 1 << 62, (w, got)  # unlimited: the kernel shows its largest page count
        elif "limit_in_bytes" in w["file"]:
            assert int(got) == int(w["value"]) // page * page, w
        else:
            assert got == w["value"], (w, got)
    deny = [w for w in plan["cgroup"]["writes"] if w["file"] == "devices.deny" and w["value"] == "a"]
    if deny:
        allow = next(w for w in plan["cgroup"]["writes"] if w["file"] == "devices.allow")
        with open(os.path.join(os.path.dirname(allow["path"]), "devices.list")) as f:
            listed = set(f.read().split("\n"))
        assert set(allow["value"].split("\n")) <= listed


def _check_host_decisions(plan: dict, case: str) -> None:
    """The files and order create picked against the hierarchy are the ones the plan names."""
    cg = plan["cgroup"]
    writes = cg["writes"]
    if case == "blkio-weight":
        (w,) = [w for w in writes if w["field"] == ".linux.resources.blockIO.weight"]
        here = set(os.listdir(cg["paths"]["blkio"]))
        assert w["file"] in here and w["value"] == "300", (w, sorted(here))
        if "blkio.weight" not in here:  # CFQ's file gone: bfq's takes the weight
            assert w["file"] == "blkio.bfq.weight"
    if case.startswith("memory-"):
        files = [w["file"] for w in writes if w["controller"] == "memory"]
        memsw = "memory.memsw.limit_in_bytes"
        if os.path.exists(os.path.join(cg["paths"]["memory"], memsw)):
            # a new cgroup is unlimited: a finite limit goes first, an unlimited memsw first
            want = [memsw, "memory.limit_in_bytes"] if case == "memory-unlimited" else ["memory.limit_in_bytes", memsw]
            assert files == want, files
        else:  # swap accounting off: the implied memsw is dropped, an asked one refused
            assert files == ["memory.limit_in_bytes"] if case == "memory-unlimited" else memsw not in files
    if case == "realtime-nested":
        parent = {c: os.path.dirname(p) for c, p in cg["paths"].items()}
        assert {"path": f"{parent['cpu']}/cpu.rt_runtime_us", "value": "1000"} in [
            {"path": w["path"], "value": w["value"]} for w in writes if w["controller"] == "cpu"]
        seeded = [w["path"] for w in writes if w["field"] == ".linux.cgroupsPath"]
        assert seeded[:2] == [f"{parent['cpuset']}/cpuset.cpus", f"{parent['cpuset']}/cpuset.mems"], seeded


def _sandbox(pyrunc, tmp_path, busybox_rootfs) -> int:
    """A running container whose namespaces containerd's container config joins (its pod sandbox)."""
    from testlib import Bundle

    sb = Bundle(str(tmp_path / "sandbox"), busybox_rootfs)
    os.makedirs(sb.path, exist_ok=True)
    sb.config["root"]["readonly"] = False
    sb.set_args("sleep", "600")
    sid = f"t-sb{uuid.uuid4().hex[:8]}"
    proc = pyrunc("run", "-d", "-b", sb.path, sid)
    assert proc.returncode == 0, proc.stderr.decode()
    return json.loads(pyrunc("state", sid, check=True).stdout)["pid"]


@pytest.mark.parametrize("case", list(CASES))
def test_plan_is_what_the_container_gets(pyrunc, bundle, cid, tmp_path, busybox_rootfs, case):
    probe = _prepare(bundle, cid, tmp_path, case)
    if case == "containerd-container":  # join a real sandbox's namespaces, as under containerd
        pid = _sandbox(pyrunc, tmp_path, busybox_rootfs)
        for ns in bundle.config["linux"]["namespaces"]:
            if ns["type"] != "mount":
                ns["path"] = f"/proc/{pid}/ns/{NS_FILE.get(ns['type'], ns['type'])}"
        bundle.write()
    plan = explain(pyrunc, "--bundle", bundle.path)
    assert plan["format"] == "pyrunc-explain/1"
    assert not os.path.exists(os.path.join(pyrunc.root, cid)), "explain created nothing"
    assert all(not os.path.exists(d) for d in plan["cgroup"]["paths"].values()), "explain made no cgroup"
    proc = pyrunc("run", "-d", "-b", bundle.path, cid)
    assert proc.returncode == 0, proc.stderr.decode()
    try:
        facts = _read_probe(probe)
        _check_process(plan, facts)
        _check_namespaces(plan, facts)
        _check_maps(plan, facts)
        _check_mounts(plan, facts)
        _check_sysctl(plan, facts)
        _check_cgroup(plan)
        _check_host_decisions(plan, case)
        if plan["hooks"]:
            kinds = [h["kind"] for h in plan["hooks"]]
            deadline = time.monotonic() + 10
            while len(open(os.path.join(probe, "hooks")).read().split()) < len(kinds) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert open(os.path.join(probe, "hooks")).read().split() == kinds
        report = explain(pyrunc, "--container", cid)
        assert report["drift"] == [], report["drift"]
        assert report["checked"] > 10
    finally:
        pyrunc("delete", "-f", cid)


def test_text_form_names_fields(pyrunc, bundle, cid, tmp_path):
    _prepare(bundle, cid, tmp_path, "hand-written")
    proc = pyrunc("explain", "-b", bundle.path)
    assert proc.returncode == 0, proc.stderr.decode()
    text = proc.stdout.decode()
    assert ".linux.resources.memory.limit → memory.limit_in_bytes = 104857600" in text
    assert ".linux.resources.pids.limit → pids.max = 123" in text
    assert ".process.capabilities → ambient after execve = net_bind_service [0000000000000400]" in text
    assert ".linux.sysctl['kernel.shmmax'] → /proc/sys/kernel/shmmax = 65536" in text
    assert "mknod" in text and "ERRNO(1)" in text
    assert all(" → " in line for line in text.splitlines() if not line.startswith("#"))


def test_text_form_names_the_hosts_cgroup_file(pyrunc, bundle, cid, tmp_path):
    """The file create picks against the hierarchy, in the text form too."""
    _prepare(bundle, cid, tmp_path, "blkio-weight")
    here = "/sys/fs/cgroup/blkio/pyrunc"
    if not os.path.isdir(here):
        pytest.skip("needs a v1 blkio hierarchy with a /pyrunc cgroup")
    name = "blkio.weight" if os.path.exists(f"{here}/blkio.weight") else "blkio.bfq.weight"
    proc = pyrunc("explain", "-b", bundle.path)
    assert proc.returncode == 0, proc.stderr.decode()
    assert f".linux.resources.blockIO.weight → {name} = 300\n" in proc.stdout.decode()


def test_diff(pyrunc, tmp_path, busybox_rootfs):
    from testlib import Bundle

    a = Bundle(str(tmp_path / "a"), busybox_rootfs)
    os.makedirs(a.path, exist_ok=True)
    a.write()
    b = Bundle(str(tmp_path / "b"), busybox_rootfs)
    os.makedirs(b.path, exist_ok=True)
    b.config["linux"]["resources"]["pids"] = {"limit": 42}
    b.config["process"]["capabilities"]["bounding"].append("CAP_CHOWN")
    b.config["process"]["env"].append("ONLY_B=1")
    b.write()
    same = explain(pyrunc, "--diff", a.path, os.path.join(a.path, "config.json"))
    assert same["changes"] == []
    out = explain(pyrunc, "--diff", a.path, b.path)
    changes = {c["key"]: c for c in out["changes"]}
    assert changes["cgroup:pids.max"]["a"] is None
    assert changes["cgroup:pids.max"]["b"] == {"field": ".linux.resources.pids.limit", "text": "pids.max = 42"}
    assert "chown" in changes["caps:bounding"]["b"]["text"] and "chown" not in changes["caps:bounding"]["a"]["text"]
    assert changes["process:env:ONLY_B"]["b"]["text"] == "ONLY_B=1"
    assert "rootfs" not in changes  # the paths differ, not the plan
    unchanged = {"caps:inheritable", "nnp", "seccomp", "ns:pid"}
    assert not unchanged & set(changes)
    text = pyrunc("explain", "--diff", a.path, b.path).stdout.decode()
    assert "+ .linux.resources.pids.limit → pids.max = 42" in text
    # podman's captured config against runc's default: the seccomp filter is among the differences
    pod = json.load(open(os.path.join(DATA, "podman-run.json")))
    pod["root"]["path"] = a.rootfs
    with open(tmp_path / "podman.json", "w") as f:
        json.dump(pod, f)
    out = explain(pyrunc, "--diff", a.path, str(tmp_path / "podman.json"))
    keys = {c["key"] for c in out["changes"]}
    assert {"seccomp", "seccomp:ptrace", "cgroup:pids.max", "sysctl:net.ipv4.ping_group_range"} <= keys


def test_container_drift(pyrunc, bundle, cid, tmp_path):
    bundle.config["linux"]["resources"]["pids"] = {"limit": 100}
    bundle.config["linux"]["cgroupsPath"] = f"/pyrunc/{cid}"
    bundle.config["root"]["readonly"] = False
    bundle.set_args("sleep", "600")
    proc = pyrunc("run", "-d", "-b", bundle.path, cid)
    assert proc.returncode == 0, proc.stderr.decode()
    try:
        report = explain(pyrunc, "--container", cid)
        assert report["drift"] == [] and report["status"] == "running"
        pids_max = next(w["path"] for w in report["plan"]["cgroup"]["writes"] if w["file"] == "pids.max")
        with open(pids_max, "w") as f:  # changed behind pyrunc's back
            f.write("77")
        report = explain(pyrunc, "--container", cid)
        assert [(d["field"], d["planned"], d["actual"]) for d in report["drift"]] == [
            (".linux.resources.pids.limit", "100", "77")]
        assert pyrunc("update", "--pids-limit", "55", cid).returncode == 0
        subprocess.run(["nsenter", "-t", str(report["pid"]), "-m", "mount", "-t", "tmpfs", "drift", "/tmp"],
                       check=True)
        subprocess.run(["prlimit", "--pid", str(report["pid"]), "--nofile=256:512"], check=True)
        proc = pyrunc("explain", "--container", cid)
        assert proc.returncode == 0, proc.stderr.decode()
        text = proc.stdout.decode()
        assert ".linux.resources.pids.limit → pids.max: planned 100, kernel shows 55" in text
        assert ".mounts → mount at /tmp: planned not in the plan, kernel shows mounted" in text
        assert ".process.rlimits[0] → RLIMIT_NOFILE: planned [1024, 1024], kernel shows [256, 512]" in text
        assert "3 differ" in text.splitlines()[0]
    finally:
        pyrunc("delete", "-f", cid)


@pytest.mark.parametrize("args, config, message", [
    (("--bundle", "/nonexistent/bundle"), None, "bundle directory /nonexistent/bundle does not exist"),
    (("--config", "{tmp}/bad.json"), "{", "invalid JSON"),
    (("--config", "{tmp}/bad.json"), {"linux": {"resources": {"memory": {"swappiness": 200}}}},
     ".linux.resources.memory.swappiness: 200 is out of range"),
    (("--config", "{tmp}/bad.json"), {"process": {"rlimits": [{"type": "RLIMIT_BOGUS", "soft": 1, "hard": 1}]}},
     ".process.rlimits[0].type"),
    (("--config", "{tmp}/bad.json"), {"mounts": [{"destination": "/proc/self", "type": "tmpfs"}]},
     ".mounts[7]"),
    (("--container", "t-no-such-container"), None, 'container "t-no-such-container" does not exist'),
    (("--diff", "{tmp}"), None, "--diff needs two"),
])
def test_bad_input_is_one_line(pyrunc, bundle, tmp_path, args, config, message):
    if config is not None:
        path = tmp_path / "bad.json"
        if isinstance(config, str):
            path.write_text(config)
        else:
            full = dict(bundle.config)
            full["root"] = {"path": bundle.rootfs}
            for key, value in config.items():
                full[key] = {**full.get(key, {}), **value} if isinstance(value, dict) else full.get(key, []) + value
            path.write_text(json.dumps(full))
    proc = pyrunc("explain", *(a.format(tmp=tmp_path) for a in args))
    err = proc.stderr.decode()
    assert proc.returncode != 0 and proc.stdout == b""
    assert err.startswith("pyrunc: ") and err.count("\n") == 1 and "Traceback" not in err, err
    assert message in err, err


def test_refusals_are_listed_and_real(pyrunc, bundle, cid):
    """What explain says create cannot honour, create indeed refuses."""
    bundle.config["process"]["capabilities"]["inheritable"] = ["CAP_SETGID"]  # not in bounding
    bundle.config["linux"]["sysctl"] = {"vm.swappiness": "10"}  # not namespaced
    bundle.set_args("true")
    plan = explain(pyrunc, "--bundle", bundle.path)
    reasons = {u["field"]: u["reason"] for u in plan["unsupported"]}
    assert "CAP_SETGID" in reasons[".process.capabilities.inheritable"]
    assert "create fails" in reasons[".linux.sysctl['vm.swappiness']"]
    assert plan["sysctl"][0]["applied"] is False
    proc = pyrunc("run", "-b", bundle.path, cid)
    assert proc.returncode != 0 and b"vm.swappiness" in proc.stderr
    del bundle.config["linux"]["sysctl"]
    bundle.write()
    proc = pyrunc("run", "-b", bundle.path, cid)
    assert proc.returncode != 0 and b"CAP_SETGID" in proc.stderr


def test_file_the_hierarchy_lacks_is_listed_and_real(pyrunc, bundle, cid):
    """A file no cgroup of the hierarchy has (CFQ's blkio.leaf_weight where only bfq is left):
    explain lists it as create failing, and create fails naming it."""
    blkio = "/sys/fs/cgroup/blkio"
    if not os.path.isdir(f"{blkio}/pyrunc") or os.path.exists(f"{blkio}/pyrunc/blkio.leaf_weight"):
        pytest.skip("needs a v1 blkio hierarchy whose cgroups lack blkio.leaf_weight (no CFQ)")
    bundle.config["linux"]["resources"]["blockIO"] = {"leafWeight": 300}
    bundle.config["linux"]["cgroupsPath"] = f"/pyrunc/{cid}"
    bundle.set_args("true")
    plan = explain(pyrunc, "--bundle", bundle.path)
    reasons = {u["field"]: u["reason"] for u in plan["unsupported"]}
    assert reasons[".linux.resources.blockIO.leafWeight"] == \
        "the kernel has no blkio.leaf_weight in the blkio hierarchy (create fails)"
    assert [u for u in plan["unsupported"] if "create fails" in u["reason"]] == [
        {"field": ".linux.resources.blockIO.leafWeight", "reason": reasons[".linux.resources.blockIO.leafWeight"]}]
    proc = pyrunc("run", "-b", bundle.path, cid)
    assert proc.returncode != 0 and b"blkio.leaf_weight" in proc.stderr, proc.stderr

