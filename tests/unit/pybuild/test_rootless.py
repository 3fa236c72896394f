"""pybuild.rootless's pure parts: the id maps, the subordinate ranges, where a user's store and
state go, which network a rootless step gets and how its config is adapted (issue 19)."""

from __future__ import annotations

import pytest

from pybuild import cli, rootless


def test_plan_maps_puts_the_user_at_0_and_the_ranges_after():
    assert rootless.plan_maps(1000, [(100000, 65536)]) == ["0", "1000", "1", "1", "100000", "65536"]
    assert rootless.plan_maps(5, [(10, 2), (50, 3)]) == ["0", "5", "1", "1", "10", "2", "3", "50", "3"]


def test_subordinate_ranges_by_name_or_uid_and_bad_lines_ignored():
    text = "alice:100000:65536\nbob:200000:10\n1001:300000:5\nalice:x:1\nalice:400000:0\n\n"
    assert rootless.subordinate_ranges(text, "alice", 1000) == [(100000, 65536)]
    assert rootless.subordinate_ranges(text, "carol", 1001) == [(300000, 5)]
    assert rootless.subordinate_ranges(text, "dave", 9) == []


def test_missing_ranges_name_the_file_and_the_fix(tmp_path):
    f = tmp_path / "subuid"
    f.write_text("someone:100000:65536\n")
    with pytest.raises(rootless.RootlessError, match=r"no subordinate ids for alice in .*subuid .*usermod --add-subuids"):
        rootless._ranges(str(f), "alice", 1000)


def test_store_and_state_dirs(monkeypatch):
    monkeypatch.setattr(rootless, "honor_xdg", lambda: True)
    monkeypatch.setenv("HOME", "/home/alice")
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    assert rootless.default_store() == "/home/alice/.local/share/pybuild"
    monkeypatch.setenv("XDG_DATA_HOME", "/data")
    assert rootless.default_store() == "/data/pybuild"
    monkeypatch.setenv("XDG_RUNTIME_DIR", "/run/user/1000")
    assert rootless.runtime_dir("runtime", "/run/pybuild/runtime") == "/run/user/1000/pybuild/runtime"
    monkeypatch.delenv("XDG_RUNTIME_DIR")
    with pytest.raises(rootless.RootlessError, match="XDG_RUNTIME_DIR is not set"):
        rootless.runtime_dir("runtime", "/run/pybuild/runtime")
    monkeypatch.setattr(rootless, "honor_xdg", lambda: False)
    assert rootless.default_store() == "/var/lib/pybuild"
    assert rootless.runtime_dir("runtime", "/run/pybuild/runtime") == "/run/pybuild/runtime"


def test_network_and_spec_adaptation(monkeypatch):
    monkeypatch.setattr(rootless, "active", lambda: True)
    assert rootless.default_network() == "host"
    with pytest.raises(rootless.RootlessError, match="bridge needs root"):
        rootless.check_network("bridge")
    spec = {"mounts": [{"destination": "/sys", "type": "sysfs", "source": "sysfs"},
                       {"destination": "/proc", "type": "proc", "source": "proc"}],
            "linux": {"cgroupsPath": "/pybuild/x"}}
    out = rootless.adapt_spec(spec, "host")
    assert out["mounts"][0] == rootless.SYS_RBIND and out["mounts"][1]["type"] == "proc"
    assert "cgroupsPath" not in out["linux"]
    spec = {"mounts": [{"destination": "/sys", "type": "sysfs", "source": "sysfs"}], "linux": {}}
    assert rootless.adapt_spec(spec, "none")["mounts"][0]["type"] == "sysfs"  # own netns: sysfs is allowed
    monkeypatch.setattr(rootless, "active", lambda: False)
    assert rootless.default_network() == "bridge"
    spec = {"mounts": [{"destination": "/sys", "type": "sysfs"}], "linux": {"cgroupsPath": "/p"}}
    assert rootless.adapt_spec(spec, "host") == {"mounts": [{"destination": "/sys", "type": "sysfs"}],
                                                 "linux": {"cgroupsPath": "/p"}}


@pytest.mark.parametrize("argv,verb", [
    (["-t", "x", "."], "build"), (["--root", "/s", "images"], "images"), (["--root=/s", "parse", "F"], "parse"),
    (["--runtime", "crun", "--root", "/s", "-t", "x", "."], "build"), (["--help"], "--help"), ([], None),
])
def test_the_verb_decides_whether_to_enter_the_namespace(argv, verb):
    assert cli._verb(argv) == verb


def test_no_user_namespaces_is_one_line_and_the_helper_is_reaped(monkeypatch):
    import errno
    import os

    from pyrunc import syscalls

    def refuse(flags):
        raise OSError(errno.EPERM, os.strerror(errno.EPERM))

    monkeypatch.setattr(syscalls, "unshare", refuse)
    with pytest.raises(rootless.RootlessError, match=r"^rootless: cannot create a user namespace: Operation not "
                                                     r"permitted \(unprivileged user namespaces disabled\?"):
        rootless._unshare_and_map({"newuidmap": "/bin/false", "newgidmap": "/bin/false"}, [], [])
    with pytest.raises(ChildProcessError):
        os.waitpid(-1, os.WNOHANG)  # the helper was waited for


def test_userns_overlay_refusal_names_the_kernel_feature(monkeypatch, tmp_path):
    import errno
    import os

    from pybuild import overlay
    from pyrunc import syscalls

    def refuse(*args):
        raise OSError(errno.EINVAL, os.strerror(errno.EINVAL))

    monkeypatch.setattr(rootless, "active", lambda: True)
    monkeypatch.setattr(syscalls, "mount", refuse)
    lower = tmp_path / "lower"
    lower.mkdir()
    with pytest.raises(overlay.OverlayError, match=r"Invalid argument \(rootless: overlay in a user namespace "
                                                   r"needs Linux >= 5.11 with userxattr\)"):
        with overlay.mount_overlay(str(tmp_path / "ov"), [str(lower)]):
            pass
    assert overlay._opts().endswith(",userxattr") and "redirect_dir=nofollow" in overlay._opts()


def test_ids_in_map():
    text = "         0       1000          1\n         1     100000      65536\n"
    assert rootless.ids_in_map(text) == [range(0, 1), range(1, 65537)]
    assert rootless.ids_in_map("") == []
