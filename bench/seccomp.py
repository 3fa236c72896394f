"""Seccomp filter cost: Docker's default profile on x86_64.

Prints, for pyrunc's filter and for libseccomp's (through the PyPI package
`pyseccomp`, which wraps the system libseccomp) in its binary-tree layout (as
runc configures it for profiles of more than 32 syscalls) and in its linear
default: the filter length and the mean and worst number of instructions
executed per syscall over numbers 0–449 with zero arguments, counted by
pyrunc's BPF interpreter. Also the compile time of pyrunc's `prepare()`.

Usage: .venv/bin/python bench/seccomp.py [PROFILE.json]
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time

from pyrunc.seccomp import bpf, codegen, ruledb, profiles, rules
from pyrunc.seccomp.arches import ARCHES

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT = os.path.join(HERE, "..", "tests", "data", "seccomp", "docker-default.json")


def cost(program: list[bpf.Insn], audit: int) -> tuple[float, int]:
    steps = [bpf.run(program, bpf.seccomp_data(nr, audit))[1] for nr in range(450)]
    return statistics.fmean(steps), max(steps)


def main(path: str) -> None:
    arch = ARCHES["x86_64"]
    with open(path) as f:
        seccomp, field = profiles.load(json.load(f), arch)
    profile = rules.resolve(seccomp, field, arch)
    times = []
    for _ in range(20):
        start = time.perf_counter()
        program = codegen.generate(ruledb.build(profile), profile.default_action,
                                   libseccomp_tree=ruledb.libseccomp_tree_layout(profile))
        times.append(time.perf_counter() - start)
    rows = [("pyrunc", program)]
    try:
        from pyrunc.seccomp.reference import libseccomp_program

        rows.append(("libseccomp tree", bpf.decode(libseccomp_program(profile, binary_tree=True))))
        rows.append(("libseccomp linear", bpf.decode(libseccomp_program(profile, binary_tree=False))))
    except ImportError:
        print("pyseccomp not installed: libseccomp rows skipped", file=sys.stderr)
    print(f"profile: {os.path.basename(path)} on x86_64 (+x86, x32), syscalls 0-449, zero args")
    print(f"{'filter':<20}{'length':>8}{'mean':>8}{'worst':>7}")
    for name, prog in rows:
        mean, worst = cost(prog, arch.audit)
        print(f"{name:<20}{len(prog):>8}{mean:>8.2f}{worst:>7}")
    print(f"pyrunc compile (rules + code): median {statistics.median(times) * 1000:.1f} ms")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else DEFAULT)
