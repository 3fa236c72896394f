"""Soak: pyrunc and pybuild run many times over; nothing may accumulate (issue 18).

    bench/soak.py [--cycles 1000] [--execs 1000] [--builds 200] [--network bridge|none]

Three loops, each after a count of what could leak, and the same count after:
  cycles  pyrunc create / start / wait (state until stopped) / delete of a busybox `true` container
  execs   pyrunc exec `true` into one running container
  builds  pybuild build --no-cache of a small Dockerfile (COPY + RUN, on the bridge network by default)
Counted: mounts under the soak's work dir, cgroups named after the soak's containers and builds,
the fds of this long-lived caller, state dirs (pyrunc's root, the store's tmp/), veths and IPAM leases
of the soak's containers and of pybuild's bridge as a whole, temp dirs (/tmp entries named like pyrunc's
and pybuild's, the store's tmp/), and the processes in the exec'd container. Printed: the counts before
and after, the latency p50/p99 per cycle (ms), and the runtime's peak RSS (ru_maxrss of each pyrunc
process, KiB) over the first and the last tenth of each loop. tests/integration/reliability/test_soak.py
runs it short by default and whole with PYRUNC_SOAK=1; docs/RELIABILITY.md quotes it.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
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


@dataclass
class Loop:
    name: str
    latencies: list[float] = field(default_factory=list)   # ms per cycle
    rss: list[int] = field(default_factory=list)           # KiB, the largest pyrunc process of the cycle
    before: dict[str, int] = field(default_factory=dict)
    after: dict[str, int] = field(default_factory=dict)

    def pct(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0

    def rss_ends(self) -> tuple[int, int]:
        """Median peak RSS over the first and the last tenth of the loop."""
        tenth = max(1, len(self.rss) // 10)
        return int(statistics.median(self.rss[:tenth])), int(statistics.median(self.rss[-tenth:]))

    def leaks(self) -> dict[str, tuple[int, int]]:
        return {k: (self.before[k], self.after.get(k, 0)) for k in self.before if self.before[k] != self.after.get(k)}


class Soak:
    def __init__(self, work: str, network: str = "bridge") -> None:
        self.work = work
        self.tag = f"soak{uuid.uuid4().hex[:6]}"
        self.root = os.path.join(work, "state")
        self.store = os.path.join(work, "store")
        self.bundle = os.path.join(work, "bundle")
        self.network = network
        self.ids: set[str] = set()          # pyrunc containers and pybuild build pids of this soak
        self.exec_container = ""
        self.null = os.open(os.devnull, os.O_RDWR)
        self._make_bundle()

    # ---- setup ---------------------------------------------------------------------------------
    def _make_bundle(self) -> None:
        rootfs = os.path.join(self.bundle, "rootfs")
        for d in ("bin", "proc", "dev", "sys", "tmp", "etc"):
            os.makedirs(os.path.join(rootfs, d), exist_ok=True)
        shutil.copy2(BUSYBOX, os.path.join(rootfs, "bin", "busybox"))
        for applet in ("true", "sleep", "sh", "echo", "cat"):
            os.symlink("busybox", os.path.join(rootfs, "bin", applet))
        subprocess.run([self.pyrunc, "spec", "--bundle", self.bundle], check=True)
        with open(os.path.join(self.bundle, "config.json")) as fh:
            config = json.load(fh)
        config["process"]["terminal"] = False
        config["process"]["args"] = ["true"]
        with open(os.path.join(self.bundle, "config.json"), "w") as fh:
            json.dump(config, fh)

    @property
    def pyrunc(self) -> str:
        return os.path.join(BIN, "pyrunc")

    def _spawn(self, argv: list[str], stdout: int | None = None) -> tuple[int, float, int]:
        """(exit code, wall ms, ru_maxrss KiB) of one command, its stdio on /dev/null (or `stdout`)."""
        started = time.perf_counter()
        pid = os.posix_spawn(argv[0], argv, os.environ, file_actions=[
            (os.POSIX_SPAWN_DUP2, self.null, 0), (os.POSIX_SPAWN_DUP2, stdout or self.null, 1),
            (os.POSIX_SPAWN_DUP2, self.null, 2)])
        _, status, usage = os.wait4(pid, 0)
        return os.waitstatus_to_exitcode(status), (time.perf_counter() - started) * 1000, usage.ru_maxrss

    def _pyrunc(self, *args: str) -> tuple[float, int]:
        code, ms, rss = self._spawn([self.pyrunc, "--root", self.root, *args])
        if code != 0:
            raise RuntimeError(f"pyrunc {' '.join(args)}: exit {code}")
        return ms, rss

    def _status(self, cid: str) -> str:
        out = subprocess.run([self.pyrunc, "--root", self.root, "state", cid], capture_output=True, text=True)
        return json.loads(out.stdout)["status"] if out.returncode == 0 else "gone"

    # ---- what could leak -------------------------------------------------------------------------
    def counts(self) -> dict[str, int]:
        with open("/proc/self/mountinfo") as fh:
            mounts = sum(1 for line in fh if line.split()[4].startswith(self.work))
        cgroups = sum(1 for d in glob.glob("/sys/fs/cgroup/*/*") + glob.glob("/sys/fs/cgroup/*/*/*")
                      if os.path.basename(d).startswith(self.tag) or
                      any(os.path.basename(d).startswith(f"pybuild-{p}-") for p in self.ids if p.isdigit()))
        links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout.splitlines()
        veths = sum(1 for line in links if line.split(":")[1].strip().startswith("vpb"))
        leases = glob.glob("/run/pybuild/net/*/*")
        temps = [n for n in os.listdir("/tmp") if n.startswith(("pyrunc-", "pybuild-"))]
        store_tmp = os.path.join(self.store, "tmp")
        state = [n for n in os.listdir(self.root) if n != "@seccomp"] if os.path.isdir(self.root) else []
        out = {"mounts": mounts, "cgroups": cgroups, "caller fds": len(os.listdir("/proc/self/fd")),
               "state dirs": len(state), "veths (all vpb*)": veths, "IPAM leases (all)": len(leases),
               "temp dirs (/tmp, store tmp/)": len(temps) + (len(os.listdir(store_tmp)) if os.path.isdir(store_tmp) else 0)}
        if self.exec_container:
            procs = glob.glob(f"/sys/fs/cgroup/pids/{self.exec_container}/cgroup.procs") + \
                glob.glob(f"/sys/fs/cgroup/pids/*/{self.exec_container}/cgroup.procs")
            if procs:
                with open(procs[0]) as fh:
                    out["processes in the container"] = len(fh.read().split())
        return out

    # ---- the loops -----------------------------------------------------------------------------
    def cycles(self, n: int) -> Loop:
        loop = Loop("create/start/wait/delete")
        loop.before = self.counts()
        for i in range(n):
            cid = f"{self.tag}-{i}"
            started = time.perf_counter()
            peaks = [self._pyrunc("create", "-b", self.bundle, cid)[1], self._pyrunc("start", cid)[1]]
            while self._status(cid) != "stopped":
                time.sleep(0.001)
            peaks.append(self._pyrunc("delete", cid)[1])
            loop.latencies.append((time.perf_counter() - started) * 1000)
            loop.rss.append(max(peaks))
        loop.after = self.counts()
        return loop

    def execs(self, n: int) -> Loop:
        loop = Loop("exec")
        cid = f"{self.tag}-exec"
        config = os.path.join(self.bundle, "config.json")
        with open(config) as fh:
            doc = json.load(fh)
        doc["process"]["args"] = ["sleep", "1000000"]
        with open(config, "w") as fh:
            json.dump(doc, fh)
        self._pyrunc("run", "-d", "-b", self.bundle, cid)
        self.exec_container = cid
        try:
            loop.before = self.counts()
            for _ in range(n):
                ms, rss = self._pyrunc("exec", cid, "true")
                loop.latencies.append(ms)
                loop.rss.append(rss)
            loop.after = self.counts()
        finally:
            self.exec_container = ""
            self._pyrunc("delete", "-f", cid)
            doc["process"]["args"] = ["true"]
            with open(config, "w") as fh:
                json.dump(doc, fh)
        return loop

    def builds(self, n: int) -> Loop:
        loop = Loop(f"pybuild build --no-cache (network {self.network})")
        pybuild = os.path.join(BIN, "pybuild")
        tarball = os.path.join(self.work, "busybox.tar")
        with tarfile.open(tarball, "w") as tf:
            tf.add(os.path.join(self.bundle, "rootfs"), arcname=".")
        ctx = os.path.join(self.work, "ctx")
        os.makedirs(ctx)
        with open(os.path.join(ctx, "Dockerfile"), "w") as fh:
            fh.write("FROM busybox\nCOPY data /data\nRUN echo built > /built && cat /data > /dev/null\n")
        with open(os.path.join(ctx, "data"), "wb") as fh:
            fh.write(os.urandom(1 << 16))
        if self._spawn([pybuild, "--root", self.store, "import", tarball, "-t", "busybox"])[0]:
            raise RuntimeError("pybuild import failed")
        loop.before = self.counts()
        for _ in range(n):
            started = time.perf_counter()
            pid = os.posix_spawn(pybuild, [pybuild, "--root", self.store, "build", "--no-cache", "-q", "--network",
                                           self.network, "-t", "soak", ctx], os.environ,
                                 file_actions=[(os.POSIX_SPAWN_DUP2, self.null, 0), (os.POSIX_SPAWN_DUP2, self.null, 1),
                                               (os.POSIX_SPAWN_DUP2, self.null, 2)])
            self.ids.add(str(pid))
            _, status, usage = os.wait4(pid, 0)
            if os.waitstatus_to_exitcode(status):
                raise RuntimeError(f"pybuild build: exit {os.waitstatus_to_exitcode(status)}")
            loop.latencies.append((time.perf_counter() - started) * 1000)
            loop.rss.append(usage.ru_maxrss)
        subprocess.run([pybuild, "--root", self.store, "prune"], capture_output=True, check=True)
        loop.after = self.counts()
        return loop


def settle(soak: Soak, loop: Loop, seconds: float = 15.0) -> None:
    """Machine-wide counts (veths, leases) move with other work on a shared machine: count again
    until they match, for a while, before calling a difference a leak."""
    deadline = time.monotonic() + seconds
    while loop.leaks() and time.monotonic() < deadline:
        time.sleep(0.5)
        loop.after = soak.counts()


def report(loop: Loop) -> str:
    first, last = loop.rss_ends()
    lines = [f"{loop.name}: {len(loop.latencies)} cycles, p50 {loop.pct(0.5):.1f} ms, p99 {loop.pct(0.99):.1f} ms, "
             f"peak RSS {first} KiB (first tenth) -> {last} KiB (last tenth)"]
    for key, before in loop.before.items():
        after = loop.after.get(key)
        lines.append(f"  {key:<32} before {before:>4}  after {after:>4}{'' if before == after else '   <- differs'}")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cycles", type=int, default=1000)
    parser.add_argument("--execs", type=int, default=1000)
    parser.add_argument("--builds", type=int, default=200)
    parser.add_argument("--network", default="bridge", choices=("bridge", "none"))
    args = parser.parse_args(argv)
    work = tempfile.mkdtemp(prefix="soak-", dir="/var/tmp")
    soak = Soak(work, args.network)
    failed = False
    try:
        for n, run in ((args.cycles, soak.cycles), (args.execs, soak.execs), (args.builds, soak.builds)):
            if n <= 0:
                continue
            loop = run(n)
            settle(soak, loop)
            print(report(loop), flush=True)
            failed |= bool(loop.leaks())
    finally:
        subprocess.run(["umount", "-R", "-l", work], capture_output=True)
        shutil.rmtree(work, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
