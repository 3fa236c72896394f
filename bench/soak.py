"""Soak: pyrunc and pybuild run many times over; nothing may accumulate (issue 18).

    bench/soak.py [--cycles 1000] [--execs 1000] [--builds 200] [--network bridge|none] [--peer runc|none]

Three loops, each after a count of what could leak, and the same count after:
  cycles  create / start / wait (state until stopped) / delete of a busybox `true` container
  execs   exec `true` into one running container
  builds  pybuild build --no-cache of a small Dockerfile (COPY + RUN, on the bridge network by default)
With a peer (runc, the default when it is installed) every iteration runs the same cycle with pyrunc
and with the peer, in alternating order, so that the two series see the same machine (this one is
shared): the cycles and execs with the peer as the runtime, the builds with `pybuild --runtime PEER`.
Counted: mounts under the soak's work dir, cgroups named after the soak's containers or after a
build that is gone,
the fds of this long-lived caller, state dirs (each runtime's root, the store's tmp/), veths and IPAM
leases of pybuild's bridge as a whole, temp dirs (/tmp entries named like pyrunc's and pybuild's, the
store's tmp/), and the processes in the exec'd containers. Printed: the counts before and after, the
latency p50/p99 per cycle (ms) of each runtime and pyrunc's over the peer's (median of the
per-iteration ratios), and the runtime's peak RSS (each runtime process's own, read by GNU time, KiB;
for builds, pybuild's) over the first and the last tenth of each loop. tests/integration/reliability/test_soak.py
runs it short by default and whole with PYRUNC_SOAK=1; docs/RELIABILITY.md quotes it.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import uuid
from dataclasses import dataclass, field

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(HERE, ".venv", "bin")
BUSYBOX = "/bin/busybox"
# GNU time reports its child's own ru_maxrss. wait4 on a child this process spawned would not: the
# kernel records the peak of the memory a process had when it called execve, and a child spawned here
# starts as a copy (or, with vfork, a borrower) of this interpreter's memory, so every command would
# show at least the soak's own RSS (an earlier version of this file quoted that figure).
GNU_TIME = "/usr/bin/time"
PYBUILD = os.path.join(BIN, "pybuild")


@dataclass
class Series:
    """One runtime's measurements over a loop."""
    latencies: list[float] = field(default_factory=list)   # ms per cycle
    rss: list[int] = field(default_factory=list)           # KiB, the largest runtime process of the cycle

    def pct(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0

    def rss_ends(self) -> tuple[int, int]:
        """Median peak RSS over the first and the last tenth of the loop."""
        tenth = max(1, len(self.rss) // 10)
        return int(statistics.median(self.rss[:tenth])), int(statistics.median(self.rss[-tenth:]))


@dataclass
class Loop:
    name: str
    series: dict[str, Series] = field(default_factory=dict)   # runtime name -> its series, pyrunc first
    before: dict[str, int] = field(default_factory=dict)
    after: dict[str, int] = field(default_factory=dict)

    def leaks(self) -> dict[str, tuple[int, int]]:
        return {k: (self.before[k], self.after.get(k, 0)) for k in self.before if self.before[k] != self.after.get(k)}

    def ratio(self, peer: str) -> float:
        """Median over iterations of pyrunc's time / the peer's (each pair ran back to back)."""
        mine, theirs = self.series["pyrunc"].latencies, self.series[peer].latencies
        return statistics.median(a / b for a, b in zip(mine, theirs))


class Soak:
    def __init__(self, work: str, network: str = "bridge", peers: tuple[str, ...] = ()) -> None:
        self.work = work
        self.tag = f"soak{uuid.uuid4().hex[:6]}"
        self.store = os.path.join(work, "store")
        self.bundle = os.path.join(work, "bundle")
        self.network = network
        self.runtimes = {"pyrunc": os.path.join(BIN, "pyrunc")}
        for peer in peers:
            path = shutil.which(peer)
            if not path:
                raise RuntimeError(f"{peer}: not installed")
            self.runtimes[peer] = path
        self.exec_containers: dict[str, str] = {}   # runtime -> the container execs go into
        self.last_temps: list[str] = []             # the temp dirs of the last count, named
        self.null = os.open(os.devnull, os.O_RDWR)
        self.rss_file = os.path.join(work, "rss")
        self.err_file = os.path.join(work, "stderr")   # the last command's, quoted when it fails
        self.last_error = [""]
        # a bridge of the soak's own: other work on this machine may hold or remove pybuild0 meanwhile
        self.env = dict(os.environ, PYBUILD_BRIDGE=f"pbs{self.tag[-6:]}")
        if not os.access(GNU_TIME, os.X_OK):
            raise RuntimeError(f"{GNU_TIME} (Debian's time package) is needed to read each command's peak RSS")
        self._make_bundle()

    # ---- setup ---------------------------------------------------------------------------------
    def _make_bundle(self) -> None:
        rootfs = os.path.join(self.bundle, "rootfs")
        for d in ("bin", "proc", "dev", "sys", "tmp", "etc"):
            os.makedirs(os.path.join(rootfs, d), exist_ok=True)
        shutil.copy2(BUSYBOX, os.path.join(rootfs, "bin", "busybox"))
        for applet in ("true", "sleep", "sh", "echo", "cat"):
            os.symlink("busybox", os.path.join(rootfs, "bin", applet))
        subprocess.run([self.runtimes["pyrunc"], "spec", "--bundle", self.bundle], check=True)
        self._set_args(["true"])

    def _set_args(self, args: list[str]) -> None:
        config = os.path.join(self.bundle, "config.json")
        with open(config) as fh:
            doc = json.load(fh)
        doc["process"]["terminal"] = False
        doc["process"]["args"] = args
        with open(config, "w") as fh:
            json.dump(doc, fh)

    def root(self, runtime: str) -> str:
        return os.path.join(self.work, f"state-{runtime}")

    def _spawn(self, argv: list[str]) -> tuple[int, float, int]:
        """(exit code, wall ms, peak RSS KiB) of one command, its stdio on /dev/null, run under GNU
        time (a fork and an exec more, the same for every runtime)."""
        timed = [GNU_TIME, "-q", "-f", "%M", "-o", self.rss_file, *argv]
        started = time.perf_counter()
        pid = os.posix_spawn(GNU_TIME, timed, self.env, file_actions=[
            (os.POSIX_SPAWN_DUP2, self.null, 0), (os.POSIX_SPAWN_DUP2, self.null, 1),
            (os.POSIX_SPAWN_OPEN, 2, self.err_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)])
        _, status = os.waitpid(pid, 0)
        ms = (time.perf_counter() - started) * 1000
        if status:
            with open(self.err_file, errors="replace") as fh:
                self.last_error = fh.read().strip().splitlines()[-1:] or [""]
        with open(self.rss_file) as fh:
            rss = int(fh.read().split()[-1])
        return os.waitstatus_to_exitcode(status), ms, rss

    def _rt(self, runtime: str, *args: str) -> tuple[float, int]:
        code, ms, rss = self._spawn([self.runtimes[runtime], "--root", self.root(runtime), *args])
        if code != 0:
            raise RuntimeError(f"{runtime} {' '.join(args)}: exit {code}: {self.last_error[0]}")
        return ms, rss

    def _status(self, runtime: str, cid: str) -> str:
        out = subprocess.run([self.runtimes[runtime], "--root", self.root(runtime), "state", cid],
                             capture_output=True, text=True)
        return json.loads(out.stdout)["status"] if out.returncode == 0 else "gone"

    def _order(self, i: int) -> list[str]:
        """The runtimes in the order of iteration i: alternating, so neither always goes first."""
        names = list(self.runtimes)
        return names if i % 2 == 0 else names[::-1]

    # ---- what could leak -------------------------------------------------------------------------
    def counts(self) -> dict[str, int]:
        with open("/proc/self/mountinfo") as fh:
            mounts = sum(1 for line in fh if line.split()[4].startswith(self.work))
        cgroups = sum(1 for d in glob.glob("/sys/fs/cgroup/*/*") + glob.glob("/sys/fs/cgroup/*/*/*")
                      if os.path.basename(d).startswith(self.tag) or _dead_build(os.path.basename(d)))
        links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout.splitlines()
        veths = sum(1 for line in links if line.split(":")[1].strip().startswith("vpb"))
        leases = glob.glob("/run/pybuild/net/*/*")
        temps = [n for n in os.listdir("/tmp") if n.startswith(("pyrunc-", "pybuild-"))]
        store_tmp = os.path.join(self.store, "tmp")
        out = {"mounts": mounts, "cgroups": cgroups, "caller fds": len(os.listdir("/proc/self/fd"))}
        for runtime in self.runtimes:
            root = self.root(runtime)
            state = [n for n in os.listdir(root) if n != "@seccomp"] if os.path.isdir(root) else []
            out[f"state dirs ({runtime})"] = len(state)
        scratch = sorted(os.listdir(store_tmp)) if os.path.isdir(store_tmp) else []
        out.update({"veths (all vpb*)": veths, "IPAM leases (all)": len(leases),
                    "temp dirs (/tmp pyrunc-*/pybuild-*, all)": len(temps), "temp dirs (store tmp/)": len(scratch)})
        self.last_temps = sorted(temps) + [f"store tmp/{n}" for n in scratch]
        for runtime, cid in self.exec_containers.items():
            procs = glob.glob(f"/sys/fs/cgroup/pids/{cid}/cgroup.procs") + \
                glob.glob(f"/sys/fs/cgroup/pids/*/{cid}/cgroup.procs")
            if procs:
                with open(procs[0]) as fh:
                    out[f"processes in the container ({runtime})"] = len(fh.read().split())
        return out

    # ---- the loops -----------------------------------------------------------------------------
    def cycles(self, n: int) -> Loop:
        loop = Loop("create/start/wait/delete", {rt: Series() for rt in self.runtimes})
        loop.before = self.counts()
        for i in range(n):
            for rt in self._order(i):
                cid = f"{self.tag}-{rt}-{i}"
                started = time.perf_counter()
                peaks = [self._rt(rt, "create", "-b", self.bundle, cid)[1], self._rt(rt, "start", cid)[1]]
                while self._status(rt, cid) != "stopped":
                    time.sleep(0.001)
                peaks.append(self._rt(rt, "delete", cid)[1])
                loop.series[rt].latencies.append((time.perf_counter() - started) * 1000)
                loop.series[rt].rss.append(max(peaks))
        loop.after = self.counts()
        return loop

    def execs(self, n: int) -> Loop:
        loop = Loop("exec", {rt: Series() for rt in self.runtimes})
        self._set_args(["sleep", "1000000"])
        try:
            for rt in self.runtimes:
                cid = f"{self.tag}-{rt}-exec"
                self._rt(rt, "run", "-d", "-b", self.bundle, cid)
                self.exec_containers[rt] = cid
            loop.before = self.counts()
            for i in range(n):
                for rt in self._order(i):
                    ms, rss = self._rt(rt, "exec", self.exec_containers[rt], "true")
                    loop.series[rt].latencies.append(ms)
                    loop.series[rt].rss.append(rss)
            loop.after = self.counts()
        finally:
            for rt, cid in list(self.exec_containers.items()):
                self._rt(rt, "delete", "-f", cid)
                del self.exec_containers[rt]
            self._set_args(["true"])
        return loop

    def builds(self, n: int) -> Loop:
        loop = Loop(f"pybuild build --no-cache (network {self.network})", {rt: Series() for rt in self.runtimes})
        tarball = os.path.join(self.work, "busybox.tar")
        with tarfile.open(tarball, "w") as tf:
            tf.add(os.path.join(self.bundle, "rootfs"), arcname=".")
        ctx = os.path.join(self.work, "ctx")
        os.makedirs(ctx)
        with open(os.path.join(ctx, "Dockerfile"), "w") as fh:
            fh.write("FROM busybox\nCOPY data /data\nRUN echo built > /built && cat /data > /dev/null\n")
        with open(os.path.join(ctx, "data"), "wb") as fh:
            fh.write(os.urandom(1 << 16))
        if self._spawn([PYBUILD, "--root", self.store, "import", tarball, "-t", "busybox"])[0]:
            raise RuntimeError("pybuild import failed")
        loop.before = self.counts()
        for i in range(n):
            for rt in self._order(i):
                code, ms, rss = self._spawn([PYBUILD, "--root", self.store, "--runtime", self.runtimes[rt], "build",
                                             "--no-cache", "-q", "--network", self.network, "-t", "soak", ctx])
                if code:
                    raise RuntimeError(f"pybuild --runtime {rt} build: exit {code}: {self.last_error[0]}")
                loop.series[rt].latencies.append(ms)
                loop.series[rt].rss.append(rss)
        subprocess.run([PYBUILD, "--root", self.store, "prune"], capture_output=True, check=True)
        loop.after = self.counts()
        return loop


def _dead_build(name: str) -> bool:
    """A RUN step's cgroup (pybuild-<pid>-<hex>) whose build is gone: a leak, whoever's build it was
    (the soak's builds run under GNU time, so their pids are not known here)."""
    match = re.match(r"pybuild-(\d+)-", name)
    return bool(match) and not os.path.exists(f"/proc/{match[1]}")


def settle(soak: Soak, loop: Loop, seconds: float = 15.0) -> None:
    """Machine-wide counts (veths, leases) move with other work on a shared machine: count again
    until they match, for a while, before calling a difference a leak."""
    deadline = time.monotonic() + seconds
    while loop.leaks() and time.monotonic() < deadline:
        time.sleep(0.5)
        loop.after = soak.counts()


def report(loop: Loop) -> str:
    some = next(iter(loop.series.values()))
    lines = [f"{loop.name}: {len(some.latencies)} cycles" + (" per runtime, interleaved" if len(loop.series) > 1 else "")]
    for runtime, s in loop.series.items():
        first, last = s.rss_ends()
        lines.append(f"  {runtime:<8} p50 {s.pct(0.5):7.1f} ms  p99 {s.pct(0.99):7.1f} ms  "
                     f"peak RSS {first} KiB (first tenth) -> {last} KiB (last tenth)")
    for peer in list(loop.series)[1:]:
        lines.append(f"  pyrunc/{peer}: {loop.ratio(peer):.2f}x (median of per-iteration ratios)")
    for key, before in loop.before.items():
        after = loop.after.get(key)
        lines.append(f"  {key:<40} before {before:>4}  after {after:>4}{'' if before == after else '   <- differs'}")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cycles", type=int, default=1000)
    parser.add_argument("--execs", type=int, default=1000)
    parser.add_argument("--builds", type=int, default=200)
    parser.add_argument("--network", default="bridge", choices=("bridge", "none"))
    parser.add_argument("--peer", default="runc" if shutil.which("runc") else "none",
                        help="a second runtime run interleaved with pyrunc (none: pyrunc only)")
    args = parser.parse_args(argv)
    work = tempfile.mkdtemp(prefix="soak-", dir="/var/tmp")
    failed = False
    try:
        soak = Soak(work, args.network, () if args.peer == "none" else (args.peer,))
        for n, run in ((args.cycles, soak.cycles), (args.execs, soak.execs), (args.builds, soak.builds)):
            if n <= 0:
                continue
            loop = run(n)
            settle(soak, loop)
            print(report(loop), flush=True)
            if loop.leaks() and soak.last_temps:
                print(f"  temp dirs now: {' '.join(soak.last_temps)}", flush=True)
            failed |= bool(loop.leaks())
    except RuntimeError as exc:
        print(f"soak: {exc}", file=sys.stderr)
        failed = True
    finally:
        subprocess.run(["umount", "-R", "-l", work], capture_output=True)
        shutil.rmtree(work, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
