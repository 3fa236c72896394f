"""Registry credentials as docker and podman keep them.

Files, in the order they are searched (the first that has an entry for the registry wins, as in
containers/image):
  1. --authfile FILE, else $REGISTRY_AUTH_FILE            (podman's auth.json format)
  2. $XDG_RUNTIME_DIR/containers/auth.json                (podman login's default)
  3. $DOCKER_CONFIG/config.json, else ~/.docker/config.json  (docker login's)
`pybuild login/logout` write the first of: --authfile, $REGISTRY_AUTH_FILE, the docker file.

Format (shared by docker and podman): {"auths": {"KEY": {"auth": base64("user:password")}}, ...} where
KEY is a host ("127.0.0.1:5000"), a URL ("https://index.docker.io/v1/") or, for podman, host/namespace
(the longest matching key wins). `credsStore` / `credHelpers` name a docker-credential-NAME helper,
which is run with `get`/`store`/`erase` and the host on stdin, as docker runs it. Other keys of the file
are kept as they are when pybuild rewrites it (atomically, mode 0600).
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
from dataclasses import dataclass

from pybuild.registry.errors import AuthError, RegistryError
from pybuild.registry.reference import DOCKER_HUB

DOCKER_HUB_KEY = "https://index.docker.io/v1/"


@dataclass(frozen=True, slots=True)
class Credentials:
    username: str
    password: str
    identity_token: str | None = None


def search_path(authfile: str | None = None) -> list[str]:
    paths = []
    explicit = authfile or os.environ.get("REGISTRY_AUTH_FILE")
    if explicit:
        paths.append(explicit)
    runtime_dir = os.environ.get("XDG_RUNTIME_DIR")
    if runtime_dir:
        paths.append(os.path.join(runtime_dir, "containers", "auth.json"))
    paths.append(docker_config_path())
    return paths


def docker_config_path() -> str:
    base = os.environ.get("DOCKER_CONFIG") or os.path.join(os.path.expanduser("~"), ".docker")
    return os.path.join(base, "config.json")


def write_path(authfile: str | None = None) -> str:
    return authfile or os.environ.get("REGISTRY_AUTH_FILE") or docker_config_path()


def _key_host(key: str) -> str:
    """'https://host/v1/' -> 'host'; 'host/ns' -> 'host/ns' (podman's namespaced keys)."""
    for prefix in ("https://", "http://"):
        if key.startswith(prefix):
            key = key[len(prefix):].split("/", 1)[0]
            break
    key = key.rstrip("/")
    return DOCKER_HUB if key in ("index.docker.io", "registry-1.docker.io") else key


def registry_key(domain: str) -> str:
    """The key docker writes for a registry."""
    return DOCKER_HUB_KEY if domain == DOCKER_HUB else domain


def _read(path: str) -> dict:
    try:
        with open(path, "rb") as fh:
            data = json.load(fh)
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as err:
        raise AuthError(f"{path}: cannot read credentials: {err}") from None
    if not isinstance(data, dict):
        raise AuthError(f"{path}: expected a JSON object")
    return data


def _decode(path: str, key: str, entry: object) -> Credentials | None:
    if not isinstance(entry, dict):
        return None
    token = entry.get("identitytoken")
    if entry.get("auth"):
        try:
            user, sep, password = base64.b64decode(entry["auth"], validate=False).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            raise AuthError(f"{path}: auths[{key!r}].auth is not base64 of user:password") from None
        if not sep:
            raise AuthError(f"{path}: auths[{key!r}].auth is not base64 of user:password")
        return Credentials(user, password, token or None)
    if entry.get("username"):
        return Credentials(entry["username"], entry.get("password", ""), token or None)
    if token:
        return Credentials("<token>", "", token)
    return None


def lookup(domain: str, repository: str = "", authfile: str | None = None) -> Credentials | None:
    """Credentials for a registry (and repository, for podman's namespaced keys), or None."""
    wanted = f"{domain}/{repository}" if repository else domain
    for path in search_path(authfile):
        data = _read(path)
        helper = (data.get("credHelpers") or {}).get(domain) or (data.get("credHelpers") or {}).get(
            registry_key(domain))
        if helper:
            return helper_get(helper, registry_key(domain))
        best: tuple[int, Credentials] | None = None
        for key, entry in (data.get("auths") or {}).items():
            host = _key_host(key)
            if wanted == host or wanted.startswith(host + "/"):
                creds = _decode(path, key, entry)
                if creds is not None and (best is None or len(host) > best[0]):
                    best = (len(host), creds)
        if best is not None:
            return best[1]
        if data.get("credsStore") and (domain in {_key_host(k) for k in (data.get("auths") or {})}):
            return helper_get(data["credsStore"], registry_key(domain))
    return None


def _helper(name: str, verb: str, stdin: str) -> str:
    binary = f"docker-credential-{name}"
    try:
        proc = subprocess.run([binary, verb], input=stdin, capture_output=True, text=True, timeout=60)
    except FileNotFoundError:
        raise AuthError(f"credential helper {binary}: not found on PATH") from None
    except subprocess.TimeoutExpired:
        raise AuthError(f"credential helper {binary} {verb}: timed out") from None
    if proc.returncode != 0:
        message = (proc.stdout.strip() or proc.stderr.strip()).splitlines()
        raise AuthError(f"credential helper {binary} {verb}: {message[-1] if message else 'failed'}")
    return proc.stdout


def helper_get(name: str, server: str) -> Credentials | None:
    try:
        out = _helper(name, "get", server)
    except AuthError as err:
        if "credentials not found" in str(err).lower():
            return None
        raise
    try:
        doc = json.loads(out)
        user, secret = doc["Username"], doc["Secret"]
    except (ValueError, KeyError, TypeError):
        raise AuthError(f"credential helper docker-credential-{name}: unexpected output") from None
    if user == "<token>":
        return Credentials(user, "", secret)
    return Credentials(user, secret)


def _write(path: str, data: dict) -> None:
    from pybuild.store import write_atomic

    os.makedirs(os.path.dirname(os.path.abspath(path)), mode=0o700, exist_ok=True)
    write_atomic(path, (json.dumps(data, indent="\t") + "\n").encode(), mode=0o600)


def store(domain: str, creds: Credentials, authfile: str | None = None) -> str:
    """Save credentials (docker's format); returns the file written."""
    path = write_path(authfile)
    data = _read(path)
    key = registry_key(domain)
    helper = (data.get("credHelpers") or {}).get(domain) or data.get("credsStore")
    if helper and not (authfile or os.environ.get("REGISTRY_AUTH_FILE")):
        _helper(helper, "store", json.dumps({"ServerURL": key, "Username": creds.username,
                                             "Secret": creds.password}))
        data.setdefault("auths", {})[key] = {}
    else:
        auth = base64.b64encode(f"{creds.username}:{creds.password}".encode()).decode()
        data.setdefault("auths", {})[key] = {"auth": auth}
    _write(path, data)
    return path


def remove(domain: str | None, authfile: str | None = None) -> list[str]:
    """Forget a registry's credentials (domain None: all of them) in the file pybuild writes; returns the
    keys removed. Raises RegistryError when there was nothing to remove, as `docker logout` reports."""
    path = write_path(authfile)
    data = _read(path)
    auths = data.get("auths") or {}
    if domain is None:
        removed = list(auths)
    else:
        removed = [k for k in auths if _key_host(k) == domain or k == registry_key(domain)]
    if not removed:
        raise RegistryError(f"not logged in to {domain or 'any registry'} (in {path})")
    helper = data.get("credsStore")
    for key in removed:
        auths.pop(key, None)
        chosen = (data.get("credHelpers") or {}).get(_key_host(key)) or helper
        if chosen and not (authfile or os.environ.get("REGISTRY_AUTH_FILE")):
            try:
                _helper(chosen, "erase", key)
            except AuthError:
                pass  # the inline entry is gone; a helper that never had it has nothing to erase
    data["auths"] = auths
    _write(path, data)
    return removed
