"""WORKDIR: set the working directory and create it (owned by the current
USER, as BuildKit does) if the image lacks it. An existing directory leaves
the diff empty, so the history entry is marked empty_layer."""

from __future__ import annotations

import posixpath

from pybuild.overlay import mount_overlay
from pybuild.dockerfile.instructions import WorkdirInstr
from pybuild.steps.contract import BuildEnv, Outcome, Prepared, StageState, with_container
from pybuild.steps.fs import makedirs_in_root
from pybuild.steps.users import resolve_user


def workdir_path(st: StageState, word: str) -> str:
    base = st.container.working_dir or "/"
    return posixpath.normpath(posixpath.join(base, word)) if word else base


class WorkdirStep:
    record = WorkdirInstr
    metadata_only = False

    def prepare(self, b: BuildEnv, st: StageState, ins: WorkdirInstr) -> Prepared:
        path = workdir_path(st, b.lex.process_word(ins.path, st.env()))
        return Prepared(text=f"WORKDIR {path}", extra={"user": st.container.user}, payload=path)

    def apply(self, b: BuildEnv, st: StageState, ins: WorkdirInstr, prep: Prepared) -> Outcome:
        path = prep.payload
        assert isinstance(path, str)
        config = with_container(st, working_dir=path)
        assert b.ensure_lowers is not None
        lowers = b.ensure_lowers(st)
        with mount_overlay(b.temp.new_dir("step"), list(reversed(lowers))) as ov:
            ids = resolve_user(ov.merged, st.container.user)
            makedirs_in_root(ov.merged, path, ids.uid, ids.gid, 0o755)
        return Outcome(config=config, created_by=f"WORKDIR {path}", diff=ov.upper, base_lowers=lowers)
