"""pybuild under concurrency: parallel builds sharing one store and one cache, and `prune`/`rmi`
racing builds and containers.

- 6 builds at once into one store: all succeed, every tag is there (no lost update of index.json),
  the steps they share are stored once (one blob, one unpacked layer), fsck finds nothing wrong,
  and a rebuild of each is fully cached.
- `pybuild prune` and `rmi` in a loop while builds and `run`s go on: nothing a build or a container
  uses is removed (each build succeeds and its image runs; each container runs to its end).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

from pbsec import busybox_tar, pb, write_context  # noqa: F401
from rellib import assert_store_sound

N_BUILDS = 6


# a bridge of this module's own: other work on the machine may hold or remove pybuild0 meanwhile
BRIDGE_ENV = dict(os.environ, PYBUILD_BRIDGE=f"pbc{os.urandom(4).hex()}")


def _popen(pb, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "pybuild", "--root", pb.root, *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=BRIDGE_ENV)


def _contexts(tmp_path, n: int, run: str = "") -> list[str]:
    shared = os.urandom(1 << 20)
    return [write_context(str(tmp_path / f"ctx{i}"), {
        "Dockerfile": f"FROM busybox\nCOPY shared /shared\nRUN echo {i} > /mine{run}\n", "shared": shared})
        for i in range(n)]


def _manifest_layers(pb, name: str) -> list[str]:
    import json

    res = pb.ok("inspect", "--type", "image", name)
    return json.loads(res.stdout)[0]["RootFS"]["Layers"]


def test_parallel_builds_share_one_store(pb, tmp_path) -> None:
    ctxs = _contexts(tmp_path, N_BUILDS)
    procs = [_popen(pb, "build", "--progress", "plain", "-t", f"app{i}", "-t", "common", ctx)  # bridge: IPAM races too
             for i, ctx in enumerate(ctxs)]
    for i, p in enumerate(procs):
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, f"build {i}: {err[-3000:]}"
        assert "Traceback" not in err
    names = pb.ok("images").stdout
    for i in range(N_BUILDS):
        assert f"app{i} " in names, names
    assert "common " in names
    # the COPY layer of the shared file has one diffID: every image starts with the same two layers
    firsts = {tuple(_manifest_layers(pb, f"app{i}")[:2]) for i in range(N_BUILDS)}
    assert len(firsts) == 1, firsts
    assert_store_sound(pb, "parallel builds")
    for i, ctx in enumerate(ctxs):
        again = pb.build(ctx, "--network", "none", "-t", f"app{i}")
        assert again.returncode == 0 and again.stderr.count("--> CACHED") == 2, again.stderr
        assert pb.ok("run", "--rm", "--network", "none", f"app{i}", "cat", "/mine").stdout == f"{i}\n"


def test_prune_and_rmi_race_builds_and_containers(pb, tmp_path) -> None:
    ctxs = _contexts(tmp_path, 3, run=" && sleep 1")
    junk = write_context(str(tmp_path / "junk"), {"Dockerfile": "FROM busybox\nRUN echo junk > /junk\n"})
    stop = threading.Event()
    errors: list[str] = []

    def pruner() -> None:
        while not stop.is_set():
            for args in (("build", "--network", "none", "-t", "junk", junk), ("rmi", "junk"), ("prune",)):
                res = pb(*args)
                if res.returncode != 0 or "Traceback" in res.stderr:
                    errors.append(f"{' '.join(args)}: {res.stderr[-1000:]}")

    thread = threading.Thread(target=pruner)
    thread.start()
    try:
        for round_ in range(2):
            builds = [_popen(pb, "build", "--no-cache", "--network", "none", "-t", f"app{i}", ctx)
                      for i, ctx in enumerate(ctxs)]
            runs = [_popen(pb, "run", "--rm", "--network", "none", "busybox", "sh", "-c", "sleep 1; cat /bin/sh >/dev/null && echo ran")
                    for _ in range(2)]
            for p in builds + runs:
                out, err = p.communicate(timeout=300)
                assert p.returncode == 0, f"round {round_}: {p.args[4:]}: {err[-3000:]}"
            for i in range(len(ctxs)):
                assert pb.ok("run", "--rm", "--network", "none", f"app{i}", "cat", "/mine").stdout == f"{i}\n"
    finally:
        stop.set()
        thread.join(120)
    assert not errors, errors
    time.sleep(0.1)
    assert_store_sound(pb, "prune racing builds")
