"""create and run given bad input (bundle, config.json, ids, terminal and fd flags): one line naming the problem, nothing left behind."""

from __future__ import annotations

import json
import os



# ------------------------------------------------------------------ bad input
def _expect_clean_failure(rt, cid, *args, needle: bytes) -> None:
    proc = rt(*args)
    assert proc.returncode != 0
    err = proc.stderr.strip()
    assert needle in err, err
    assert len(err.splitlines()) == 1, err
    assert rt("state", cid).returncode != 0
    assert not os.path.exists(os.path.join(rt.root, cid))


def test_missing_bundle(pyrunc, cid, tmp_path):
    _expect_clean_failure(pyrunc, cid, "run", "-b", str(tmp_path / "nope"), cid, needle=b"config.json")


def test_missing_rootfs(pyrunc, bundle, cid):
    bundle.config["root"]["path"] = "no-such-rootfs"
    bundle.write()
    _expect_clean_failure(pyrunc, cid, "run", "-b", bundle.path, cid, needle=b".root.path")


def test_invalid_json(pyrunc, bundle, cid):
    with open(os.path.join(bundle.path, "config.json"), "w") as f:
        f.write("{not json")
    _expect_clean_failure(pyrunc, cid, "run", "-b", bundle.path, cid, needle=b"config.json")


def test_schema_violation_names_field(pyrunc, bundle, cid):
    bundle.config["process"]["args"] = []
    bundle.write()
    _expect_clean_failure(pyrunc, cid, "run", "-b", bundle.path, cid, needle=b".process.args")


def test_unknown_namespace_type(pyrunc, bundle, cid):
    bundle.config["linux"]["namespaces"].append({"type": "bogus"})
    bundle.write()
    _expect_clean_failure(pyrunc, cid, "run", "-b", bundle.path, cid, needle=b".linux.namespaces[")


def test_missing_executable_leaves_nothing(pyrunc, bundle, cid):
    bundle.set_args("/no/such/binary")
    _expect_clean_failure(pyrunc, cid, "run", "-b", bundle.path, cid, needle=b"/no/such/binary")


def test_duplicate_id(pyrunc, bundle, cid):
    bundle.set_args("sleep", "30")
    pyrunc("create", "-b", bundle.path, cid, check=True)
    proc = pyrunc("create", "-b", bundle.path, cid)
    assert proc.returncode != 0 and b"exists" in proc.stderr
    assert json.loads(pyrunc("state", cid).stdout)["status"] == "created"
    pyrunc("delete", "-f", cid, check=True)


def test_terminal_without_console_socket(pyrunc, bundle, cid):
    bundle.config["process"]["terminal"] = True
    bundle.write()
    _expect_clean_failure(pyrunc, cid, "run", "-b", bundle.path, cid, needle=b"terminal")


def test_json_log_format(pyrunc, cid, tmp_path):
    log = tmp_path / "log.json"
    proc = pyrunc("--log", str(log), "--log-format", "json", "state", cid)
    assert proc.returncode != 0
    doc = json.loads(log.read_text().splitlines()[-1])
    assert doc["level"] == "error" and "does not exist" in doc["msg"]


def test_preserve_fds_and_closed_fds(pyrunc, bundle, cid, tmp_path):
    """Only stdio plus the --preserve-fds ones reach the container (fds 3, 4 open in the caller)."""
    import subprocess

    bundle.set_args("sh", "-c", "ls /proc/self/fd | sort -n | tr '\\n' ' '")
    base = f"{pyrunc.binary} --root {pyrunc.root} run -b {bundle.path}"
    for n, want in ((0, ["0", "1", "2", "3"]), (1, ["0", "1", "2", "3", "4"])):
        script = f"exec 3>{tmp_path}/a 4>{tmp_path}/b; {base} --preserve-fds {n} {cid}{n}"
        proc = subprocess.run(["sh", "-c", script], capture_output=True, stdin=subprocess.DEVNULL)
        pyrunc.ids.add(f"{cid}{n}")
        assert proc.returncode == 0, proc.stderr
        # ls itself holds one fd (the directory it reads): the last number
        assert proc.stdout.decode().split()[:-1] == want[:-1], proc.stdout


def test_console_socket_without_terminal(pyrunc, bundle, cid, tmp_path):
    bundle.set_args("true")
    proc = pyrunc("create", "--console-socket", str(tmp_path / "sock"), "-b", bundle.path, cid)
    assert proc.returncode != 0 and b"console socket" in proc.stderr
    assert pyrunc("state", cid).returncode != 0
