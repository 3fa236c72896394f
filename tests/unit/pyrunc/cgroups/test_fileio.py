"""Writer's all-or-nothing bookkeeping, on plain files standing in for cgroupfs."""

import pytest

from pyrunc.cgroups import fileio
from pyrunc.errors import CgroupError


def test_rollback_restores_in_reverse(tmp_path):
    a, b = tmp_path / "pids.max", tmp_path / "memory.limit_in_bytes"
    a.write_text("max\n")
    b.write_text("100\n")
    w = fileio.Writer()
    w.write(str(a), "5")
    w.write(str(b), "200")
    assert a.read_text() == "5" and b.read_text() == "200"
    w.rollback()
    assert a.read_text() == "max" and b.read_text() == "100"


def test_missing_file_names_it(tmp_path):
    with pytest.raises(CgroupError, match="cpu.rt_runtime_us: No such file or directory"):
        fileio.Writer().write(str(tmp_path / "cpu.rt_runtime_us"), "1")


@pytest.mark.parametrize("name,old,new,undo", [
    ("memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 3", "1", "0"),
    ("blkio.throttle.read_bps_device", "8:0 100", "8:0 5\n8:16 7", "8:16 0\n8:0 100"),
    ("blkio.throttle.write_iops_device", "", "8:0 5", "8:0 0"),
    ("io.max", "", "8:0 rbps=1", "8:0 rbps=max wbps=max riops=max wiops=max"),
    ("cpu.max", "max 100000", "5000 100000", "max 100000"),
])
def test_restore_values(name, old, new, undo):
    assert fileio._restore_value(name, old, new) == undo


def test_read_helpers(tmp_path):
    f = tmp_path / "memory.stat"
    f.write_text("cache 5\nrss 7\nbogus x\n")
    assert fileio.read_flat(str(f)) == {"cache": 5, "rss": 7}
    g = tmp_path / "pids.max"
    g.write_text("max\n")
    assert fileio.read_int(str(g), 9) == 9
    assert fileio.read_int(str(tmp_path / "missing"), 4) == 4
