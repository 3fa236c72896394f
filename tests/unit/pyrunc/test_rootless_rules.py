"""pyrunc.rootless: runc's rules for a non-root caller, as plain values (no root needed)."""

from __future__ import annotations

import os
import stat

import pytest

from pyrunc import rootless
from pyrunc.errors import ConfigError, PyruncError
from pyrunc.namespaces import plan as ns_plan
from pyrunc.spec import IDMapping, Namespace


def m(c: int, h: int, n: int) -> IDMapping:
    return IDMapping(container_id=c, host_id=h, size=n)


@pytest.mark.parametrize("value,expected", [("auto", None), ("", None), ("true", True), ("TRUE", True),
                                            ("1", True), ("false", False), ("0", False)])
def test_parse_flag(value, expected):
    assert rootless.parse_flag(value) is expected


def test_parse_flag_rejects_other_words():
    with pytest.raises(PyruncError, match="--rootless: invalid value \"maybe\""):
        rootless.parse_flag("maybe")


def test_in_user_namespace():
    assert not rootless.in_user_namespace("         0          0 4294967295\n")
    assert rootless.in_user_namespace("         0       1001          1\n")
    assert rootless.in_user_namespace("0 0 1000\n1000 1000 4294966295\n")


@pytest.mark.parametrize("flag,systemd,euid,userns,expected", [
    ("auto", False, 1000, False, True),
    ("auto", False, 0, False, False),
    ("auto", False, 0, True, True),       # root of a user namespace
    ("auto", True, 1000, False, False),   # runc: systemd cgroups are never "rootless" in auto
    ("true", False, 0, False, True),
    ("false", False, 1000, False, False),
])
def test_rootless_cgroups(flag, systemd, euid, userns, expected):
    assert rootless.rootless_cgroups(flag, systemd, euid=euid, in_userns=userns) is expected


def test_honor_xdg_runtime_dir():
    assert rootless.honor_xdg_runtime_dir(euid=1000, in_userns=False, user="x")
    assert not rootless.honor_xdg_runtime_dir(euid=0, in_userns=False, user="x")
    assert rootless.honor_xdg_runtime_dir(euid=0, in_userns=True, user="alice")
    assert not rootless.honor_xdg_runtime_dir(euid=0, in_userns=True, user="root")


def test_plan_maps_own_id_is_direct():
    p = rootless.plan_maps((m(0, 1000, 1),), (m(0, 1000, 1),), euid=1000, egid=1000)
    assert p.direct
    assert p.uid_text == b"0 1000 1\n"


@pytest.mark.parametrize("uids,gids", [
    ((m(0, 1000, 1), m(1, 100000, 65536)), (m(0, 1000, 1),)),  # more ids: newuidmap
    ((m(0, 1000, 1),), (m(0, 1000, 1), m(1, 100000, 65536))),  # more gids: newgidmap
    ((m(0, 100000, 1),), (m(0, 1000, 1),)),                   # someone else's id
    ((m(0, 1000, 2),), (m(0, 1000, 1),)),
])
def test_plan_maps_anything_else_needs_the_helpers(uids, gids):
    p = rootless.plan_maps(uids, gids, euid=1000, egid=1000)
    assert not p.direct


def test_plan_maps_needs_maps():
    with pytest.raises(ConfigError, match="uidMappings: rootless container requires at least one UID mapping"):
        rootless.plan_maps((), (m(0, 1000, 1),), euid=1000, egid=1000)
    with pytest.raises(ConfigError, match="gidMappings: rootless container requires at least one GID mapping"):
        rootless.plan_maps((m(0, 1000, 1),), (), euid=1000, egid=1000)


def test_check_config_needs_a_user_namespace():
    with pytest.raises(ConfigError, match="rootless container requires user namespaces"):
        rootless.check_config(ns_plan((Namespace(type="pid"),)), (m(0, 1000, 1),), (m(0, 1000, 1),))


def test_helper_argv():
    assert rootless.helper_argv("newuidmap", 42, b"0 1000 1\n1 100000 65536\n") == \
        ["newuidmap", "42", "0", "1000", "1", "1", "100000", "65536"]


def test_default_root(monkeypatch):
    monkeypatch.setenv("XDG_RUNTIME_DIR", "/run/user/1000")
    monkeypatch.setattr(rootless, "honor_xdg_runtime_dir", lambda: True)
    assert rootless.default_root() == ("/run/user/1000/pyrunc", True)
    monkeypatch.setattr(rootless, "honor_xdg_runtime_dir", lambda: False)
    assert rootless.default_root() == ("/run/pyrunc", False)
    monkeypatch.setattr(rootless, "honor_xdg_runtime_dir", lambda: True)
    monkeypatch.delenv("XDG_RUNTIME_DIR")
    assert rootless.default_root() == ("/run/pyrunc", False)


def test_prepare_xdg_root_is_private_and_sticky(tmp_path):
    root = str(tmp_path / "xdg" / "pyrunc")
    rootless.prepare_xdg_root(root)
    assert stat.S_IMODE(os.stat(root).st_mode) == 0o700 | stat.S_ISVTX


def test_check_state_root(tmp_path):
    """A state root of another user, or one others may write, is refused."""
    d = tmp_path / "root"
    d.mkdir(mode=0o700)
    rootless.check_state_root(str(d), euid=0)  # root: not checked (runc)
    rootless.check_state_root(str(tmp_path / "absent"), euid=12345)  # claim() makes it, the caller's
    if os.geteuid() != 0:
        pytest.skip("chown to another uid needs root")
    os.chown(d, 12345, -1)
    rootless.check_state_root(str(d), euid=12345)
    with pytest.raises(PyruncError, match="owned by uid 12345, not by the caller"):
        rootless.check_state_root(str(d), euid=23456)
    d.chmod(0o770)
    with pytest.raises(PyruncError, match=r"writable by group or others \(mode 0770\)"):
        rootless.check_state_root(str(d), euid=12345)
