"""`pybuild build` (also `pybuild -t NAME .`): the click front of builder.build.

Only flag parsing lives here; `--root` and `--runtime` come from the group
(ctx.obj). The image ID goes to stdout, progress to stderr.
"""

from __future__ import annotations

import os

import click

from pybuild import rootless
from pybuild.errors import PybuildError


def _pairs(values: tuple[str, ...], flag: str, allow_bare_env: bool = False) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in values:
        key, eq, value = item.partition("=")
        if not key:
            raise PybuildError(f"{flag} {item!r}: expected KEY=VALUE")
        if not eq:
            if not allow_bare_env:
                raise PybuildError(f"{flag} {item!r}: expected KEY=VALUE")
            if key not in os.environ:
                continue  # docker: `--build-arg NAME` takes NAME from the environment, if set
            value = os.environ[key]
        out[key] = value
    return out


def _secrets(values: tuple[str, ...], stash: list[str]) -> dict[str, str]:
    """`--secret id=NAME,src=FILE` (or `env=VAR`) → {id: host file}."""
    out: dict[str, str] = {}
    for item in values:
        fields = dict(f.partition("=")[::2] for f in item.split(","))
        sid = fields.get("id")
        src = fields.get("src") or fields.get("source")
        env = fields.get("env")
        if not sid:
            raise PybuildError(f"--secret {item!r}: id= is required")
        if src:
            if not os.path.isfile(src):
                raise PybuildError(f"--secret id={sid}: {src}: no such file")
            out[sid] = os.path.abspath(src)
        else:
            var = env or sid
            if var not in os.environ:
                raise PybuildError(f"--secret id={sid}: neither src= nor the environment variable {var} is set")
            import tempfile

            fd, path = tempfile.mkstemp(prefix="pybuild-secret-")
            with os.fdopen(fd, "w") as fh:
                fh.write(os.environ[var])
            stash.append(path)
            out[sid] = path
    return out


def private_mount_namespace() -> None:
    """Give this build process its own mount namespace (host mounts still
    propagate in; ours never propagate out). Every overlay, bind and runtime
    mount of the build then lives and dies with the build: a SIGKILLed build
    leaves no mount behind, and no other tool sweeping the host's mount table
    can unmount a step's rootfs under it. Must run before any thread starts."""
    from pyrunc import syscalls

    try:
        syscalls.unshare(syscalls.CLONE_NEWNS)
        syscalls.mount(None, "/", None, syscalls.MS_REC | syscalls.MS_SLAVE)
    except OSError as err:
        raise PybuildError(f"unshare mount namespace: {err.strerror} (pybuild build needs root)") from None


class Terminated(PybuildError):
    exit_code = 143


class _Stop(BaseException):
    """Raised from the signal handler; a BaseException (like KeyboardInterrupt)
    so no step mistakes it for its own error while the stack unwinds."""


def _stop_on_signals() -> None:
    """SIGTERM/SIGHUP unwind like Ctrl-C: the running step's container is
    stopped and deleted, mounts and temp dirs removed, and nothing is tagged."""
    import signal

    def stop(signum: int, _frame: object) -> None:
        raise _Stop(f"build stopped by {signal.Signals(signum).name}")

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, stop)


@click.command("build")
@click.argument("context", default=".", type=click.Path(file_okay=False))
@click.option("-t", "--tag", "tags", multiple=True, help="Name (and tag) for the image; repeatable.")
@click.option("-f", "--file", "dockerfile", default=None, help="Dockerfile path (default CONTEXT/Dockerfile).")
@click.option("--build-arg", "build_args", multiple=True, help="KEY=VALUE for an ARG; repeatable.")
@click.option("--target", default="", help="Build up to this stage.")
@click.option("--no-cache", is_flag=True, help="Do not use cached steps.")
@click.option("--iidfile", default=None, help="Write the image ID to this file.")
@click.option("-q", "--quiet", is_flag=True, help="Print only the image ID.")
@click.option("--label", "labels", multiple=True, help="KEY=VALUE label on the final image; repeatable.")
@click.option("--secret", "secrets", multiple=True, help="id=NAME,src=FILE for RUN --mount=type=secret.")
@click.option("--network", default="default", show_default="bridge; host for a user (rootless)",
              type=click.Choice(["bridge", "host", "none", "default"]),
              help="Network for RUN steps (a RUN --network flag overrides it).")
@click.option("-o", "--output", "outputs", multiple=True,
              help="type=local|tar|oci|docker,dest=PATH (besides tagging into the store).")
@click.option("--compression", default="gzip", type=click.Choice(["gzip", "zstd"]), help="Layer compression.")
@click.option("--explain-cache", is_flag=True, help="Say what changed for every step that misses the cache.")
@click.option("--progress", default="auto", type=click.Choice(["auto", "plain", "tty", "quiet"]))
@click.option("--host-ca/--no-host-ca", default=True, show_default=True,
              help="Mount the host CA bundle into RUN steps of images that have /etc/ssl/certs.")
@click.option("--cache-from", "cache_from", multiple=True, metavar="SPEC",
              help="Import a build cache: type=registry,ref=R or type=local,src=DIR.")
@click.option("--cache-to", "cache_to", multiple=True, metavar="SPEC",
              help="Export the build cache: type=registry,ref=R or type=local,dest=DIR "
                   "[,mode=min|max][,mounts=true to carry RUN --mount=type=cache contents].")
@click.option("--timestamp", default=None, type=click.IntRange(min=0), metavar="EPOCH",
              help="Reproducible image: like SOURCE_DATE_EPOCH (created times fixed, newer mtimes clamped).")
@click.option("--pull", "pull", default="missing", type=click.Choice(["missing", "always", "never"]),
              help="Pull FROM images: when missing from the store (default), always, or never.")
@click.option("--tls-verify", "tls_verify", default=None, type=click.BOOL,
              help="Verify TLS of registries (default: yes, except localhost/127.0.0.1).")
@click.option("--authfile", default=None, help="Registry credentials file (else $REGISTRY_AUTH_FILE, ...).")
@click.pass_context
def build(ctx: click.Context, context: str, tags: tuple[str, ...], dockerfile: str | None,
          build_args: tuple[str, ...], target: str, no_cache: bool, iidfile: str | None, quiet: bool,
          labels: tuple[str, ...], secrets: tuple[str, ...], network: str, outputs: tuple[str, ...],
          compression: str, explain_cache: bool, progress: str, host_ca: bool, pull: str,
          tls_verify: bool | None, authfile: str | None, timestamp: int | None,
          cache_from: tuple[str, ...], cache_to: tuple[str, ...]) -> None:
    """Build an image from a Dockerfile and a context directory."""
    from pybuild.builder import BuildOptions
    from pybuild.builder import build as run_build

    if not os.path.isdir(context):
        raise PybuildError(f"build context {context}: not a directory")
    rootless.check_network(network)  # before the cache could hide that no RUN step can have it
    stash: list[str] = []
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    try:
        opts = BuildOptions(
            context_dir=context, root=ctx.obj["root"], runtime=ctx.obj["runtime"], dockerfile=dockerfile,
            tags=list(tags), build_args=_pairs(build_args, "--build-arg", allow_bare_env=True), target=target,
            no_cache=no_cache, labels=_pairs(labels, "--label"), secrets=_secrets(secrets, stash),
            network=rootless.default_network() if network == "default" else network, outputs=list(outputs),
            compression=compression, explain_cache=explain_cache,
            progress="quiet" if quiet else progress, iidfile=iidfile, host_ca=host_ca,
            source_date_epoch=timestamp if timestamp is not None else int(epoch) if epoch and epoch.isdigit()
            else None,
            pull=pull, tls_verify=tls_verify, authfile=authfile, cache_from=list(cache_from),
            cache_to=list(cache_to))
        if cache_from or cache_to:
            from pybuild.cache_transfer import parse_spec
            for spec in cache_from:
                parse_spec(spec, "--cache-from")
            for spec in cache_to:
                parse_spec(spec, "--cache-to")
        from pybuild.sandbox import BuildSandbox

        sandbox = BuildSandbox(opts.root)
        sandbox.enter()  # its mounts and every process it starts die with this build (issue 11)
        _stop_on_signals()
        try:
            run_build(opts)
        except _Stop as stop:
            raise Terminated(str(stop)) from None
        finally:
            sandbox.finish()
    finally:
        for path in stash:
            os.unlink(path)
