"""Registry verbs of the pybuild CLI: pull, push, login, logout.

Options shared with podman/skopeo: --tls-verify=false (any host: https without verification, then plain
http), --authfile FILE (else $REGISTRY_AUTH_FILE, podman's auth.json, ~/.docker/config.json),
--creds USER[:PASSWORD]. Only these commands (and a build that pulls a FROM image or moves a cache)
import pybuild.registry and with it urllib3.
"""

from __future__ import annotations

import getpass
import sys

import click

from pybuild.errors import PybuildError

_BOOL = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


def _tls(value: str | None) -> bool | None:
    if value is None:
        return None
    try:
        return _BOOL[value.lower()]
    except KeyError:
        raise PybuildError(f"--tls-verify={value}: expected true or false") from None


def tls_option(f):  # type: ignore[no-untyped-def]
    f = click.option("--tls-verify", "tls_verify", default=None, metavar="BOOL",
                     help="Verify TLS (default: yes, except for localhost/127.0.0.1 registries, which may "
                          "also be plain HTTP); false: skip verification and allow plain HTTP.")(f)
    f = click.option("--authfile", default=None, help="Credentials file (podman auth.json / docker config.json).")(f)
    return f


def make_transport(tls_verify: str | bool | None, authfile: str | None, creds: str | None = None,
                   host: str | None = None):  # type: ignore[no-untyped-def]
    from pybuild.registry.authfile import Credentials
    from pybuild.registry.transport import Transport

    given = {}
    if creds:
        user, _, password = creds.partition(":")
        if not user:
            raise PybuildError("--creds: expected USER[:PASSWORD]")
        if not _:
            password = getpass.getpass(f"Password for {user}: ")
        given = {host: Credentials(user, password)} if host else {}
    verify = tls_verify if isinstance(tls_verify, bool) or tls_verify is None else _tls(tls_verify)
    return Transport(tls_verify=verify, authfile_path=authfile, credentials=given)


def _store(ctx: click.Context):  # type: ignore[no-untyped-def]
    from pybuild.store import Store
    return Store(ctx.obj["root"])


@click.command("pull")
@click.argument("image")
@click.option("--platform", default=None, help="os/arch[/variant] to pick from a multi-platform image.")
@click.option("-q", "--quiet", is_flag=True, help="Print only the image ID.")
@click.option("--creds", default=None, help="USER[:PASSWORD] for the registry.")
@click.option("--no-unpack", "no_unpack", is_flag=True,
              help="Only store the blobs (as skopeo copy); the first build or run FROM the image unpacks them.")
@tls_option
@click.pass_context
def pull(ctx: click.Context, image: str, platform: str | None, quiet: bool, creds: str | None, no_unpack: bool,
         tls_verify: str | None, authfile: str | None) -> None:
    """Pull an image from a registry into the store (by tag or @digest) and unpack its layers."""
    from pybuild.registry import reference
    from pybuild.registry.progress import TransferProgress
    from pybuild.registry.pull import pull as do_pull

    ref = reference.parse(image)
    transport = make_transport(tls_verify, authfile, creds, ref.api_host)
    try:
        pulled = do_pull(_store(ctx), image, transport, platform=platform,
                         progress=TransferProgress("quiet" if quiet else "auto"), unpack=not no_unpack)
    except PybuildError as err:
        raise labelled(err, f"pull {ref}") from None
    finally:
        transport.close()
    click.echo(pulled.id)


@click.command("push")
@click.argument("name")
@click.argument("dest", required=False)
@click.option("--creds", default=None, help="USER[:PASSWORD] for the registry.")
@click.option("--chunk-size", default=None, metavar="BYTES",
              help="Upload blobs larger than this in resumable chunks of this size (0: always one PUT; "
                   "default 64MiB).")
@click.option("--digestfile", default=None, help="Write the pushed manifest digest to this file.")
@click.option("-q", "--quiet", is_flag=True, help="Print only the manifest digest.")
@tls_option
@click.pass_context
def push(ctx: click.Context, name: str, dest: str | None, creds: str | None, chunk_size: str | None,
         digestfile: str | None, quiet: bool, tls_verify: str | None, authfile: str | None) -> None:
    """Push an image from the store to a registry (DEST defaults to NAME)."""
    from pybuild.registry import reference
    from pybuild.registry.progress import TransferProgress
    from pybuild.registry.push import DEFAULT_CHUNK
    from pybuild.registry.push import push as do_push

    ref = reference.parse(dest or name)
    size = DEFAULT_CHUNK if chunk_size is None else parse_size(chunk_size, "--chunk-size")
    transport = make_transport(tls_verify, authfile, creds, ref.api_host)
    try:
        digest = do_push(_store(ctx), name, dest, transport, progress=TransferProgress("quiet" if quiet else "auto"),
                         chunk_size=size)
    except PybuildError as err:
        raise labelled(err, f"push {name} to {ref}") from None
    finally:
        transport.close()
    if digestfile:  # as --iidfile: replaced atomically, never written through a planted link
        from pyrunc.fsutil import atomic_write

        try:
            atomic_write(digestfile, digest.encode())
        except OSError as err:
            raise PybuildError(f"--digestfile {digestfile}: {err.strerror}") from None
    click.echo(digest)


def labelled(err: PybuildError, label: str) -> PybuildError:
    """The same error with the operation in front (`pull REF: …`), unless the message already names it."""
    text = str(err)
    if text.startswith(label):
        return err
    new = PybuildError(f"{label}: {text}")
    new.exit_code = err.exit_code
    return new


def parse_size(text: str, flag: str) -> int:
    units = {"": 1, "b": 1, "k": 1 << 10, "kb": 1 << 10, "kib": 1 << 10, "m": 1 << 20, "mb": 1 << 20,
             "mib": 1 << 20, "g": 1 << 30, "gb": 1 << 30, "gib": 1 << 30}
    lowered = text.strip().lower()
    digits = lowered.rstrip("abcdefghijklmnopqrstuvwxyz")
    unit = lowered[len(digits):]
    if not digits.isdigit() or unit not in units:
        raise PybuildError(f"{flag} {text!r}: expected a size such as 16777216, 16M or 1G")
    return int(digits) * units[unit]


@click.command("login")
@click.argument("registry")
@click.option("-u", "--username", default=None)
@click.option("-p", "--password", default=None)
@click.option("--password-stdin", is_flag=True, help="Read the password from stdin.")
@click.option("--get-login", is_flag=True, help="Print the user name saved for the registry.")
@tls_option
def login(registry: str, username: str | None, password: str | None, password_stdin: bool, get_login: bool,
          tls_verify: str | None, authfile: str | None) -> None:
    """Check credentials against a registry and save them (docker's config.json format)."""
    from pybuild.registry import authfile as af
    from pybuild.registry.authfile import Credentials
    from pybuild.registry.errors import AuthError

    host = _registry_host(registry)
    if get_login:
        creds = af.lookup(host, "", authfile)
        if creds is None:
            raise AuthError(f"not logged in to {host}")
        click.echo(creds.username)
        return
    if password_stdin:
        if password is not None:
            raise PybuildError("--password and --password-stdin are mutually exclusive")
        password = sys.stdin.readline().rstrip("\r\n")
    if username is None:
        if not sys.stdin.isatty():
            raise PybuildError("login: --username is required when stdin is not a terminal")
        username = input("Username: ").strip()
    if password is None:
        if not sys.stdin.isatty():
            raise PybuildError("login: --password or --password-stdin is required when stdin is not a terminal")
        password = getpass.getpass("Password: ")
    if not username:
        raise PybuildError("login: empty username")
    creds = Credentials(username, password)
    check_login(host, creds, tls_verify)
    path = af.store(host, creds, authfile)
    click.echo(f"Login Succeeded (credentials saved in {path})")


def _registry_host(text: str) -> str:
    from pybuild.registry.reference import DOCKER_HUB

    for prefix in ("https://", "http://", "docker://"):
        if text.startswith(prefix):
            text = text[len(prefix):]
    host = text.split("/", 1)[0]
    if host in ("index.docker.io", "registry-1.docker.io", ""):
        return DOCKER_HUB
    return host


def check_login(host: str, creds, tls_verify: str | None) -> None:  # type: ignore[no-untyped-def]
    """GET /v2/ with the credentials (a Bearer challenge: fetch a token with them). Raises AuthError."""
    from pybuild.registry.reference import DOCKER_HUB_API, DOCKER_HUB

    api = DOCKER_HUB_API if host == DOCKER_HUB else host
    transport = make_transport(tls_verify, None)
    transport.credentials[api] = creds
    try:
        transport.request("GET", api, "/v2/", what=f"login {host}")
    finally:
        transport.close()


@click.command("logout")
@click.argument("registry", required=False)
@click.option("-a", "--all", "all_", is_flag=True, help="Forget the credentials of every registry.")
@click.option("--authfile", default=None, help="Credentials file (podman auth.json / docker config.json).")
def logout(registry: str | None, all_: bool, authfile: str | None) -> None:
    """Remove saved credentials of a registry (or all)."""
    from pybuild.registry import authfile as af

    if not registry and not all_:
        raise PybuildError("logout: name a registry or give --all")
    removed = af.remove(None if all_ else _registry_host(registry or ""), authfile)
    click.echo(f"Removed login credentials for {', '.join(removed)}")
