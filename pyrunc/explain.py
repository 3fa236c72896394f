"""`pyrunc explain`: show what create would do with a config on this host, before it runs.

    pyrunc explain [--bundle DIR | --config FILE] [--format text|json]
    pyrunc explain --diff A B          A and B: bundle directories or config files
    pyrunc explain --container ID      the plan of a running container against the kernel's view

The plan itself is explain_plan.build (create's own plan functions, nothing
re-interpreted); this module chooses the target, renders the plan as lines
("FIELD → what happens") or JSON (docs/EXPLAIN.md), and computes the diff of
two plans. `--container` is explain_drift. Nothing is created, and errors are
PyruncErrors: one line from fastcli.main.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any, Iterator

from pyrunc.errors import PyruncError
from pyrunc.verbs import GlobalOptions

DIFF_FORMAT = "pyrunc-explain-diff/1"


class UsageError(PyruncError):
    """A bad combination of flags (exit 2, as click's usage errors)."""

    exit_code = 2


def explain_verb(g: GlobalOptions, v: dict) -> int:
    """`pyrunc explain`: one of a bundle/config, --diff A B, --container ID."""
    from pyrunc.verbs import rootless_cgroups

    fmt = v.get("format") or "text"
    targets = list(v.get("targets") or ())
    chosen = [n for n in ("bundle", "config", "container") if v.get(n)] + (["--diff"] if v.get("diff") else [])
    if len(chosen) > 1:
        raise UsageError(f"explain: use only one of --bundle, --config, --diff, --container (got {', '.join(chosen)})")
    rootless = rootless_cgroups(g)
    if v.get("container"):
        if targets:
            raise UsageError("explain --container ID takes no other argument")
        from pyrunc import explain_drift
        from pyrunc.verbs import store

        report = explain_drift.drift(store(g), v["container"], systemd=g.systemd_cgroup, rootless=rootless)
        _out(report if fmt == "json" else explain_drift.render(report, lines(report["plan"])))
        return 0
    if v.get("diff"):
        if len(targets) != 2:
            raise UsageError("explain --diff needs two bundles or config files: A B")
        a, b = (_plan(t, g.systemd_cgroup, rootless) for t in targets)
        changes = diff(a, b)
        _out({"format": DIFF_FORMAT, "a": targets[0], "b": targets[1], "changes": changes} if fmt == "json"
             else render_diff(targets[0], targets[1], changes))
        return 0
    if len(targets) > 1:
        raise UsageError("explain takes one bundle or config file (or --diff A B)")
    if v.get("config"):
        if os.path.isdir(v["config"]):
            raise UsageError(f"explain --config: {v['config']} is a directory (use --bundle)")
        target = v["config"]
    else:
        target = v.get("bundle") or (targets[0] if targets else ".")
        if v.get("bundle") and not os.path.isdir(target):
            from pyrunc.errors import ConfigError

            raise ConfigError("", f"bundle directory {target} does not exist")
    plan = _plan(target, g.systemd_cgroup, rootless)
    _out(plan if fmt == "json" else render(plan))
    return 0


def _plan(target: str, systemd: bool, rootless: bool) -> dict[str, Any]:
    from pyrunc import explain_plan

    spec, bundle, path = explain_plan.load_target(target)
    plan = explain_plan.build(spec, bundle, systemd=systemd, rootless=rootless)
    plan["config"] = path
    return plan


def _out(value: Any) -> None:
    if isinstance(value, str):
        sys.stdout.write(value)
    else:
        sys.stdout.write(json.dumps(value, indent=2) + "\n")
    sys.stdout.flush()


# ------------------------------------------------------------------ lines
def lines(plan: dict[str, Any], detail: bool = False) -> Iterator[tuple[str, str, str, str]]:
    """(section, key, field, text) for every fact of the plan, in order. `key`
    identifies the fact across two plans (diff); `detail` lists every
    seccomp rule's syscall instead of one line per action."""
    cg = plan["cgroup"]
    yield "cgroup", "cgroup", cg["field"], f"cgroup {cg['version']} {cg['path']}"
    if detail:
        for ctrl, path in cg["paths"].items():
            yield "cgroup", f"cgroup:dir:{ctrl}", cg["field"], f"{ctrl or 'unified'}: {path}"
    elif cg["version"] == "v1":  # one line: the directories are in the JSON
        same = all(p.endswith(cg["path"]) for p in cg["paths"].values())
        yield ("cgroup", "cgroup:dirs", cg["field"], "in the hierarchies " + ",".join(c or "unified" for c in cg["paths"])
               + ("" if same else " (directories: --format json)"))
    for w in cg["writes"]:  # a value of several lines is several writes: a line each
        where = os.path.relpath(os.path.dirname(w["path"]), cg["paths"].get(w["controller"], "/"))
        seed = w["field"] == cg["field"]  # a new cpuset cgroup given its parent's cpus/mems
        key = f"cgroup:{'seed:' if seed else ''}{w['file']}" + ("" if where == "." else f"@{where}")
        note = " (from its parent)" if seed else ""
        if where != ".":
            note += f" in {os.path.dirname(w['path'])}"
        for j, part in enumerate(w["value"].split("\n")):
            yield "cgroup", key + (f"#{j}" if j else ""), w["field"], f"{w['file']} = {part}{note}"
    if cg.get("devices"):
        d = cg["devices"]
        yield "cgroup", "cgroup:devices", d["field"], f"{d['program']} ({d['instructions']} insns): {'; '.join(d['rules'])}"
    for n in plan["namespaces"]:
        where = f" {n['path']}" if n.get("path") else ""
        yield "namespaces", f"ns:{n['type']}", n["field"], f"{n['action']} {n['type']}{where}"
    for m in plan["idMappings"]:
        yield ("idMappings", f"idmap:{m['kind']}:{m['containerID']}", m["field"],
               f"{m['kind']} {m['containerID']} → host {m['hostID']} (size {m['size']})")
    h = plan["hostname"]
    if h["value"] is not None:
        yield "hostname", "hostname", h["field"], f"hostname = {h['value']}"
    if h["domainname"] is not None:
        yield "hostname", "domainname", ".domainname", f"domainname = {h['domainname']}"
    r = plan["rootfs"]
    yield "rootfs", "rootfs", r["field"], f"{r['path']} (propagation {r['propagation']})"
    seen: dict[str, int] = {}
    for op in r["ops"]:
        base = f"rootfs:{op['kind']}:{op['destination']}"
        seen[base] = seen.get(base, 0) + 1
        target = op.get("target")
        text = " ".join(w for w in op["text"].rsplit("  <- ", 1)[0].split(" ") if not w.startswith("index="))
        if target and target != op["destination"]:
            text += f" (resolves to {target})"
        yield "rootfs", f"{base}#{seen[base]}", op["field"], text
    for sc in plan["sysctl"]:
        text = f"{sc['path']} = {sc['value']}" if sc["applied"] else f"refused (create fails): {sc['reason']}"
        yield "sysctl", f"sysctl:{sc['key']}", sc["field"], text
    for rl in plan["rlimits"]:
        yield "rlimits", f"rlimit:{rl['type']}", rl["field"], f"{rl['type']} soft={rl['soft']} hard={rl['hard']}"
    caps = plan["capabilities"]
    for (name, names), mask in zip(caps["afterExec"].items(), caps["status"].values()):
        yield ("capabilities", f"caps:{name}", caps["field"],
               f"{name} after execve = {','.join(n[4:].lower() for n in names) or '(none)'} [{mask}]")
    nnp = plan["noNewPrivileges"]
    yield "noNewPrivileges", "nnp", nnp["field"], f"no_new_privs = {int(nnp['value'])}"
    sc = plan["seccomp"]
    if not sc["filter"]:
        yield "seccomp", "seccomp", sc["field"], "no filter (Seccomp: 0)"
    else:
        yield ("seccomp", "seccomp", sc["field"],
               f"filter: default {sc['defaultAction']}, {sc['instructions']} instructions, "
               f"{','.join(a[10:].lower() for a in sc['architectures'])}, loaded {sc['loaded']}")
        yield ("seccomp", "seccomp:actions", sc["field"], f"every {sc['arch']} syscall: "
               + ", ".join(f"{a} {n}" for a, n in sc["actions"].items()))
        if detail:
            for rule in sc["syscalls"]:
                cond = " (if its arguments match)" if rule["conditional"] else ""
                yield "seccomp", f"seccomp:{rule['syscall']}", rule["field"], f"{rule['syscall']} → {rule['action']}{cond}"
        else:
            by: dict[str, list[str]] = {}
            for rule in sc["syscalls"]:
                names = by.setdefault(rule["action"] + (" if args match" if rule["conditional"] else ""), [])
                if rule["syscall"] not in names:
                    names.append(rule["syscall"])
            for action, names in by.items():
                yield "seccomp", f"seccomp:{action}", f"{sc['field']}.syscalls", f"{action}: {_wrap(names)}"
    for hk in plan["hooks"]:
        args = " ".join(hk["args"][1:]) if len(hk["args"]) > 1 else ""
        yield ("hooks", f"hook:{hk['kind']}:{hk['field']}", hk["field"],
               f"{hk['path']} {args}".rstrip() + f" — {hk['when']}" + (f", timeout {hk['timeout']}s" if hk["timeout"] else ""))
    p = plan["process"]
    u = p["user"]
    yield "process", "process:args", ".process.args", " ".join(json.dumps(a) for a in p["args"]) or "(none)"
    yield "process", "process:cwd", ".process.cwd", p["cwd"]
    yield ("process", "process:user", ".process.user", f"uid={u['uid']} gid={u['gid']} groups="
           f"{','.join(map(str, u['additionalGids'])) or '(none)'} umask={u['umask']}")
    for item in p["env"]:
        yield "process", f"process:env:{item.partition('=')[0]}", ".process.env", item
    if p["terminal"]:
        yield "process", "process:terminal", ".process.terminal", "a pty as stdio"
    for u in plan["unsupported"]:
        if u["field"].startswith(".linux.sysctl["):
            continue  # the sysctl line says it
        yield "unsupported", f"unsupported:{u['field']}:{u['reason']}", u["field"], u["reason"]


def _wrap(names: list[str], width: int = 8) -> str:
    """A long syscall list cut to `width` names (the JSON has them all)."""
    return ", ".join(names[:width]) + (f", … ({len(names)} in all)" if len(names) > width else "")


def render(plan: dict[str, Any]) -> str:
    """The text form: a heading per section, then `FIELD → what`."""
    out = [f"# pyrunc explain {plan.get('config', '')} (host: {plan['host']['kernel']}, "
           f"cgroup {plan['host']['cgroup']})"]
    section = None
    for sect, _key, field, text in lines(plan):
        if sect != section:
            out.append(f"## {sect}")
            section = sect
        out.append(f"{field} → {text}")
    return "\n".join(out) + "\n"


# ------------------------------------------------------------------ diff
def diff(a: dict[str, Any], b: dict[str, Any]) -> list[dict[str, Any]]:
    """What differs between two plans, fact by fact (seccomp per syscall)."""
    la = {key: (field, text) for _s, key, field, text in lines(a, detail=True) if key != "rootfs"}
    lb = {key: (field, text) for _s, key, field, text in lines(b, detail=True) if key != "rootfs"}
    order = list(la) + [k for k in lb if k not in la]
    out = []
    for key in order:
        x, y = la.get(key), lb.get(key)
        if x is not None and y is not None and x[1] == y[1]:
            continue
        out.append({"key": key, "a": None if x is None else {"field": x[0], "text": x[1]},
                    "b": None if y is None else {"field": y[0], "text": y[1]}})
    return out


def render_diff(name_a: str, name_b: str, changes: list[dict[str, Any]]) -> str:
    out = [f"--- {name_a}", f"+++ {name_b}"]
    for c in changes:
        if c["a"] is not None:
            out.append(f"- {c['a']['field']} → {c['a']['text']}")
        if c["b"] is not None:
            out.append(f"+ {c['b']['field']} → {c['b']['text']}")
    if not changes:
        out.append("(the same plan)")
    return "\n".join(out) + "\n"
