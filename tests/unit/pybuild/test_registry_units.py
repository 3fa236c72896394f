"""Registry client pieces that need no registry: references, platforms, auth files, challenges, sizes."""

from __future__ import annotations

import base64
import json
import os

import pytest

from pybuild.registry import authfile, reference
from pybuild.registry.errors import AuthError, ReferenceError_, RegistryError
from pybuild.registry.transport import parse_challenge, registry_message


@pytest.mark.parametrize("text, domain, repo, tag, digest", [
    ("busybox", "docker.io", "library/busybox", "latest", None),
    ("busybox:1.36", "docker.io", "library/busybox", "1.36", None),
    ("user/app", "docker.io", "user/app", "latest", None),
    ("docker.io/library/busybox", "docker.io", "library/busybox", "latest", None),
    ("index.docker.io/user/app:1", "docker.io", "user/app", "1", None),
    ("127.0.0.1:5000/app", "127.0.0.1:5000", "app", "latest", None),
    ("localhost/app:v1", "localhost", "app", "v1", None),
    ("docker://localhost:5000/a/b/c:x", "localhost:5000", "a/b/c", "x", None),
    ("ghcr.io/o/r@sha256:" + "a" * 64, "ghcr.io", "o/r", None, "sha256:" + "a" * 64),
    ("ghcr.io/o/r:t@sha256:" + "b" * 64, "ghcr.io", "o/r", "t", "sha256:" + "b" * 64),
    ("[::1]:5000/x", "[::1]:5000", "x", "latest", None),
])
def test_parse_reference(text, domain, repo, tag, digest):
    ref = reference.parse(text)
    assert (ref.domain, ref.repository, ref.tag, ref.digest) == (domain, repo, tag, digest)


def test_reference_forms():
    ref = reference.parse("busybox")
    assert ref.api_host == "registry-1.docker.io" and ref.familiar() == "busybox:latest"
    assert str(ref) == "docker.io/library/busybox:latest"
    local = reference.parse("127.0.0.1:5000/team/app:1")
    assert local.familiar() == "127.0.0.1:5000/team/app:1" and local.object == "1" and local.is_loopback()
    assert not reference.parse("registry.example/app").is_loopback()
    assert reference.host_is_loopback("127.4.5.6:99") and reference.host_is_loopback("[::1]:5000")


@pytest.mark.parametrize("text", ["", "UPPER/case", "a//b", "app:bad tag", "app@sha256:123", "-lead/x",
                                  "host:port:x/y:z/w" + ":" * 3])
def test_bad_references(text):
    with pytest.raises(ReferenceError_):
        reference.parse(text)


def test_parse_platform():
    assert reference.parse_platform("linux/amd64") == {"os": "linux", "architecture": "amd64"}
    assert reference.parse_platform("linux/arm64") == {"os": "linux", "architecture": "arm64", "variant": "v8"}
    assert reference.parse_platform("linux/arm/v7")["variant"] == "v7"
    with pytest.raises(ReferenceError_):
        reference.parse_platform("amd64")


def test_select_platform_lists_what_the_index_has():
    from pybuild.registry.pull import select_platform
    index = {"manifests": [
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:" + "1" * 64, "size": 1,
         "platform": {"os": "linux", "architecture": "amd64"}},
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:" + "2" * 64, "size": 1,
         "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}},
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:" + "3" * 64, "size": 1,
         "platform": {"os": "unknown", "architecture": "unknown"},
         "annotations": {"vnd.docker.reference.type": "attestation-manifest"}}]}
    data = json.dumps(index).encode()
    assert select_platform(data, {"os": "linux", "architecture": "arm64"}, "x").digest.endswith("2" * 64)
    assert select_platform(data, reference.parse_platform("linux/arm64"), "x").digest.endswith("2" * 64)
    with pytest.raises(RegistryError, match=r"linux/s390x .*it has: linux/amd64, linux/arm64/v8\)"):
        select_platform(data, {"os": "linux", "architecture": "s390x"}, "x")


def test_challenge_and_error_bodies():
    c = parse_challenge('Bearer realm="https://auth.example/token",service="registry.example",'
                        'scope="repository:a/b:pull,push"')
    assert c.scheme == "bearer" and c.params == {"realm": "https://auth.example/token",
                                                 "service": "registry.example", "scope": "repository:a/b:pull,push"}
    assert parse_challenge('Basic realm="x"').scheme == "basic"
    assert parse_challenge("") is None
    body = b'{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{}}]}'
    assert registry_message(body) == "manifest unknown"
    assert registry_message(b"<html>\nbad gateway") == "<html>"


@pytest.fixture
def authenv(tmp_path, monkeypatch):
    for var in ("REGISTRY_AUTH_FILE", "XDG_RUNTIME_DIR"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker"))
    return tmp_path


def test_authfile_store_lookup_remove_keeps_other_keys(authenv):
    path = authfile.docker_config_path()
    os.makedirs(os.path.dirname(path))
    with open(path, "w") as fh:
        json.dump({"auths": {"other.example": {"auth": base64.b64encode(b"u:p").decode()}}, "psFormat": "x"}, fh)
    assert authfile.store("127.0.0.1:5000", authfile.Credentials("alice", "s:e:c")) == path
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert authfile.lookup("127.0.0.1:5000") == authfile.Credentials("alice", "s:e:c")
    assert authfile.lookup("other.example").username == "u"
    assert authfile.lookup("nowhere.example") is None
    assert authfile.remove("127.0.0.1:5000") == ["127.0.0.1:5000"]
    doc = json.load(open(path))
    assert doc["psFormat"] == "x" and list(doc["auths"]) == ["other.example"]
    with pytest.raises(RegistryError, match="not logged in"):
        authfile.remove("127.0.0.1:5000")


def test_authfile_search_order_and_key_forms(authenv, monkeypatch):
    podman = authenv / "auth.json"
    podman.write_text(json.dumps({"auths": {
        "reg.example/team": {"auth": base64.b64encode(b"team:1").decode()},
        "reg.example": {"auth": base64.b64encode(b"all:2").decode()},
        "https://index.docker.io/v1/": {"auth": base64.b64encode(b"hub:3").decode()}}}))
    monkeypatch.setenv("REGISTRY_AUTH_FILE", str(podman))
    assert authfile.lookup("reg.example", "team/app").username == "team"   # longest key wins
    assert authfile.lookup("reg.example", "solo/app").username == "all"
    assert authfile.lookup("docker.io", "library/busybox").username == "hub"
    assert authfile.write_path() == str(podman)
    podman.write_text('{"auths": {"reg.example": {"auth": "!!notbase64"}}}')
    with pytest.raises(AuthError):
        authfile.lookup("reg.example")


def test_parse_size():
    from pybuild.commands.registry import parse_size
    assert parse_size("16M", "x") == 16 << 20 and parse_size("1048576", "x") == 1 << 20
    assert parse_size("0", "x") == 0
    with pytest.raises(Exception, match="expected a size"):
        parse_size("lots", "x")


def test_store_names_by_digest(tmp_path):
    from pybuild.errors import StoreError
    from pybuild.store import normalize_name, split_name
    name = "127.0.0.1:5000/app@sha256:" + "c" * 64
    assert normalize_name(name) == name
    assert split_name(name) == ("127.0.0.1:5000/app", "<none>")
    with pytest.raises(StoreError):
        normalize_name("app@sha256:short")


class _Tty:
    def __init__(self):
        self.text = ""

    def isatty(self):
        return True

    def write(self, s):
        self.text += s

    def flush(self):
        pass


def test_progress_bars_on_a_terminal_plain_lines_otherwise():
    import io

    from pybuild.registry.progress import TransferProgress
    tty = _Tty()
    p = TransferProgress("auto", tty)
    p.start("sha256:" + "a" * 64, 2_000_000)
    p.start("sha256:" + "b" * 64, 1000)
    p.advance("sha256:" + "a" * 64, 1_000_000)
    p.finish("sha256:" + "b" * 64, "done")
    assert p.mode == "tty" and "\x1b[2A" in tty.text and "[=====" in tty.text and "2MB" in tty.text
    plain = io.StringIO()
    q = TransferProgress("auto", plain)
    q.start("sha256:" + "a" * 64, 2_000_000)
    q.advance("sha256:" + "a" * 64, 1_000_000)
    q.finish("sha256:" + "a" * 64, "done")
    assert plain.getvalue() == "Copying blob sha256:aaaaaaaaaaaa (2MB)\nDone: sha256:aaaaaaaaaaaa\n"
