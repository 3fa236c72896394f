"""Bridge networking and `pybuild run` as root, for real: two containers on the bridge, the outside,
published ports from the host's address and 127.0.0.1, volumes and tmpfs, commit, teardown after
crashes, and the bad input of issue 13. The leak guard (conftest) checks after each test that no
veth, bridge, nft table, iptables rule, lease, netns, mount, cgroup or runtime state is left.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import pytest

from netlib import Pb, fetch, free_port, host_address, links, make_store, nft_tables, serve
from pybuild.net.model import table_name
from test_build_common import needs_busybox, needs_root

pytestmark = [needs_root, needs_busybox,
              pytest.mark.skipif(shutil.which("nft") is None and shutil.which("iptables") is None,
                                 reason="neither nft nor iptables is installed")]
PYRUNC = os.path.join(os.path.dirname(sys.executable), "pyrunc")


@pytest.fixture
def pb(tmp_path):
    p = make_store(tmp_path)
    yield p
    p.cleanup()


def _ip_of(pb: Pb, name: str) -> str:
    """The container's address, as its generated /etc/hosts names it."""
    with open(os.path.join(_container(pb, name), "bundle", "hosts")) as fh:
        return fh.read().splitlines()[-1].split()[0]


def _container(pb: Pb, name: str) -> str:
    cid = pb("ps", "-aq", "--no-trunc").stdout.split()
    for i in cid:
        with open(os.path.join(pb.root, "containers", i, "container.json")) as fh:
            if json.load(fh)["name"] == name:
                return os.path.join(pb.root, "containers", i)
    raise AssertionError(f"no container {name}")


def test_two_containers_reach_each_other_and_the_outside(pb):
    pb("run", "-d", "--name", "srv", "busybox", *serve("from-srv"))
    srv_ip = _ip_of(pb, "srv")
    assert srv_ip.startswith(("172.", "10."))
    res = pb("run", "--rm", "busybox", "sh", "-c",
             f"for i in $(seq 50); do nc -w 2 {srv_ip} 1234 </dev/null && exit 0; sleep 0.1; done; exit 1")
    assert res.stdout.strip() == "from-srv"
    # the outside: the host's default gateway answers (or refuses) TCP through the NAT;
    # a timeout would mean the packets never got out
    gw = subprocess.run(["ip", "-o", "-4", "route", "show", "default"], capture_output=True,
                        text=True).stdout.split()
    if "via" not in gw:
        pytest.skip("the host has no default gateway")
    res = pb("run", "--rm", "busybox", "sh", "-c",
             f"nc -w 3 {gw[gw.index('via') + 1]} 80 </dev/null; echo rc=$?", check=False)
    assert "timed out" not in (res.stdout + res.stderr).lower(), res.stdout + res.stderr
    assert "can't connect" not in res.stderr or "refused" in res.stderr


def test_outside_by_name_through_nat(pb):
    """DNS and HTTP to the host's own apt mirror (its name read at run time from apt's sources)."""
    here = os.path.dirname(os.path.abspath(__file__))
    top = os.path.dirname(os.path.dirname(os.path.dirname(here)))
    src = subprocess.run(["/usr/bin/python3.11", os.path.join(top, "examples/flaskdemo/apt_source.py")],
                         capture_output=True, text=True)
    if src.returncode != 0:
        pytest.skip("no Debian mirror in apt's sources")
    suite, mirror = src.stdout.split()
    url = f"{mirror.rstrip('/')}/dists/{suite}/Release"
    if not url.startswith("http://"):
        pytest.skip(f"the mirror is not plain HTTP ({mirror}); busybox wget speaks no TLS")
    import urllib.request
    try:
        urllib.request.urlopen(url, timeout=10).read(100)
    except OSError as err:
        pytest.skip(f"the host itself cannot reach its mirror: {err}")
    res = pb("run", "--rm", "busybox", "sh", "-c", f"wget -q -O - {url} | head -c 200")
    assert "Suite:" in res.stdout or "Origin:" in res.stdout


def test_published_ports_from_host_address_and_localhost(pb):
    port = free_port()
    cid = pb("run", "-d", "--name", "web", "-p", f"{port}:1234", "busybox", *serve("hello")).stdout.strip()
    assert len(cid) == 64
    assert fetch("127.0.0.1", port) == b"hello\n"
    assert fetch(host_address(), port) == b"hello\n"
    ps = pb("ps").stdout
    assert f"0.0.0.0:{port}->1234/tcp" in ps and "web" in ps and "Up " in ps
    # the same host port again: refused before anything is made
    res = pb("run", "--rm", "-p", f"{port}:80", "busybox", "true", check=False)
    assert res.returncode == 125 and res.stderr.count("\n") == 1
    assert f"host port {port}/tcp is already published by container {cid}" in res.stderr
    pb("stop", "-t", "1", "web")
    assert "Exited (137)" in pb("ps", "-a").stdout
    pb("rm", "web")
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()


def test_published_port_on_one_host_ip(pb):
    port = free_port()
    pb("run", "-d", "--name", "lo", "-p", f"127.0.0.1:{port}:1234", "busybox", *serve("only-lo"))
    assert fetch("127.0.0.1", port) == b"only-lo\n"
    try:
        with socket.create_connection((host_address(), port), timeout=1) as s:
            got = s.recv(10)
    except OSError:
        got = b""
    assert got == b""  # not published on the host's other addresses


def test_iptables_backend(pb, tmp_path):
    if shutil.which("iptables") is None:
        pytest.skip("iptables is not installed")
    only = tmp_path / "only-iptables"
    only.mkdir()
    os.symlink(shutil.which("iptables"), only / "iptables")
    env = {"PATH": f"{only}:/usr/bin:/bin"}
    port = free_port()
    pb("run", "-d", "--name", "ipt", "-p", f"{port}:1234", "busybox", *serve("via-iptables"), env=env)
    rules = subprocess.run(["iptables", "-w", "-t", "nat", "-S"], capture_output=True, text=True).stdout
    assert f"--dport {port} -j DNAT" in rules and "MASQUERADE" in rules
    raw = subprocess.run(["iptables", "-w", "-t", "raw", "-S", "PREROUTING"], capture_output=True, text=True).stdout
    assert f"-d 127.0.0.0/8 -i {pb.bridge} " in raw  # route_localnet's loopback stays closed (tests/security)
    assert fetch("127.0.0.1", port) == b"via-iptables\n"
    pb("rm", "-f", "ipt", env=env)
    rules = subprocess.run(["iptables", "-w", "-t", "nat", "-S"], capture_output=True, text=True).stdout
    assert f"--dport {port}" not in rules and pb.bridge not in rules


def test_volumes_tmpfs_workdir_user_env(pb, tmp_path):
    vol = tmp_path / "vol"
    vol.mkdir()
    (vol / "in").write_text("from-host\n")
    rw = tmp_path / "rw"
    rw.mkdir()
    rw.chmod(0o777)  # the container runs as uid 1000
    res = pb("run", "--rm", "-v", f"{vol}:/data:ro", "-v", f"{rw}:/out", "--tmpfs", "/scratch", "-w", "/tmp",
             "-u", "app", "-e", "GREETING=hi", "busybox", "sh", "-c",
             "cat /data/in; touch /data/x 2>/dev/null && echo WROTE-RO; echo made > /out/f; "
             "grep ' /scratch ' /proc/mounts | cut -d' ' -f3; pwd; id -u; echo $GREETING")
    assert res.stdout.split() == ["from-host", "tmpfs", "/tmp", "1000", "hi"]
    assert (rw / "f").read_text() == "made\n"
    assert not (vol / "x").exists()


def test_commit_then_run(pb):
    pb("run", "--name", "c1", "busybox", "sh", "-c",
       "echo changed > /changed; rm /bin/vi; echo x > /etc/hostname; echo 1.2.3.4 evil >> /etc/hosts")
    image_id = pb("commit", "c1", "committed").stdout.strip()
    assert image_id.startswith("sha256:")
    res = pb("run", "--rm", "committed", "sh", "-c",
             "cat /changed; test -e /bin/vi && echo vi-present; grep -c evil /etc/hosts; cat /etc/hostname")
    lines = res.stdout.split()
    assert lines[0] == "changed" and "vi-present" not in lines and lines[1] == "0" and lines[2] != "x"
    history = json.loads(pb("inspect", "committed").stdout)
    assert "pybuild commit" in json.dumps(history)
    pb("rm", "c1")


def test_exit_status_signals_and_rm(pb):
    assert pb("run", "--rm", "busybox", "sh", "-c", "exit 7", check=False).returncode == 7
    proc = pb.popen("run", "--rm", "--name", "sig", "busybox", "sh", "-c",
                    "trap 'echo got-term; exit 42' TERM; while true; do sleep 0.1; done")
    for _ in range(100):
        if "sig" in pb("ps").stdout:
            break
        time.sleep(0.1)
    time.sleep(0.3)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 42 and "got-term" in out
    assert pb("ps", "-aq").stdout == ""  # --rm left nothing


def test_detached_logs_and_rm_rules(pb):
    pb("run", "-d", "--name", "talk", "busybox", "sh", "-c", "echo one; echo two >&2; sleep 30")
    for _ in range(50):
        if "two" in pb("logs", "talk").stdout:
            break
        time.sleep(0.1)
    assert pb("logs", "talk").stdout.split() == ["one", "two"]
    res = pb("rm", "talk", check=False)
    assert res.returncode != 0 and "is running" in res.stderr
    pb("rm", "-f", "talk")
    assert pb("ps", "-aq").stdout == ""
    res = pb("run", "-d", "--rm", "--name", "quick", "busybox", "echo", "bye")
    for _ in range(100):
        if pb("ps", "-aq").stdout == "":
            break
        time.sleep(0.1)
    assert pb("ps", "-aq").stdout == ""


def test_sigkill_of_pybuild_run_then_rm_leaves_nothing(pb):
    port = free_port()
    proc = pb.popen("run", "--name", "victim", "-p", f"{port}:1234", "busybox", *serve("alive"))
    assert fetch("127.0.0.1", port) == b"alive\n"
    proc.kill()
    proc.wait()
    # the foreground `pybuild run` is the container's monitor: its watcher takes the container with it
    # (runtime delete, network, overlay) and records 137, as the monitor would have; `rm` right away
    # waits for that teardown instead of racing it
    pb("rm", "-f", "victim")
    assert pb.bridge not in links() and not nft_tables() & {f"pybuild-{pb.bridge}"}
    assert "victim" not in pb("ps", "-a").stdout


@pytest.mark.parametrize("damage", ["down", "no-address", "no-route-localnet"])
def test_a_damaged_bridge_is_made_whole_by_the_next_run(pb, damage):
    """A set-up killed between its bridge's rename and `up` leaves it down; someone may flush its
    address or its route_localnet. The next container on it must still answer on its published port
    (and the one already there again), not get an address and no network without a word."""
    first, second = free_port(), free_port()
    one = pb.popen("run", "--name", "one", "-p", f"{first}:1234", "busybox", *serve("one"))
    two = None
    try:
        assert fetch("127.0.0.1", first) == b"one\n"
        if damage == "down":
            subprocess.run(["ip", "link", "set", pb.bridge, "down"], check=True)
        elif damage == "no-address":
            subprocess.run(["ip", "addr", "flush", "dev", pb.bridge], check=True)
        else:
            with open(f"/proc/sys/net/ipv4/conf/{pb.bridge}/route_localnet", "w") as fh:
                fh.write("0")
        two = pb.popen("run", "--name", "two", "-p", f"{second}:1234", "busybox", *serve("two"))
        assert fetch("127.0.0.1", second) == b"two\n"
        assert fetch("127.0.0.1", first) == b"one\n"
    finally:
        for proc in (one, two):
            if proc is not None:
                proc.kill()
                proc.wait()
        pb("rm", "-f", "one", "two", check=False)
    assert pb.bridge not in links()


def test_crashed_container_lease_is_reclaimed(pb):
    """SIGKILL of pybuild run *and* its runtime, then the container dies: nobody tears down.
    The next set-up reclaims the lease and the rules; `rm` removes the record."""
    port = free_port()
    proc = pb.popen("run", "--name", "lost", "-p", f"{port}:1234", "busybox", *serve("x"))
    assert fetch("127.0.0.1", port) == b"x\n"
    children = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout.split()
    proc.kill()
    proc.wait()
    for child in children:
        os.kill(int(child), signal.SIGKILL)
    with open(os.path.join(_container(pb, "lost"), "pid")) as fh:
        os.kill(int(fh.read()), signal.SIGKILL)
    time.sleep(0.5)
    leases = os.listdir(f"/run/pybuild/net/{pb.bridge}")
    assert len(leases) == 1
    lost = os.path.basename(_container(pb, "lost"))
    assert table_name(lost) in nft_tables()
    pb("run", "--rm", "busybox", "true")  # its set-up reclaims the stale lease, its teardown the bridge
    assert not os.path.exists(f"/run/pybuild/net/{pb.bridge}")
    assert table_name(lost) not in nft_tables() and pb.bridge not in links()
    pb("rm", "-f", "lost")


def test_bundle_hooks_publish_ports_and_delete_f_tears_down(pb, tmp_path):
    """`pybuild bundle -p` + plain `pyrunc run -d`: the createRuntime hook publishes the port;
    the container is killed behind the runtime's back, so its poststop hook never ran;
    `pyrunc delete -f` runs it and nothing is left."""
    port = free_port()
    pb("build", "-q", "-t", "srv", _context(tmp_path, 'FROM busybox\nCMD ["sh","-c","while true; do echo '
                                                     'bundled | nc -l -p 1234; done"]\n'))
    bundle = str(tmp_path / "bundle")
    pb("bundle", "-p", f"{port}:1234", "srv", bundle)
    config = json.load(open(os.path.join(bundle, "config.json")))
    assert [h["args"][4] for h in config["hooks"]["createRuntime"]] == ["setup"]
    assert [h["args"][4] for h in config["hooks"]["poststop"]] == ["teardown"]
    state = str(tmp_path / "state")
    env = dict(os.environ, PYBUILD_BRIDGE=pb.bridge)
    cid = f"pbt-{os.getpid()}"
    try:
        # files, not pipes: the detached container keeps its stdout and stderr
        with open(tmp_path / "out", "w") as out:
            res = subprocess.run([PYRUNC, "--root", state, "run", "-d", "-b", bundle, cid], stdout=out,
                                 stderr=out, env=env, timeout=60, stdin=subprocess.DEVNULL)
        assert res.returncode == 0, (tmp_path / "out").read_text()
        assert fetch("127.0.0.1", port) == b"bundled\n"
        pid = json.loads(subprocess.run([PYRUNC, "--root", state, "state", cid], capture_output=True,
                                        text=True).stdout)["pid"]
        os.kill(pid, signal.SIGKILL)
        time.sleep(0.3)
        assert os.listdir(f"/run/pybuild/net/{pb.bridge}")  # the lease is still there
    finally:
        res = subprocess.run([PYRUNC, "--root", state, "delete", "-f", cid], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert pb.bridge not in links() and not os.path.exists(f"/run/pybuild/net/{pb.bridge}")


def test_bundle_hook_failure_leaves_nothing(pb, tmp_path):
    with socket.socket() as busy:
        busy.bind(("0.0.0.0", 0))
        busy.listen()
        port = busy.getsockname()[1]
        bundle = str(tmp_path / "bundle")
        res = pb("bundle", "-p", f"{port}:1234", "busybox", bundle, check=False)  # busybox has no CMD
        assert res.returncode != 0 and "nothing to run" in res.stderr and not os.path.exists(bundle)
        pb("build", "-q", "-t", "t", _context(tmp_path, 'FROM busybox\nCMD ["true"]\n'))
        pb("bundle", "-p", f"{port}:1234", "t", bundle)
        res = subprocess.run([PYRUNC, "--root", str(tmp_path / "state"), "run", "-b", bundle, "pbt-fail"],
                             capture_output=True, text=True, env=dict(os.environ, PYBUILD_BRIDGE=pb.bridge),
                             stdin=subprocess.DEVNULL)
    assert res.returncode != 0 and f"host port {port}/tcp is already in use" in res.stderr


def _context(tmp_path, dockerfile: str) -> str:
    d = tmp_path / f"ctx{len(os.listdir(tmp_path))}"
    d.mkdir()
    (d / "Dockerfile").write_text(dockerfile)
    return str(d)


def test_run_steps_use_the_bridge(pb, tmp_path):
    ctx = _context(tmp_path, "FROM busybox\n"
                   "RUN ip -o -4 addr show eth0 | grep -q inet && ip route | grep -q default "
                   "&& grep -q \"$(hostname)\" /etc/hosts && echo bridged > /net\n"
                   "RUN --network=none sh -c '! ip -o link show eth0' && echo none >> /net\n"
                   "RUN --network=host test -e /sys/class/net/lo && echo host >> /net\n"
                   "RUN echo junk > /etc/hostname && echo junk >> /etc/hosts && echo junk > /etc/resolv.conf\n")
    pb("build", "-q", "-t", "netsteps", ctx)
    out = pb("run", "--rm", "--network", "none", "netsteps", "cat", "/net").stdout
    assert out.splitlines() == ["bridged", "none", "host"]
    # what the last step wrote to the generated files never reached a layer
    last = json.loads(pb("inspect", "netsteps").stdout)[0]["History"][-1]
    assert "junk" in last["created_by"] and last.get("empty_layer") is True
    res = pb("build", "-q", "--network", "none", "-t", "x",
             _context(tmp_path, "FROM busybox\nRUN ! ip -o link show eth0\nRUN --network=bridge ip -o link show eth0\n"))
    assert res.returncode == 0


@pytest.mark.parametrize("case", ["port-in-use", "subnet-collides", "bridge-name-taken", "no-nat-tool",
                                  "no-volume-source", "no-image", "bad-network"])
def test_bad_input_one_line_nothing_left(pb, tmp_path, case):
    args = ["run", "--rm", "busybox", "true"]
    env: dict = {}
    busy = None
    dummy = None
    if case == "port-in-use":
        busy = socket.socket()
        busy.bind(("0.0.0.0", 0))
        busy.listen()
        args = ["run", "--rm", "-p", f"{busy.getsockname()[1]}:80", "busybox", "true"]
        expect = "is already in use"
    elif case == "subnet-collides":
        dummy = f"pbd{os.getpid() % 100000}"
        subprocess.run(["ip", "link", "add", dummy, "type", "bridge"], check=True)
        subprocess.run(["ip", "addr", "add", "10.213.7.1/24", "dev", dummy], check=True)
        subprocess.run(["ip", "link", "set", dummy, "up"], check=True)
        env = {"PYBUILD_SUBNET": "10.213.0.0/16"}
        expect = "collides with the host route 10.213.7.0/24"
    elif case == "bridge-name-taken":
        dummy = pb.bridge  # a bridge, but not pybuild's (no alias)
        subprocess.run(["ip", "link", "add", dummy, "type", "bridge"], check=True)
        expect = "is held by a link that is not pybuild's (kind bridge)"
    elif case == "no-nat-tool":
        env = {"PATH": "/usr/bin:/bin"}
        if shutil.which("nft", path=env["PATH"]) or shutil.which("iptables", path=env["PATH"]):
            pytest.skip("nft or iptables is in /usr/bin here")
        expect = "neither `nft` nor `iptables` is on PATH"
    elif case == "no-volume-source":
        args = ["run", "--rm", "-v", f"{tmp_path}/absent:/x", "busybox", "true"]
        expect = "does not exist"
    elif case == "no-image":
        args = ["run", "--rm", "nosuchimage", "true"]
        expect = "image not found: nosuchimage"
    else:
        args = ["run", "--rm", "--network", "wifi", "busybox", "true"]
        expect = "--network wifi"
    before = links()
    try:
        res = pb(*args, check=False, env=env)
    finally:
        if busy:
            busy.close()
        if dummy:
            subprocess.run(["ip", "link", "del", dummy], capture_output=True)
    assert res.returncode == 125, res.stderr
    assert res.stderr.startswith("pybuild: ") and res.stderr.count("\n") == 1, res.stderr
    assert expect in res.stderr
    assert "Traceback" not in res.stderr
    assert pb("ps", "-aq").stdout == ""
    assert links() - before == set() and not os.path.exists(f"/run/pybuild/net/{pb.bridge}")


def test_published_udp_port(tmp_path):
    """busybox-static has no UDP server, so the container side is a process of this test in a
    namespace that pybuild.net put on a bridge with `-p PORT:5353/udp`, as it does for containers."""
    from pybuild.net import plumbing
    from pybuild.net.model import parse_port
    from pyrunc import syscalls

    port = free_port()
    req = plumbing.NetRequest(f"udp-{os.getpid()}", f"pbu{os.getpid() % 100000}",
                              ports=(parse_port(f"{port}:5353/udp"),), state_dir=str(tmp_path / "net"))
    fd = plumbing.new_netns()
    r, w = os.pipe()
    child = None
    try:
        plumbing.setup(req, fd)
        child = os.fork()
        if child == 0:
            code = 1
            try:
                os.close(r)
                syscalls.setns(fd, syscalls.CLONE_NEWNET)
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as srv:
                    srv.bind(("0.0.0.0", 5353))
                    os.write(w, b"ready\n")
                    srv.settimeout(10)
                    got = [srv.recv(100) for _ in range(2)]
                os.write(w, b"".join(got))
                code = 0
            finally:
                os._exit(code)
        os.close(w)
        w = -1
        assert os.read(r, 6) == b"ready\n"
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(b"via-localhost\n", ("127.0.0.1", port))
            time.sleep(0.1)
            s.sendto(b"via-host-address\n", (host_address(), port))
        data = b""
        while chunk := os.read(r, 100):
            data += chunk
        assert data == b"via-localhost\nvia-host-address\n"
    finally:
        if child:
            os.waitpid(child, 0)
        for f in (r, w, fd):
            if f >= 0:
                os.close(f)
        plumbing.teardown(req)


def test_sigkill_of_a_build_mid_run_step_leaves_no_network(pb, tmp_path):
    """The build's watcher (sandbox.py) tears down the bridge networks of the dead build's RUN steps."""
    ctx = _context(tmp_path, "FROM busybox\nRUN echo started && sleep 30\n")
    proc = pb.popen("build", "--progress", "plain", ctx)
    lines: list[str] = []
    deadline = time.monotonic() + 60
    while "started" not in lines and time.monotonic() < deadline:
        lines.append(proc.stderr.readline().strip())
    assert "started" in lines and pb.bridge in links()
    proc.kill()
    proc.wait()
    proc.stdout.close()
    proc.stderr.close()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and (pb.bridge in links() or os.path.exists(f"/run/pybuild/net/{pb.bridge}")):
        time.sleep(0.1)
    assert pb.bridge not in links() and not os.path.exists(f"/run/pybuild/net/{pb.bridge}")
    assert f"pybuild-{pb.bridge}" not in nft_tables()
