"""RUN: execute a command in a container on the stage's overlay; the upper
dir is the step's diff.

Shell form runs through the image's SHELL (default `/bin/sh -c`); exec form
runs as given; a lone heredoc (`RUN <<EOF`) is the script itself (a `#!` line
makes it an executable file), and heredocs feeding a command are passed to
the shell with their bodies, as BuildKit does. ARG values and proxy build
args are in the process environment but never in the image config; ENV wins
over ARG. The history line is BuildKit's: `RUN |N A=1 … /bin/sh -c cmd # buildkit`.
"""

from __future__ import annotations

import contextlib
import os
import secrets as _secrets

from pybuild import runtime as rt
from pybuild.dockerfile.instructions import InlineFile, RunInstr
from pybuild.errors import InstructionError, StepFailed
from pybuild.overlay import mount_overlay
from pybuild.stubs import plan_stubs, prune_stubs
from pybuild.steps.contract import BuildEnv, Outcome, Prepared, StageState
from pybuild.steps.run_mounts import MountEnv, parse_mount, prepare as prepare_mounts
from pybuild.steps.users import resolve_user

_SCRIPT_DIR = "/.pybuild-heredoc"


def _heredoc_only(ins: RunInstr) -> bool:
    if not ins.files or not ins.prepend_shell or len(ins.cmd) != 1:
        return False
    return ins.cmd[0].strip().startswith("<<") and len(ins.files) == 1


def _heredoc_body(doc: InlineFile) -> str:
    if doc.chomp:
        from pybuild.dockerfile.heredocs import chomp_heredoc

        return chomp_heredoc(doc.data)
    return doc.data


def command_args(st: StageState, ins: RunInstr) -> tuple[list[str], str | None]:
    """(argv, heredoc script to place at _SCRIPT_DIR/script or None)."""
    shell = list(st.container.shell or ("/bin/sh", "-c"))
    if not ins.prepend_shell:
        if not ins.cmd:
            raise InstructionError("RUN requires at least one argument")
        return list(ins.cmd), None
    if _heredoc_only(ins):
        body = _heredoc_body(ins.files[0])
        if body.startswith("#!"):
            return [f"{_SCRIPT_DIR}/script"], body
        return shell + [body], None
    if not ins.cmd or not ins.cmd[0].strip():
        raise InstructionError("RUN requires at least one argument")
    cmdline = ins.cmd[0]
    for doc in ins.files:
        cmdline += "\n" + doc.data + doc.name
    return shell + [cmdline], None


def history_text(st: StageState, argv: list[str]) -> str:
    """BuildKit's runCommandString: `|N K=V …` for every ARG declared in the
    stage (an ENV of the same name shows its value; an unset one shows empty), then argv."""
    env = st.container.env_dict()
    pairs = [f"{k}={env.get(k, v if v is not None else '')}" for k, v in st.args.items()]
    prefix = [f"|{len(pairs)}", *pairs] if pairs else []
    return "RUN " + " ".join(prefix + argv) + " # buildkit"


class RunStep:
    record = RunInstr
    metadata_only = False

    def prepare(self, b: BuildEnv, st: StageState, ins: RunInstr) -> Prepared:
        argv, script = command_args(st, ins)
        if ins.devices:
            raise InstructionError("RUN --device is not supported by pybuild")
        if ins.security != "sandbox":
            raise InstructionError(f"RUN --security={ins.security}: only sandbox is supported")
        env = st.env()
        mounts = [parse_mount(b.lex.process_word(m, env)) for m in ins.mounts]
        network = ins.network
        # The key covers what the command is and how it sees the world, never a
        # secret's content (only its id, which is in the instruction text).
        extra = {"argv": argv, "script": script, "network": network, "user": st.container.user,
                 "cwd": st.container.working_dir, "mounts": [repr(m) for m in mounts]}
        # What a bind mount shows is an input too: another stage's (or image's) content,
        # or the context files below its source.
        for m in mounts:
            if m.type != "bind":
                continue
            if m.from_:
                assert b.key_of is not None
                extra.setdefault("bind_from", []).append(b.key_of(m.from_))
            else:
                extra.setdefault("bind_context", []).append(b.context.digest(b.context.resolve(m.source or ".")).digest)
        return Prepared(text=ins.original, extra=extra, payload=(argv, script, mounts, network))

    def apply(self, b: BuildEnv, st: StageState, ins: RunInstr, prep: Prepared) -> Outcome:
        assert isinstance(prep.payload, tuple)
        argv, script, mounts, network = prep.payload
        assert b.ensure_lowers is not None
        lowers = b.ensure_lowers(st)
        network = b.network if network == "default" else network
        config = st.container
        with contextlib.ExitStack() as stack:
            ov = stack.enter_context(mount_overlay(b.temp.new_dir("step"), list(reversed(lowers))))
            ids = resolve_user(ov.merged, config.user)
            if config.user:
                from pybuild.rootless import check_mapped

                check_mapped(ids.uid, ids.gid, f"USER {config.user}")
            menv = MountEnv(store_root=b.store.root, temp_dir=b.temp.new_dir,
                            context_lowers=lambda sub: _context_lowers(b, sub),
                            from_lowers=lambda name: list(reversed(b.lowers_of(name))) if b.lowers_of else [],
                            secrets=b.secrets, workdir=config.working_dir or "/")
            prepared = prepare_mounts(mounts, menv, stack)
            extra_mounts = list(prepared.mounts)
            destinations = list(rt.SYSTEM_MOUNTS) + prepared.destinations
            env = [f"{k}={v}" for k, v in b.proxy_env.items()]
            env += [f"{k}={v}" for k, v in st.arg_values().items() if k not in config.env_dict()]
            env += list(config.env) + prepared.env
            if not any(e.startswith("HOME=") for e in env):
                env.append(f"HOME={ids.home}")   # as docker: the user's passwd home, "/" if none
            ca = rt.host_ca_mount(ov.merged, b.host_ca)
            if ca is not None:
                extra_mounts.append(ca)
                destinations.append(ca["destination"])
                env = rt.with_ca_env(env)
            if script is not None:
                sdir = b.temp.new_dir("script")
                os.mkdir(sdir, 0o755)
                with open(os.path.join(sdir, "script"), "w", encoding="utf-8", errors="surrogateescape") as fh:
                    fh.write(script)
                os.chmod(os.path.join(sdir, "script"), 0o755)
                extra_mounts.append({"destination": _SCRIPT_DIR, "type": "bind", "source": sdir,
                                     "options": ["rbind", "ro"]})
                destinations.append(_SCRIPT_DIR)
            spec = rt.ContainerSpec(rootfs=ov.merged, args=argv, env=env, cwd=config.working_dir or "/",
                                    uid=ids.uid, gid=ids.gid, additional_gids=ids.additional_gids,
                                    network=network, mounts=extra_mounts)
            stubs = plan_stubs(ov.merged, destinations)  # before the step can move anything
            cid = f"pybuild-{os.getpid()}-{_secrets.token_hex(4)}"
            spec = stack.enter_context(rt.network(spec, cid))
            bundle = rt.write_bundle(b.temp.new_dir("bundle"), spec)
            stack.callback(_remove, bundle)
            code = rt.run_container(b.runtime, os.path.join(b.temp.path, "runtime"), bundle, cid,
                                    b.progress.output)
        if code != 0:
            b.progress.failed()
            text = " ".join(ins.original.split())
            if len(text) > 80:
                text = text[:77] + "..."
            raise StepFailed(f"{b.dockerfile}:{ins.line}: {text}: exit code {code}", ins.line, code)
        prune_stubs(ov.upper, list(reversed(lowers)), stubs)
        return Outcome(config=st.config, created_by=history_text(st, argv), diff=ov.upper, base_lowers=lowers)


def _remove(path: str) -> None:
    from pybuild.overlay import remove_tree

    remove_tree(path)


def _context_lowers(b: BuildEnv, sub: str) -> list[str]:
    """A bind mount of the build context shows only what .dockerignore lets
    through: a hard-linked (or copied) filtered view of `sub`."""
    import shutil

    sources = b.context.resolve(sub)
    view = b.temp.new_dir("ctxview")
    os.mkdir(view, 0o755)
    for source in sources:
        if not source.is_dir:
            _link_or_copy(source.path, os.path.join(view, os.path.basename(source.rel)))
            continue
        cut = 0 if source.rel == "." else len(source.rel) + 1
        for rel, host, st in b.context.entries(source):
            target = os.path.join(view, rel[cut:])
            os.makedirs(os.path.dirname(target), exist_ok=True)
            if os.path.isdir(host) and not os.path.islink(host):
                os.makedirs(target, exist_ok=True)
                shutil.copystat(host, target)
            elif os.path.islink(host):
                os.symlink(os.readlink(host), target)
            else:
                _link_or_copy(host, target)
    return [view]


def _link_or_copy(src: str, dst: str) -> None:
    import shutil

    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)
