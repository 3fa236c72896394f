"""pybuild exec, inspect, top, port, wait, kill, restart, with podman as the oracle: the same
flags, exit codes, inspect fields and --format results, and the bad input of issue 16 (one line,
non-zero, nothing changed). `exec -it` goes through a real pty pair (the pty module)."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import select
import shutil
import struct
import subprocess
import sys
import termios
import time

import pytest

from netlib import Pb, free_port
from podmanlib import ULIMITS, add_data, one_line, podman, podman_images, tar_of  # noqa: F401
from test_build_common import make_busybox_rootfs, needs_busybox, needs_root

pytestmark = [needs_root, needs_busybox]
SLEEP = ("sleep", "600")


@pytest.fixture
def pb(tmp_path):
    p = Pb(str(tmp_path / "store"))
    tar = tar_of(add_data(make_busybox_rootfs(str(tmp_path / "rootfs"))), str(tmp_path / "bb.tar"))
    p("import", tar, "-t", "busybox", "-c", 'CMD ["sh"]')
    yield p
    p.cleanup()


def _codes(runner, name: str, cases) -> list[int]:
    return [runner("exec", *opts, name, *cmd).returncode for opts, cmd in cases]


EXEC_CASES = [((), ("sh", "-c", "exit 3")), ((), ("nope",)), ((), ("true",)),
              (("-w", "/nonexistent"), ("pwd",)), (("-u", "app"), ("true",))]


def test_exec_exit_codes_and_options_as_podman(pb, podman):
    pb("run", "-d", "--name", "c1", "--network", "none", "busybox", *SLEEP)
    theirs = podman.run_d("--network", "none")
    mine = _codes(lambda *a: pb(*a, check=False), "c1", EXEC_CASES)
    assert mine == _codes(podman, theirs, EXEC_CASES) == [3, 127, 0, 127, 0]
    for opts, cmd in ((("-u", "app"), ("id",)), (("-u", "app:staff"), ("id",)), (("-u", "1000"), ("id", "-G")),
                      (("-w", "/tmp", "-e", "A=1", "-e", "PATH=/bin"), ("sh", "-c", "pwd; echo $A $PATH")),
                      ((), ("sh", "-c", "echo err >&2; echo out"))):
        got, want = pb("exec", *opts, "c1", *cmd), podman("exec", *opts, theirs, *cmd)
        assert (got.stdout, got.stderr) == (want.stdout, want.stderr), (opts, cmd)
    # stdin only with -i
    assert pb("exec", "-i", "c1", "cat", input="hello\n").stdout == "hello\n"
    assert pb("exec", "c1", "cat", input="hello\n").stdout == ""
    # a command that never starts: one line from the runtime's reason, podman's code
    line = one_line(pb("exec", "c1", "nope", check=False))
    assert "nope" in line and "not found" in line


def test_exec_not_executable_is_126(pb, podman, tmp_path):
    """podman's 126 for a file that cannot be executed, checked with runc as the container's runtime
    (and with pyrunc below)."""
    theirs = podman.run_d("--network", "none")
    assert podman("exec", theirs, "/etc/passwd").returncode == 126
    pb("--runtime", "runc", "run", "-d", "--name", "r", "--network", "none", "busybox", *SLEEP)
    res = pb("exec", "r", "/etc/passwd", check=False)
    assert res.returncode == 126 and "permission denied" in one_line(res)


def test_exec_not_executable_is_126_with_pyrunc(pb):
    pb("run", "-d", "--name", "p", "--network", "none", "busybox", *SLEEP)
    assert pb("exec", "p", "/etc/passwd", check=False).returncode == 126


def test_exec_bad_input_one_line_nothing_changed(pb, podman):
    pb("run", "-d", "--name", "c1", "--network", "none", "busybox", *SLEEP)
    home = os.path.join(pb.root, "containers")

    def state() -> dict:
        return {d: sorted(os.listdir(os.path.join(home, d))) for d in os.listdir(home) if len(d) == 64}

    before = state()
    assert podman("exec", "nosuch-pbt16", "true").returncode == 125
    for args, needle in ((("nosuch", "true"), "no such container: nosuch"),
                         (("-u", "nobody-here", "c1", "id"), "unable to find user nobody-here"),
                         (("-w", "relative", "c1", "pwd"), "must be an absolute path"),
                         (("-e", "=x", "c1", "true"), "expected KEY=VALUE"),
                         (("-d", "-i", "c1", "true"), "-d and -i cannot be used together")):
        res = pb("exec", *args, check=False)
        assert res.returncode == 125 and needle in one_line(res), (args, res.stderr)
    assert state() == before
    # a stopped container: podman says "container state improper"; ours names the state
    pb("kill", "c1")
    pb("wait", "c1")
    res = pb("exec", "c1", "true", check=False)
    assert res.returncode == 125 and "is not running (it is exited)" in one_line(res)


def _through_pty(argv: list[str], keys: bytes, rows: int = 33, cols: int = 101, env: dict | None = None):
    """Run argv on the slave of a new pty (its controlling terminal), type `keys`, return
    (output, exit status)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))

    def session() -> None:
        os.setsid()
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, preexec_fn=session, close_fds=True,
                            env=env)
    os.close(slave)
    out = b""
    sent = False
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO: the last slave fd closed
                break
            if not chunk:
                break
            out += chunk
        if not sent and (b"# " in out or b"not supported" in out or proc.poll() is not None):
            os.write(master, keys)
            sent = True
        if proc.poll() is not None and not ready:
            break
    os.close(master)
    return out.decode(errors="replace"), proc.wait(timeout=30)


TTY_KEYS = b"tty; stty size; echo $((6*7)); exit 5\r"


@pytest.mark.parametrize("runtime", ["runc", "pyrunc"])
def test_exec_it_through_a_pty(pb, runtime):
    if shutil.which(runtime) is None and runtime == "runc":
        pytest.skip("runc is not installed")
    pb("--runtime", runtime, "run", "-d", "--name", "t", "--network", "none", "busybox", *SLEEP)
    out, code = _through_pty([sys.executable, "-m", "pybuild", "--root", pb.root, "exec", "-it", "t", "sh"], TTY_KEYS,
                             env=pb.env)
    lines = [line.strip() for line in out.splitlines()]
    assert "/dev/pts/0" in lines and "33 101" in lines and "42" in lines, out
    assert code == 5


def test_exec_it_as_podman_through_a_pty(podman):
    theirs = podman.run_d("--network", "none")
    out, code = _through_pty(["podman", "exec", "-it", theirs, "sh"], TTY_KEYS)
    lines = [line.strip() for line in out.splitlines()]
    assert "33 101" in lines and "42" in lines and code == 5, out  # what the test above expects of pybuild


def test_exec_detached(pb):
    pb("run", "-d", "--name", "c1", "--network", "none", "busybox", *SLEEP)
    start = time.monotonic()
    res = pb("exec", "-d", "c1", "sh", "-c", "sleep 4; echo done > /tmp/marker")
    assert res.stdout == "" and time.monotonic() - start < 4  # it did not wait for the process
    assert pb("exec", "c1", "cat", "/tmp/marker", check=False).returncode != 0
    for _ in range(100):
        if pb("exec", "c1", "cat", "/tmp/marker", check=False).stdout == "done\n":
            break
        time.sleep(0.1)
    else:
        raise AssertionError("the detached exec never ran to its end")
    assert pb("exec", "-d", "c1", "nope", check=False).returncode == 127
    assert not [n for n in os.listdir(os.path.join(pb.root, "containers", _cid(pb, "c1"))) if "exec" in n]


def _cid(pb: Pb, name: str) -> str:
    return pb("inspect", "--type", "container", "-f", "{{.Id}}", name).stdout.strip()


# ---- inspect ---------------------------------------------------------------------------------------
PROMISED = {  # docker's names the issue lists, and their JSON types
    "Id": str, "Name": str, "Image": str, "Created": str, "Path": str, "Args": list, "RestartCount": int,
    "State": dict, "State.Status": str, "State.Pid": int, "State.ExitCode": int, "State.Running": bool,
    "State.StartedAt": str, "State.FinishedAt": str, "Config": dict, "Config.Cmd": list, "Config.Env": list,
    "Config.Image": str, "Config.Hostname": str, "Mounts": list, "NetworkSettings": dict,
    "NetworkSettings.Ports": dict, "NetworkSettings.IPAddress": str, "HostConfig.PortBindings": dict,
    "HostConfig.NetworkMode": str, "GraphDriver.Name": str,
}


def _get(doc: dict, dotted: str):
    for part in dotted.split("."):
        doc = doc[part]
    return doc


def test_inspect_container_fields_as_podman(pb, podman):
    port, port2 = free_port(), free_port()
    pb("run", "-d", "--name", "web", "-p", f"{port}:1234", "-v", "vol1:/data", "busybox", *SLEEP)
    theirs = podman.run_d("-p", f"{port2}:1234", "-v", f"{podman.volume()}:/data")
    [mine] = json.loads(pb("inspect", "web").stdout)
    [want] = json.loads(podman("inspect", theirs, check=True).stdout)
    for key, kind in PROMISED.items():
        assert isinstance(_get(mine, key), kind) and isinstance(_get(want, key), kind), key
    assert mine["State"]["Status"] == want["State"]["Status"] == "running"
    pid = mine["State"]["Pid"]
    with open(f"/proc/{pid}/cgroup") as fh:  # the host pid of the container's init
        assert mine["Id"] in fh.read()
    assert mine["NetworkSettings"]["Ports"] == {"1234/tcp": [{"HostIp": "", "HostPort": str(port)}]}
    assert want["NetworkSettings"]["Ports"] == {"1234/tcp": [{"HostIp": "", "HostPort": str(port2)}]}
    assert mine["NetworkSettings"]["IPAddress"].count(".") == 3
    [m] = mine["Mounts"]
    assert (m["Type"], m["Name"], m["Destination"], m["RW"]) == ("volume", "vol1", "/data", True)
    assert m["Source"] == os.path.join(pb.root, "volumes", "vol1", "_data")
    # the same templates give the same answers (values that differ by nature left out)
    for tpl in ("{{.State.Status}} {{.State.Running}} {{.State.ExitCode}} {{.RestartCount}}",
                "{{range .Mounts}}{{.Type}} {{.Destination}} {{.RW}}{{end}}",
                "{{range $p, $b := .NetworkSettings.Ports}}{{$p}} {{len $b}}{{end}}",
                "{{index .Config.Cmd 0}} {{len .Args}} {{.Path}}",
                "{{if .State.Running}}up{{else}}down{{end}} {{with .State}}{{gt .Pid 1}}{{end}}",
                "{{.HostConfig.NetworkMode}}"):
        assert pb("inspect", "-f", tpl, "web").stdout == podman("inspect", "-f", tpl, theirs).stdout, tpl
    # a missing field: one line, 125, as podman
    assert podman("inspect", "-f", "{{.State.Foo}}", theirs).returncode == 125
    res = pb("inspect", "-f", "{{.State.Foo}}", "web", check=False)
    assert res.returncode == 125 and "can't evaluate field Foo" in one_line(res) and res.stdout == ""


def test_inspect_types_and_missing_names(pb, podman):
    pb("run", "-d", "--name", "c1", "--network", "none", "busybox", *SLEEP)
    image = json.loads(pb("inspect", "--type", "image", "busybox").stdout)[0]
    want = json.loads(podman("image", "inspect", podman.image, check=True).stdout)[0]
    for key in ("Id", "RepoTags", "Created", "Config", "Architecture", "Os", "Size", "RootFS", "History",
                "Digest", "RepoDigests", "Labels", "Author"):
        assert type(image[key]) is type(want[key]) or want[key] is None or image[key] is None, key
    assert image["Config"]["Cmd"] == ["sh"] and image["RootFS"]["Type"] == "layers"
    assert pb("inspect", "-f", "{{.Config.Cmd}} {{.Os}}", "busybox").stdout == "[sh] linux\n"
    assert pb("inspect", "-f", "{{.State.Status}}", "c1").stdout == "running\n"  # containers first
    for args, needle in ((("--type", "container", "busybox"), "no such container: busybox"),
                         (("--type", "image", "c1"), "no such image: c1"),
                         (("nosuch",), "no such object: nosuch")):
        res = pb("inspect", *args, check=False)
        assert res.returncode == 125 and needle in one_line(res)
    assert podman("inspect", "nosuch-pbt16").returncode == 125
    res = pb("inspect", "c1", "nosuch", check=False)  # found ones are printed, then the error
    assert res.returncode == 125 and len(json.loads(res.stdout)) == 1 and "no such object: nosuch" in one_line(res)
    res = pb("inspect", "-f", "{{.Id", "c1", check=False)
    assert res.returncode == 125 and "unclosed action" in one_line(res) and res.stdout == ""


def test_format_matches_podman_on_the_same_data(pb, podman):
    """Go's own templates (podman's) and ours over a volume with the same name and labels."""
    name = podman.volume("--label", "b=2", "--label", "a=1", "--label", "sp=x y")
    pb("volume", "create", "--label", "b=2", "--label", "a=1", "--label", "sp=x y", name)
    templates = [
        "{{.Name}} {{.Driver}} {{.Scope}}", "{{.Labels}}", "{{json .Labels}}", "{{.Options}}",
        "{{range $k, $v := .Labels}}{{$k}}={{$v}};{{end}}", '{{index .Labels "b"}}', "{{.Labels.zzz}}",
        "{{len .Labels}}", '{{if eq .Driver "local"}}L{{else}}?{{end}}', "{{upper .Name | lower}}",
        '{{printf "%-12s|%5d|%q|%x|%v" .Driver 42 .Name 255 .Labels}}', '{{join (split "a,b,c" ",") "+"}}',
        "{{- /* c */ -}} x {{- \" y \" -}} z", '{{title "hello world"}} {{pad "p" 1 2}}|{{truncate .Name 4}}',
        "{{range split \"x y z\" \" \"}}{{if eq . \"y\"}}{{continue}}{{end}}{{.}}{{end}}",
        "{{$n := .Name}}{{with .Labels}}{{$n}}:{{.a}}{{end}}", "{{and 1 0 2}} {{or 0 \"\" 3}} {{not 0}}",
        "{{lt 1 2}} {{le 2 2}} {{gt 1.5 2.5}} {{ge \"b\" \"a\"}} {{ne 1 2}} {{eq 1 2 1}}",
        "{{print 1 2 \"a\" \"b\" 3}}|{{println 1 \"x\"}}", "{{0x10}} {{1e3}} {{'a'}} {{1_000}} {{-3}}",
        "{{slice \"abcdef\" 1 3}} {{len \"héllo\"}}", '{{printf "%d %s" "x" 5}}',
    ]
    for tpl in templates:
        want = podman("volume", "inspect", "--format", tpl, name)
        got = pb("volume", "inspect", "--format", tpl, name, check=False)
        assert (got.returncode, got.stdout) == (want.returncode, want.stdout), tpl
    for bad in ("{{.Nope}}", "{{.Name", "{{nosuch .Name}}", "{{index .Labels 1}}"):
        assert podman("volume", "inspect", "--format", bad, name).returncode == 125
        res = pb("volume", "inspect", "--format", bad, name, check=False)
        assert res.returncode == 125 and res.stdout == "", bad
        one_line(res)


# ---- top, port -------------------------------------------------------------------------------------
def test_top_and_port(pb, podman):
    port = free_port()
    pb("run", "-d", "--name", "web", "-p", f"{port}:1234", "-p", f"127.0.0.1:{free_port()}:53/udp", "busybox",
       *SLEEP)
    top = pb("top", "web").stdout.splitlines()
    assert top[0].split()[:3] == ["UID", "PID", "PPID"] and any("sleep 600" in line for line in top[1:])
    assert [line.split() for line in pb("top", "web", "-o", "pid,comm").stdout.splitlines()][1:] == \
        [[pb("inspect", "-f", "{{.State.Pid}}", "web").stdout.strip(), "sleep"]]
    port2 = free_port()
    theirs = podman.run_d("-p", f"{port2}:1234")
    assert pb("port", "web", "1234").stdout == f"0.0.0.0:{port}\n"
    assert podman("port", theirs, "1234").stdout == f"0.0.0.0:{port2}\n"
    assert pb("port", "web").stdout.splitlines()[0] == f"1234/tcp -> 0.0.0.0:{port}"
    assert podman("port", theirs).stdout.splitlines()[0] == f"1234/tcp -> 0.0.0.0:{port2}"
    assert pb("port", "web", "53/udp").stdout.startswith("127.0.0.1:")
    for args in (("web", "80"), ("web", "1234/udp"), ("nosuch",)):
        assert pb("port", *args, check=False).returncode == podman("port", *(
            (theirs,) + args[1:] if args[0] == "web" else ("nosuch-pbt16",))).returncode == 125
    assert 'failed to find published port "80"' in one_line(pb("port", "web", "80", check=False))
    pb("kill", "web")
    pb("wait", "web")
    for verb in ("top",):
        res = pb(verb, "web", check=False)
        assert res.returncode == 125 and "is not running" in one_line(res)
    assert pb("port", "web").stdout == ""  # as podman: nothing for a container that does not run


# ---- kill, wait, restart -----------------------------------------------------------------------------
def test_kill_and_wait_as_podman(pb, podman):
    pb("run", "-d", "--name", "k", "--network", "none", "busybox", "sh", "-c",
       "trap 'exit 42' USR1; while true; do sleep 0.1; done")
    theirs = podman.run_d("--network", "none")
    for bad in ("FOO", "SIGNOPE", "99"):
        assert podman("kill", "-s", bad, theirs).returncode == 125
        res = pb("kill", "-s", bad, "k", check=False)
        assert res.returncode == 125 and f"invalid signal: {bad}" in one_line(res)
    assert pb("ps", "-q").stdout.strip()  # still running: nothing was sent
    time.sleep(0.3)
    assert pb("kill", "-s", "USR1", "k").stdout == "k\n"
    assert pb("wait", "k").stdout == "42\n"
    assert podman("kill", theirs).stdout.strip() == theirs
    assert podman("wait", theirs).stdout == "137\n"
    pb("run", "-d", "--name", "k2", "--network", "none", "busybox", *SLEEP)
    pb("kill", "k2")
    assert pb("wait", "k2", "k").stdout == "137\n42\n"
    for verb, args in (("kill", ("k",)), ("wait", ("nosuch",)), ("kill", ("nosuch",))):
        res = pb(verb, *args, check=False)
        assert res.returncode == 125, (verb, args)
        one_line(res)
    assert podman("kill", theirs).returncode == podman("wait", "nosuch-pbt16").returncode == 125


def test_wait_reads_the_code_of_a_container_removed_on_exit(pb):
    cid = pb("run", "-d", "--rm", "--network", "none", "busybox", "sh", "-c", "sleep 1; exit 7").stdout.strip()
    assert pb("wait", cid).stdout == "7\n"
    for _ in range(100):
        if not pb("ps", "-aq").stdout:
            break
        time.sleep(0.05)
    assert pb("ps", "-aq").stdout == ""


def test_restart_keeps_changes_ports_and_volumes(pb):
    port = free_port()
    pb("run", "-d", "--rm", "--name", "r", "-p", f"{port}:1234", "-v", "rv:/data", "busybox", "sh", "-c",
       "while true; do echo up | nc -l -p 1234; done")
    pb("exec", "r", "sh", "-c", "echo kept > /root-change; echo vol > /data/v")
    pid1 = pb("inspect", "-f", "{{.State.Pid}}", "r").stdout
    assert pb("restart", "-t", "1", "r").stdout == "r\n"
    info = pb("inspect", "-f", "{{.State.Status}} {{.RestartCount}} {{.State.Pid}}", "r").stdout.split()
    assert info[:2] == ["running", "1"] and info[2] != pid1.strip()
    assert pb("exec", "r", "cat", "/root-change", "/data/v").stdout == "kept\nvol\n"
    from netlib import fetch

    assert fetch("127.0.0.1", port) == b"up\n"
    res = pb("restart", "nosuch", check=False)
    assert res.returncode == 125 and "no such container" in one_line(res)
    waiter = pb.popen("wait", "r")  # --rm: it goes when it exits; the waiter still gets the code
    time.sleep(0.5)
    pb("kill", "r")
    assert waiter.communicate(timeout=60)[0] == "137\n"
