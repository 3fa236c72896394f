"""Issue 11 finding 8: hostile JSON in every document the runtime reads.

config.json, `exec --process` process.json, `update -r` resources and the
runtime's own state.json: nesting deeper than the interpreter's recursion
(a 5000-deep config.json crashed with RecursionError), invalid UTF-8, NUL
bytes and lone surrogates in strings that become C strings, a top level that
is not an object, huge arrays. Each gets one line naming the problem, a
non-zero exit and nothing left behind; what runc 1.1.5 accepts (nesting up to
Go's 10000, huge arrays) still runs.
"""

from __future__ import annotations

import json
import os

import pytest


def _no_state(rt) -> None:
    assert not os.path.isdir(rt.root) or os.listdir(rt.root) == [], os.listdir(rt.root)


def _one_line(rt, out) -> None:
    assert "Traceback" not in out.stderr and "RecursionError" not in out.stderr, out.stderr[-2000:]
    if rt.name == "pyrunc":
        assert len(out.stderr.strip().splitlines()) == 1, out.stderr


def _write_raw(b, data: bytes) -> None:
    with open(os.path.join(b.path, "config.json"), "wb") as f:
        f.write(data)


def _with_extra(b, extra: bytes) -> bytes:
    """config.json with an unknown top-level key "x" holding `extra` (ignored by both runtimes)."""
    text = json.dumps(b.config).encode()
    return text[:-1] + b', "x": ' + extra + b"}"


@pytest.mark.parametrize("depth", [5000, 9999])  # + the top-level object: 10000 in all
def test_deep_config_within_runcs_limit_runs(rt, make_bundle, host, depth: int) -> None:
    b = make_bundle()
    b.args("true")
    _write_raw(b, _with_extra(b, b"[" * depth + b"]" * depth))
    out = rt.run(b)
    assert out.returncode == 0, out.stderr[-2000:]
    _no_state(rt)


@pytest.mark.parametrize("shape", ["arrays", "objects", "unterminated"])
def test_config_deeper_than_runcs_limit_is_one_line(rt, make_bundle, host, shape: str) -> None:
    b = make_bundle()
    b.args("true")
    n = 20000
    extra = {"arrays": b"[" * n + b"]" * n, "objects": b'{"a":' * n + b"1" + b"}" * n,
             "unterminated": b"[" * n}[shape]
    _write_raw(b, _with_extra(b, extra))
    out = rt.run(b)
    assert out.returncode != 0
    _one_line(rt, out)
    if shape != "unterminated":
        assert "max depth" in out.stderr
    if rt.name == "pyrunc":
        assert out.stderr.startswith("pyrunc: config.json: invalid JSON")
    _no_state(rt)


@pytest.mark.parametrize("data", [b"[]", b'"config"', b"1", b"null", b"", b"\x00", b"\xef\xbb\xbf{}"],
                         ids=["array", "string", "number", "null", "empty", "nul", "bom-empty-object"])
def test_config_that_is_not_an_object(rt, make_bundle, host, data: bytes) -> None:
    b = make_bundle()
    _write_raw(b, data)
    out = rt.run(b)
    assert out.returncode != 0
    _one_line(rt, out)
    _no_state(rt)


@pytest.mark.parametrize("where", ["args", "env", "hostname", "cwd", "mount-destination", "mount-option",
                                   "cgroupsPath", "sysctl-key", "hook-path", "masked-path", "root-path"])
@pytest.mark.parametrize("bad", ["nul", "surrogate"])
def test_strings_that_are_not_c_strings(pyrunc_rt, make_bundle, host, where: str, bad: str) -> None:
    """runc passes some of these to the kernel cut at the NUL (a hostname "a\\0b" becomes "a"),
    and silently turns a lone surrogate into U+FFFD: a different path or name than the config
    says. pyrunc refuses both, naming the field."""
    rt = pyrunc_rt
    b = make_bundle()
    b.args("true")
    text = "a\u0000b" if bad == "nul" else "a\ud800b"
    c = b.config
    field = {
        "args": (lambda: c["process"].__setitem__("args", ["true", text]), ".process.args[1]"),
        "env": (lambda: c["process"]["env"].append(f"X={text}"), ".process.env[2]"),
        "hostname": (lambda: c.__setitem__("hostname", text), ".hostname"),
        "cwd": (lambda: c["process"].__setitem__("cwd", "/" + text), ".process.cwd"),
        "mount-destination": (lambda: c["mounts"][1].__setitem__("destination", "/" + text),
                              ".mounts[1].destination"),
        "mount-option": (lambda: c["mounts"][1]["options"].append(text), ".mounts[1].options[4]"),
        "cgroupsPath": (lambda: c["linux"].__setitem__("cgroupsPath", "/" + text), ".linux.cgroupsPath"),
        "sysctl-key": (lambda: c["linux"].__setitem__("sysctl", {text: "1"}), ".linux.sysctl"),
        "hook-path": (lambda: c.__setitem__("hooks", {"poststop": [{"path": "/" + text}]}),
                      ".hooks.poststop[0].path"),
        "masked-path": (lambda: c["linux"]["maskedPaths"].append("/" + text), ".linux.maskedPaths[10]"),
        "root-path": (lambda: c["root"].__setitem__("path", text), ".root.path"),
    }[where]
    field[0]()
    b.write()
    out = rt.run(b)
    assert out.returncode != 0
    _one_line(rt, out)
    assert field[1] in out.stderr, out.stderr
    assert ("NUL" if bad == "nul" else "UTF-8") in out.stderr
    _no_state(rt)


def test_nul_in_args_fails_in_both(rt, make_bundle, host) -> None:
    b = make_bundle()
    b.config["process"]["args"] = ["true", "a\u0000b"]
    b.write()
    out = rt.run(b)
    assert out.returncode != 0
    _one_line(rt, out)
    _no_state(rt)


def test_annotations_keep_what_runc_accepts(rt, make_bundle, host) -> None:
    b = make_bundle()
    b.args("true")
    b.config["annotations"] = {"nul": "a\u0000b", "surrogate": "\ud800"}
    b.write()
    out = rt.run(b)
    assert out.returncode == 0, out.stderr
    _no_state(rt)


def test_invalid_utf8_in_config(pyrunc_rt, make_bundle, host) -> None:
    """Go's decoder turns invalid UTF-8 into U+FFFD silently (runc then runs another
    command or path than the bytes say); pyrunc refuses the document, naming the offset."""
    rt = pyrunc_rt
    b = make_bundle()
    b.args("true")
    raw = json.dumps(b.config).encode().replace(b'"true"', b'"tr\xff\xfeue"')
    _write_raw(b, raw)
    out = rt.run(b)
    assert out.returncode != 0
    _one_line(rt, out)
    assert "invalid JSON" in out.stderr and "utf-8" in out.stderr
    _no_state(rt)


def test_huge_arrays_are_linear_and_reported(rt, make_bundle, host) -> None:
    """A 2M-element unknown array still runs; 20 MB of args fail at execve with E2BIG,
    which must reach the caller (pyrunc used to exit 1 silently)."""
    b = make_bundle()
    b.args("true")
    _write_raw(b, _with_extra(b, b"[" + b",".join([b"1"] * 2_000_000) + b"]"))
    out = rt.run(b)
    assert out.returncode == 0, out.stderr[-2000:]
    b.config["process"]["args"] = ["true"] + ["x" * 100] * 200_000
    b.write()
    out = rt.run(b)
    assert out.returncode != 0
    assert "argument list too long" in out.stderr.lower(), out.stderr
    _no_state(rt)


def test_deep_unknown_field_in_a_hook_stays_out_of_state(pyrunc_rt, make_bundle, host) -> None:
    """Only the hooks' known fields reach state.json: a 5000-deep unknown field in a
    poststop hook must neither crash create (the state encoder) nor delete."""
    rt = pyrunc_rt
    b = make_bundle()
    b.args("sleep", "100")
    b.config["hooks"] = {"poststop": [{"path": "/bin/true", "x": 1}]}
    raw = json.dumps(b.config).encode().replace(b'"x": 1', b'"x": ' + b"[" * 5000 + b"]" * 5000)
    _write_raw(b, raw)
    cid = rt.create(b)
    with open(os.path.join(rt.root, cid, "state.json"), "rb") as f:
        assert b"[[[" not in f.read()
    out = rt("delete", "-f", cid)
    assert out.returncode == 0, out.stderr
    _no_state(rt)


@pytest.mark.parametrize("doc", ["deep", "not-object", "invalid-utf8", "nul-arg"])
def test_exec_process_json(rt, make_bundle, host, tmp_path, doc: str) -> None:
    b = make_bundle()
    b.args("sleep", "100")
    cid = rt.detach(b)
    proc = dict(b.config["process"], args=["true"])
    data = {"deep": json.dumps(proc).encode()[:-1] + b', "x": ' + b"[" * 20000 + b"]" * 20000 + b"}",
            "not-object": b'["true"]',
            "invalid-utf8": json.dumps(proc).encode().replace(b'"true"', b'"\xff"'),
            "nul-arg": json.dumps(dict(proc, args=["true", "a\u0000"])).encode()}[doc]
    path = tmp_path / "process.json"
    path.write_bytes(data)
    out = rt("exec", "--process", str(path), cid)
    if doc == "invalid-utf8" and rt.name == "runc":
        return  # runc runs "\ufffd" (not found): a failure either way, but not about the JSON
    assert out.returncode != 0
    _one_line(rt, out)
    if rt.name == "pyrunc":
        assert out.stderr.startswith(f"pyrunc: {path}")


@pytest.mark.parametrize("doc", ["deep", "not-object", "invalid-utf8", "nul"])
def test_update_resources(rt, make_bundle, host, tmp_path, doc: str) -> None:
    b = make_bundle()
    b.args("sleep", "100")
    cid = rt.detach(b)
    data = {"deep": b'{"x": ' + b"[" * 20000 + b"]" * 20000 + b"}",
            "not-object": b"[1]",
            "invalid-utf8": b'{"cpu": {"cpus": "\xff"}}',
            "nul": b'{"cpu": {"cpus": "0\\u0000"}}'}[doc]
    path = tmp_path / "resources.json"
    path.write_bytes(data)
    out = rt("update", "-r", str(path), cid)
    if doc == "nul" and rt.name == "runc":
        return  # runc 1.1.5 writes "0\0" and the kernel reads "0": accepted, not a crash either
    assert out.returncode != 0
    _one_line(rt, out)


@pytest.mark.parametrize("doc", ["deep", "not-object", "invalid-utf8", "wrong-types", "truncated",
                                 "hook-without-path"])
def test_hostile_state_json(pyrunc_rt, make_bundle, host, doc: str) -> None:
    """The runtime's own state.json, edited or truncated: `state` and `delete` fail in one
    line, `list` still lists the others, `delete -f` always ends with the state gone."""
    rt = pyrunc_rt
    b = make_bundle()
    b.args("sleep", "100")
    good = rt.detach(b)
    bad = rt.create(b)
    path = os.path.join(rt.root, bad, "state.json")
    with open(path, "rb") as f:
        state = json.loads(f.read())
    pid = state["pid"]
    data = {"deep": b"[" * 20000 + b"]" * 20000, "not-object": b"[]", "invalid-utf8": b'{"id": "\xff"}',
            "wrong-types": json.dumps(dict(state, pid=str(pid), cgroup=[1])).encode(),
            "truncated": json.dumps(state).encode()[:40],
            "hook-without-path": json.dumps(dict(state, hooks={"poststop": [{"args": []}]})).encode()}[doc]
    with open(path, "wb") as f:
        f.write(data)
    for verb in (("state", bad), ("delete", bad)):
        out = rt(*verb)
        assert out.returncode != 0
        _one_line(rt, out)
        assert "state.json" in out.stderr
    out = rt("list", "-q")
    assert out.returncode == 0 and out.stdout.split() == [good]
    assert "Traceback" not in out.stderr
    out = rt("delete", "-f", bad)
    assert out.returncode == 0, out.stderr
    assert not os.path.exists(os.path.join(rt.root, bad))
    _remove_lost_container(pid, state["cgroup"])


def _remove_lost_container(pid: int, cgroup: dict) -> None:
    """The corrupt state lost track of this init and its cgroups (nothing can safely guess
    them): the test removes what it made itself."""
    import time

    os.kill(pid, 9)
    deadline = time.monotonic() + 10
    while os.path.exists(f"/proc/{pid}") and time.monotonic() < deadline:
        time.sleep(0.01)
    for path in sorted(set(cgroup.get("paths", {}).values()), key=len, reverse=True):
        for _ in range(100):
            try:
                os.rmdir(path)
                break
            except FileNotFoundError:
                break
            except OSError:
                time.sleep(0.01)
