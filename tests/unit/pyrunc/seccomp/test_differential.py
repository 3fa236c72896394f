"""pyrunc's filter and libseccomp 2.5's filter (through pyseccomp, as runc builds
it) must give every call the same action. Both programs run in pyrunc's BPF
interpreter on (arch, syscall number, arguments) tuples."""

from __future__ import annotations

import random

import pytest

pytest.importorskip("pyseccomp")

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from pyrunc.seccomp import profiles  # noqa: E402
from pyrunc.seccomp.arches import ARCHES  # noqa: E402

from .oracle import both, disagreements, interesting_values, load_profile, without_newer_names  # noqa: E402

PROFILES = ["docker-default.json", "containers-common-seccomp.json"]
NATIVES = ["x86_64", "aarch64", "riscv64", "s390x", "ppc64le"]
CAPS = [None, ["CAP_SYS_ADMIN", "CAP_SYS_PTRACE", "CAP_SYS_BOOT", "CAP_BPF", "CAP_PERFMON",
               "CAP_SYS_MODULE", "CAP_SYSLOG", "CAP_SYS_NICE", "CAP_SYS_PACCT", "CAP_SYS_RAWIO",
               "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_SYS_RESOURCE", "CAP_DAC_READ_SEARCH",
               "CAP_NET_ADMIN"]]


@pytest.mark.parametrize("caps", CAPS, ids=["docker-caps", "many-caps"])
@pytest.mark.parametrize("native", NATIVES)
@pytest.mark.parametrize("name", PROFILES)
def test_shared_profiles_agree(name: str, native: str, caps: list[str] | None) -> None:
    arch = ARCHES[native]
    oci, _ = profiles.load_any(load_profile(name), arch, caps, kernel=(6, 1))
    profile, mine, theirs = both(without_newer_names(oci), arch)
    values = interesting_values(profile)
    rng = random.Random(f"{name}{native}")
    arg_sets = [()] + [tuple(rng.choice(values) for _ in range(6)) for _ in range(5)]
    # every number with zero and random args, then every interesting value in each slot
    bad = disagreements(profile, mine, theirs, arg_sets)
    slot_sets = [tuple(v if i == slot else 0 for i in range(6)) for slot in range(6) for v in values]
    hot = {a.name: sorted({n for n in range(0, 560) for a2 in [a] if _has_args(profile, a2, n)})
           for a in profile.arches}
    bad += disagreements(profile, mine, theirs, slot_sets, hot)
    assert bad == [], f"{len(bad)} disagreements, first: {bad[:5]}"
    assert len(mine) < len(theirs)


def _has_args(profile, arch, nr) -> bool:  # type: ignore[no-untyped-def]
    names = {n for r in profile.rules if r.args for n in r.names}
    names |= {"socketcall", "ipc"}
    return any(arch.number(n) == nr for n in names)


@pytest.mark.parametrize("kernel", [(4, 4), (5, 8), (6, 1)])
def test_docker_min_kernel_variants_agree(kernel: tuple[int, int]) -> None:
    arch = ARCHES["x86_64"]
    oci, _ = profiles.load_any(load_profile("docker-default.json"), arch, None, kernel=kernel)
    profile, mine, theirs = both(without_newer_names(oci), arch)
    assert disagreements(profile, mine, theirs, [(), (1 << 32,) * 6]) == []


CAP_POOL = ["CAP_SYS_ADMIN", "CAP_SYS_PTRACE", "CAP_SYS_BOOT", "CAP_BPF", "CAP_PERFMON",
            "CAP_SYS_MODULE", "CAP_SYSLOG", "CAP_SYS_NICE", "CAP_SYS_PACCT", "CAP_SYS_RAWIO",
            "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_DAC_READ_SEARCH", "CAP_NET_ADMIN",
            "CAP_SYS_CHROOT", "CAP_KILL"]


@settings(max_examples=25, deadline=None)
@given(name=st.sampled_from(PROFILES), native=st.sampled_from(NATIVES),
       caps=st.lists(st.sampled_from(CAP_POOL), unique=True),
       kernel=st.sampled_from([(3, 10), (4, 8), (5, 4), (6, 18)]))
def test_shared_profiles_with_any_caps_agree(name: str, native: str, caps: list[str],
                                            kernel: tuple[int, int]) -> None:
    arch = ARCHES[native]
    oci, _ = profiles.load_any(load_profile(name), arch, caps, kernel=kernel)
    profile, mine, theirs = both(without_newer_names(oci), arch)
    values = interesting_values(profile)
    arg_sets = [()] + [tuple(v if i == slot else 0 for i in range(6)) for slot in (0, 1) for v in values]
    hot = {a.name: sorted(n for n in range(0, 560) if _has_args(profile, a, n)) for a in profile.arches}
    assert disagreements(profile, mine, theirs, [()]) == []
    assert disagreements(profile, mine, theirs, arg_sets, hot) == []
