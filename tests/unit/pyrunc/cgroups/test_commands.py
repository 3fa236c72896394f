"""Pure parts of the cgroup commands: update's flags, events' intervals, ps filtering."""

import pytest

from pyrunc.errors import ConfigError, PyruncError
from pyrunc.events import parse_duration
from pyrunc.ps import filter_ps
from pyrunc.update import parse_bytes, resources_from_flags


@pytest.mark.parametrize("text,value", [("1024", 1024), ("64m", 64 << 20), ("1g", 1 << 30), ("2GB", 2 << 30),
                                        ("512KiB", 512 << 10), ("-1", -1), ("1.5k", 1536)])
def test_parse_bytes(text, value):
    assert parse_bytes(text, "--memory") == value


@pytest.mark.parametrize("text", ["lots", "", "1x", "-5"])
def test_parse_bytes_bad(text):
    with pytest.raises(ConfigError, match="--memory: invalid size"):
        parse_bytes(text, "--memory")


def test_resources_from_flags():
    res = resources_from_flags({"memory": "64m", "memory_swap": "-1", "memory_reservation": None,
                                "cpu_share": 256, "cpu_quota": 20000, "cpu_period": None, "cpuset_cpus": "0",
                                "pids_limit": 7, "blkio_weight": 300})
    assert res == {"memory": {"limit": 64 << 20, "swap": -1},
                   "cpu": {"shares": 256, "quota": 20000, "cpus": "0"},
                   "pids": {"limit": 7}, "blockIO": {"weight": 300}}
    assert resources_from_flags({}) == {}


@pytest.mark.parametrize("text,seconds", [("5s", 5.0), ("100ms", 0.1), ("1m30s", 90.0), ("1.5s", 1.5),
                                          ("2h", 7200.0)])
def test_parse_duration(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["5", "s", "", "5x", "0s", "1s2"])
def test_parse_duration_bad(text):
    with pytest.raises(PyruncError, match="invalid --interval"):
        parse_duration(text)


PS = """UID        PID  PPID  C STIME TTY          TIME CMD
root         1     0  0 05:00 ?        00:00:01 /sbin/init
root       400     1  0 05:01 ?        00:00:00 sleep 100
root       401   400  0 05:01 ?        00:00:00 sh -c x
"""


def test_filter_ps():
    assert filter_ps(PS, [400, 401]) == "\n".join(PS.splitlines()[0:1] + PS.splitlines()[2:4]) + "\n"
    assert filter_ps(PS, []) == PS.splitlines()[0] + "\n"


def test_filter_ps_needs_pid_column():
    with pytest.raises(PyruncError, match="PID field"):
        filter_ps("USER COMMAND\nroot x\n", [1])
