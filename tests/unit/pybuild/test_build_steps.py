"""Pure parts of the build steps: in-root path resolution, RUN --mount parsing,
history text formatting, COPY destination rules, mount-stub pruning."""

from __future__ import annotations

import os

import pytest

from pybuild.stubs import plan_stubs, prune_stubs
from pybuild.steps.copytree import dest_path
from pybuild.steps.fs import resolve_in_root
from pybuild.steps.metadata import _go_duration, go_q_list
from pybuild.steps.run_mounts import MountError, parse_mount


def test_resolve_in_root_clamps_and_follows(tmp_path):
    root = str(tmp_path)
    os.makedirs(tmp_path / "real" / "sub")
    os.symlink("/real", tmp_path / "abs")
    os.symlink("../../../../..", tmp_path / "real" / "up")
    os.symlink("loop2", tmp_path / "loop1")
    os.symlink("loop1", tmp_path / "loop2")
    assert resolve_in_root(root, "/abs/sub") == str(tmp_path / "real" / "sub")
    assert resolve_in_root(root, "/real/up/etc/passwd") == str(tmp_path / "etc" / "passwd")
    assert resolve_in_root(root, "/../../x") == str(tmp_path / "x")
    assert resolve_in_root(root, "/abs", follow_last=False) == str(tmp_path / "abs")
    assert resolve_in_root(root, "/missing/a/b") == str(tmp_path / "missing" / "a" / "b")
    with pytest.raises(Exception, match="too many levels"):
        resolve_in_root(root, "/loop1/x")


def test_parse_mount_kinds():
    m = parse_mount("type=cache,target=/root/.cache,id=pip,sharing=locked,mode=0700,uid=1")
    assert (m.type, m.target, m.id, m.sharing, m.mode, m.uid, m.readonly) == \
        ("cache", "/root/.cache", "pip", "locked", 0o700, 1, False)
    b = parse_mount("target=/src")
    assert b.type == "bind" and b.readonly
    assert not parse_mount("type=bind,target=/src,rw").readonly
    s = parse_mount("type=secret,id=tok")
    assert s.target == "/run/secrets/tok" and s.readonly
    assert parse_mount("type=secret,id=tok,env=TOKEN").target == ""
    t = parse_mount("type=tmpfs,dst=/t,size=10m")
    assert (t.target, t.size) == ("/t", "10m")


@pytest.mark.parametrize("bad", ["type=ssh,target=/x", "type=cache", "type=bind,target=/x,bogus=1",
                                 "type=cache,target=/x,sharing=maybe", "type=cache,target=/x,uid=abc",
                                 "type=secret,target=/x", "type=bind,target=/x,ro=perhaps"])
def test_parse_mount_rejects(bad):
    with pytest.raises(MountError):
        parse_mount(bad)


def test_history_formatting_matches_go():
    assert go_q_list(["/bin/sh", "-c", 'echo "hi"']) == '["/bin/sh" "-c" "echo \\"hi\\""]'
    assert _go_duration(30 * 10**9) == "30s"
    assert _go_duration(90 * 10**9) == "1m30s"
    assert _go_duration(3600 * 10**9) == "1h0m0s"
    assert _go_duration(0) == "0s"


def test_copy_dest_relative_to_workdir():
    assert dest_path("/abs", "/w") == "/abs"
    assert dest_path("rel", "/w") == "/w/rel"
    assert dest_path(".", "/w") == "/w/"
    assert dest_path("./", "/") == "/"


def test_plan_and_prune_mount_stubs(tmp_path):
    lower = tmp_path / "lower"
    upper = tmp_path / "upper"
    (lower / "etc").mkdir(parents=True)
    (lower / "etc" / "passwd").write_text("root")
    (lower / "run").mkdir()
    (lower / "var").mkdir()
    os.symlink("/run", lower / "var" / "run")          # a destination through an image symlink
    (lower / "data").mkdir()
    stubs = plan_stubs(str(lower), ["/etc/hosts", "/proc", "/var/run/secrets/tok", "/data", "/etc/passwd"])
    assert stubs == [("etc", "hosts"), ("proc",), ("run", "secrets"), ("run", "secrets", "tok")]
    # what the runtime and the step leave in the upper dir
    (upper / "etc").mkdir(parents=True)
    os.chmod(upper / "etc", os.stat(lower / "etc").st_mode)
    (upper / "etc" / "hosts").write_text("")          # stub: runtime-made empty file
    (upper / "proc").mkdir()                          # stub: runtime-made dir
    (upper / "run" / "secrets").mkdir(parents=True)   # stub chain for a secret
    os.chmod(upper / "run", os.stat(lower / "run").st_mode)
    (upper / "run" / "secrets" / "tok").write_text("")
    (upper / "data").mkdir()
    (upper / "data" / "keep").write_text("real")      # the step's own work
    prune_stubs(str(upper), [str(lower)], stubs)
    assert sorted(os.listdir(upper)) == ["data"]
    assert (upper / "data" / "keep").read_text() == "real"


def test_prune_never_follows_what_the_step_planted(tmp_path):
    """The step replaced a stub's parent with a symlink to a host dir holding an empty dir and an
    empty file of the stubs' names (issue 11 finding 2): nothing there may go."""
    lower, upper, host = tmp_path / "lower", tmp_path / "upper", tmp_path / "host"
    lower.mkdir()
    (host / "victim").mkdir(parents=True)
    (host / "tok").write_text("")
    stubs = plan_stubs(str(lower), ["/m/victim", "/s/tok"])
    assert stubs == [("m",), ("m", "victim"), ("s",), ("s", "tok")]
    upper.mkdir()
    os.symlink(str(host), upper / "m")                 # absolute
    os.symlink("../host", upper / "s")                  # relative
    (upper / "m2" / "victim").mkdir(parents=True)      # where the step moved the real stub
    prune_stubs(str(upper), [str(lower)], stubs)
    assert (host / "victim").is_dir() and (host / "tok").exists()
    assert os.path.islink(upper / "m") and os.path.islink(upper / "s")
    assert (upper / "m2" / "victim").is_dir()          # not a planned path: the step's own


def test_prune_keeps_what_the_step_wrote_into_a_stub(tmp_path):
    lower, upper = tmp_path / "lower", tmp_path / "upper"
    lower.mkdir()
    stubs = plan_stubs(str(lower), ["/a/b"])
    (upper / "a" / "b").mkdir(parents=True)
    (upper / "a" / "note").write_text("the step's")
    prune_stubs(str(upper), [str(lower)], stubs)
    assert sorted(os.listdir(upper / "a")) == ["note"]
