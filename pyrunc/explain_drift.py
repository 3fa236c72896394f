"""`pyrunc explain --container ID`: the plan of a container against what the kernel shows now.

The plan is explain_plan.build of the container's bundle with the cgroup
directories its state.json names; the kernel's side is read from
/proc/PID/ns (which namespaces), /proc/PID/status (capability sets,
NoNewPrivs, Seccomp), /proc/PID/limits,
/proc/PID/mountinfo and the cgroup files. A fact that differs is drift: a
limit changed by hand or by `pyrunc update`, a mount added with nsenter, a
process that gained or lost capabilities. Values the kernel rounds or
rewrites (page-aligned memory limits, -1 as the largest limit, cpu lists)
are compared the way the kernel stores them.
"""

from __future__ import annotations

import os
from typing import Any

from pyrunc.errors import InvalidState

FORMAT = "pyrunc-explain-drift/1"
_STATUS_SETS = ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")
_LIMIT_NAMES = {  # /proc/PID/limits row names (fs/proc/base.c lnames)
    "RLIMIT_CPU": "Max cpu time", "RLIMIT_FSIZE": "Max file size", "RLIMIT_DATA": "Max data size",
    "RLIMIT_STACK": "Max stack size", "RLIMIT_CORE": "Max core file size", "RLIMIT_RSS": "Max resident set",
    "RLIMIT_NPROC": "Max processes", "RLIMIT_NOFILE": "Max open files", "RLIMIT_MEMLOCK": "Max locked memory",
    "RLIMIT_AS": "Max address space", "RLIMIT_LOCKS": "Max file locks", "RLIMIT_SIGPENDING": "Max pending signals",
    "RLIMIT_MSGQUEUE": "Max msgqueue size", "RLIMIT_NICE": "Max nice priority",
    "RLIMIT_RTPRIO": "Max realtime priority", "RLIMIT_RTTIME": "Max realtime timeout"}
_UNREADABLE = ("devices.allow", "devices.deny", "net_prio.ifpriomap")  # write-only, or shows every interface


def drift(store, container_id: str, *, systemd: bool = False, rootless: bool = False) -> dict[str, Any]:
    """The report: plan, every fact compared, and the ones that differ."""
    from pyrunc import explain_plan, spec as specmod
    from pyrunc.state import Status, refresh

    state = store.load(container_id)
    status = refresh(state)
    if status not in (Status.RUNNING, Status.PAUSED) or not state.pid:
        raise InvalidState(f"container {container_id} is {status}: explain --container needs a running container")
    spec = specmod.load(state.bundle)
    plan = explain_plan.build(spec, state.bundle, container_id=container_id, systemd=systemd, rootless=rootless,
                              cgroup_state=state.cgroup or None)
    plan["config"] = os.path.join(state.bundle, "config.json")
    pid = state.pid
    checked: list[dict[str, Any]] = []
    _namespaces(plan, pid, checked)
    _status_facts(plan, _status(pid), checked)
    _limits(plan, pid, checked)
    _cgroup_files(plan, checked)
    _mounts(plan, pid, checked)
    return {"format": FORMAT, "id": container_id, "pid": pid, "status": str(status), "plan": plan,
            "checked": len(checked), "drift": [c for c in checked if not c["same"]]}


def render(report: dict[str, Any], _lines: Any) -> str:
    out = [f"# pyrunc explain --container {report['id']} (pid {report['pid']}, {report['status']}): "
           f"{report['checked']} facts checked, {len(report['drift'])} differ"]
    for d in report["drift"]:
        out.append(f"{d['field']} → {d['what']}: planned {d['planned']}, kernel shows {d['actual']}")
    if not report["drift"]:
        out.append("no drift: the kernel shows what the plan says")
    return "\n".join(out) + "\n"


def _fact(checked: list, field: str, what: str, planned: Any, actual: Any, same: bool | None = None) -> None:
    checked.append({"field": field, "what": what, "planned": planned, "actual": actual,
                    "same": planned == actual if same is None else same})


def _ns_key(path: str) -> tuple[int, int] | None:
    """The identity of the namespace a /proc/PID/ns link or a bind-mounted namespace file names."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def _namespaces(plan: dict, pid: int, checked: list) -> None:
    """Each namespace is the one joined, one of its own, or the host's (this process's), as planned."""
    from pyrunc.namespaces import PROC_NAME

    for entry in plan["namespaces"]:
        for t in entry["type"].split(","):
            link = f"/proc/{pid}/ns/{PROC_NAME[t]}"
            have, host = _ns_key(link), _ns_key(f"/proc/self/ns/{PROC_NAME[t]}")
            if entry["action"] == "join":
                planned, same = f"joined {entry['path']}", have == _ns_key(entry["path"])
            elif entry["action"] == "new":
                planned, same = "its own", have != host
            else:
                planned, same = "the host's", have == host
            actual = planned if same else (os.readlink(link) if have else "(gone)")
            _fact(checked, entry["field"], f"{t} namespace", planned, actual, same)


def _status(pid: int) -> dict[str, str]:
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            out[key] = value.strip()
    return out


def _status_facts(plan: dict, status: dict[str, str], checked: list) -> None:
    caps = plan["capabilities"]
    for key in _STATUS_SETS:
        _fact(checked, caps["field"], key, caps["status"][key], status.get(key))
    nnp = plan["noNewPrivileges"]
    _fact(checked, nnp["field"], "NoNewPrivs", str(int(nnp["value"])), status.get("NoNewPrivs"))
    sc = plan["seccomp"]
    _fact(checked, sc["field"], "Seccomp", str(sc["mode"]), status.get("Seccomp"))


def _limits(plan: dict, pid: int, checked: list) -> None:
    with open(f"/proc/{pid}/limits") as f:
        rows = {line[:26].strip(): line[26:].split() for line in f.readlines()[1:]}
    for rl in plan["rlimits"]:
        row = rows.get(_LIMIT_NAMES[rl["type"]], ["?", "?"])
        actual = [-1 if v == "unlimited" else int(v) if v.isdigit() else v for v in row[:2]]
        planned = [-1 if v >= (1 << 64) - 1 else v for v in (rl["soft"], rl["hard"])]
        _fact(checked, rl["field"], rl["type"], planned, actual)


def _cgroup_files(plan: dict, checked: list) -> None:
    last = {w["path"]: w for w in plan["cgroup"]["writes"]}  # a later write to a file replaces an earlier one
    for w in last.values():
        if w["file"] in _UNREADABLE:
            continue
        try:
            with open(w["path"]) as f:
                actual = f.read().strip()
        except OSError as err:
            actual = f"({err.strerror})"
        _fact(checked, w["field"], w["file"], w["value"], actual, _same_cgroup_value(w["file"], w["value"], actual))


def _same_cgroup_value(name: str, planned: str, actual: str) -> bool:
    """Whether the kernel holds `planned` when it shows `actual`."""
    if planned == actual:
        return True
    if name == "memory.oom_control":
        return f"oom_kill_disable {planned}" in actual.splitlines()
    if name.startswith("cpuset."):
        from pyrunc.cgroups.resources import parse_cpu_list

        try:
            return parse_cpu_list(planned) == parse_cpu_list(actual)
        except ValueError:
            return False
    if planned.lstrip("-").isdigit() and actual.isdigit():
        want, got = int(planned), int(actual)
        if "limit_in_bytes" in name or name in ("memory.max", "memory.low", "memory.swap.max"):
            page = os.sysconf("SC_PAGE_SIZE")
            return got == (want // page) * page or (want == -1 and got >= 1 << 62)
        return False
    if "\n" in planned or " " in planned:  # one line per device: each must be there
        return set(planned.splitlines()) <= set(actual.splitlines())
    return False


def _mounts(plan: dict, pid: int, checked: list) -> None:
    """Every mount the plan makes must be a mount point; one it does not make is drift."""
    with open(f"/proc/{pid}/mountinfo") as f:
        points = [line.split()[4].replace("\\040", " ") for line in f]
    made, known, trees = [], {"/", "/dev/console"}, []
    for op in plan["rootfs"]["ops"]:
        target = op.get("target") or op["destination"]
        if op["kind"] in ("mount", "bind", "cgroup") or (op["kind"] == "device" and op.get("bind_node")):
            made.append((op["field"], target))
        if op["kind"] in ("mask", "readonly", "device", "mount", "bind", "cgroup"):
            known.add(target)
        if op["kind"] == "cgroup":
            trees.append(target.rstrip("/") + "/")
    for field, target in made:
        _fact(checked, field, f"mount at {target}", "mounted", "mounted" if target in points else "not mounted")
    for point in points:
        if point in known or any(point.startswith(t) for t in trees):
            continue
        _fact(checked, ".mounts", f"mount at {point}", "not in the plan", "mounted")
