"""pybuild against a real registry: Debian's docker-registry, started by the tests on 127.0.0.1 (one
without auth, one with htpasswd basic auth), skopeo and podman as the other clients.

Transfers that break are made by registrylib.FaultProxy, an HTTP proxy in front of the registry.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from registrylib import REGISTRY_BIN, FaultProxy, Registry

PYBUILD = os.path.join(os.path.dirname(sys.executable), "pybuild")
ENV = {**os.environ, "PYBUILD_REGISTRY_BACKOFF": "0.01"}

pytestmark = pytest.mark.skipif(not os.path.exists(REGISTRY_BIN) or shutil.which("htpasswd") is None,
                                reason="needs docker-registry and htpasswd (apt-get install docker-registry "
                                       "apache2-utils)")


def pb(root: str, *args: str, check: bool = True, env: dict | None = None, input: str | None = None,
       timeout: float = 120) -> subprocess.CompletedProcess:
    proc = subprocess.run([PYBUILD, "--root", root, *args], capture_output=True, text=True, timeout=timeout,
                          env=env or ENV, input=input)
    if check:
        assert proc.returncode == 0, f"pybuild {' '.join(args)} -> {proc.returncode}\n{proc.stderr}"
    return proc


def one_line_error(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode != 0
    lines = [line for line in proc.stderr.splitlines() if line.startswith("pybuild: ")]
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    return lines[0]


def tags(root: str) -> set[str]:
    with open(os.path.join(root, "index.json")) as fh:
        return {(m.get("annotations") or {}).get("org.opencontainers.image.ref.name") for m in
                json.load(fh)["manifests"]}


@pytest.fixture
def proxy(registry):
    p = FaultProxy(registry.url)
    yield p
    p.stop()


@pytest.fixture(scope="module")
def images(tmp_path_factory, busybox_rootfs):
    """A store with `busybox` (one layer) and `big` (busybox + an 8 MiB incompressible layer)."""
    base = tmp_path_factory.mktemp("images")
    root = str(base / "store")
    pb(root, "import", busybox_rootfs, "-t", "busybox", "-c", 'CMD ["sh"]')
    big = base / "big"
    (big / "data").mkdir(parents=True)
    (big / "data" / "random.bin").write_bytes(os.urandom(8 << 20))
    from pybuild.layer import commit_layer
    from pybuild.mutate import Mutator
    from pybuild.store import Store

    store = Store(root)
    desc, digests = commit_layer(store, str(big))
    mutator = Mutator(store, store.load_image("busybox"))
    mutator.add_layer(desc, digests.diff_id, "COPY data /data")
    store.tag("big", mutator.commit())
    return root


def digest_of(root: str, name: str) -> str:
    from pybuild.store import Store
    return Store(root).resolve(name).digest


# ---- push, pull, peers ---------------------------------------------------------------------------
def test_push_pull_roundtrip_same_digest(registry, images, tmp_path):
    dest = f"{registry.url}/test/busybox:1"
    pushed = pb(images, "push", "busybox", dest)
    digest = pushed.stdout.strip()
    assert digest == digest_of(images, "busybox")
    fresh = str(tmp_path / "fresh")
    pulled = pb(fresh, "pull", dest)
    from pybuild.store import Store
    assert pulled.stdout.strip() == Store(images).load_image("busybox").id
    assert digest_of(fresh, dest) == digest
    out = pb(fresh, "images", "--digests").stdout
    assert digest in out and f"{registry.url}/test/busybox" in out
    # by digest: the same image, named NAME@DIGEST, no tag moved
    again = str(tmp_path / "again")
    pb(again, "pull", f"{registry.url}/test/busybox@{digest}")
    assert tags(again) == {f"{registry.url}/test/busybox@{digest}"}
    # what was pulled runs through the store like any image: unpack it
    pb(fresh, "bundle", dest, str(tmp_path / "bundle"))
    assert os.path.isfile(tmp_path / "bundle" / "rootfs" / "bin" / "busybox")


def test_digestfile_replaces_a_planted_link(registry, images, tmp_path):
    """--digestfile is written as --iidfile is: atomically, never through a link planted at its name."""
    canary = tmp_path / "canary"
    canary.write_text("host file\n")
    target = tmp_path / "digest"
    os.symlink(canary, target)
    digest = pb(images, "push", "--digestfile", str(target), "busybox", f"{registry.url}/test/df:1").stdout.strip()
    assert canary.read_text() == "host file\n"
    assert not os.path.islink(target) and target.read_text() == digest


def test_second_push_skips_and_other_repo_mounts(registry, images):
    pb(images, "push", "big", f"{registry.url}/test/big-a:1")
    again = pb(images, "push", "big", f"{registry.url}/test/big-a:1")
    assert again.stderr.count("Already exists") == 3, again.stderr
    other = pb(images, "push", "big", f"{registry.url}/test/big-b:1")
    assert other.stderr.count("Mounted from test/") == 3, other.stderr
    assert "Pushing blob" not in other.stderr


def test_skopeo_and_podman_read_what_pybuild_pushed(registry, images, tmp_path):
    for tool in ("skopeo", "podman"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed")
    dest = f"{registry.url}/peer/big:2"
    digest = pb(images, "push", "big", dest).stdout.strip()
    info = json.loads(subprocess.run(["skopeo", "inspect", "--tls-verify=false", f"docker://{dest}"],
                                     capture_output=True, text=True, check=True).stdout)
    assert info["Digest"] == digest and len(info["Layers"]) == 2
    import tempfile
    proot = tmp_path / "podman-root"
    prun = tempfile.mkdtemp(prefix="pbreg", dir="/tmp")  # podman refuses a runroot longer than 50 characters
    podman = ["podman", "--root", str(proot), "--runroot", str(prun), "--storage-driver", "vfs"]
    try:
        pulled = subprocess.run([*podman, "pull", "-q", "--tls-verify=false", dest], capture_output=True,
                                text=True, timeout=120)
        assert pulled.returncode == 0, pulled.stderr
        inspect = json.loads(subprocess.run([*podman, "image", "inspect", dest], capture_output=True, text=True,
                                            check=True).stdout)
        assert any(d.endswith(digest) for d in inspect[0]["RepoDigests"])
    finally:
        subprocess.run([*podman, "rmi", "-a", "-f"], capture_output=True)
        shutil.rmtree(prun, ignore_errors=True)


def _two_platform_layout(images: str, path) -> None:
    """An OCI layout whose index has busybox for this machine and the same layer labelled arm64/v8."""
    from pybuild.image import MT_INDEX, Descriptor, Index, host_platform, to_json
    from pybuild.store import Store

    src = Store(images)
    image = src.load_image("busybox")
    dst = Store(str(path))
    for blob in (image.descriptor, image.manifest.config, *image.manifest.layers):
        dst.put_blob(src.read_blob(blob.digest))
    config = json.loads(src.read_blob(image.id))
    other_arch = "arm64" if host_platform()["architecture"] != "arm64" else "amd64"
    config["architecture"] = other_arch
    config_bytes = json.dumps(config).encode()
    manifest = json.loads(src.read_blob(image.descriptor.digest))
    manifest["config"]["digest"] = dst.put_blob(config_bytes)
    manifest["config"]["size"] = len(config_bytes)
    manifest_bytes = json.dumps(manifest).encode()
    entries = (Descriptor(image.descriptor.media_type, image.descriptor.digest, image.descriptor.size,
                          platform={"architecture": host_platform()["architecture"], "os": "linux"}),
               Descriptor(image.descriptor.media_type, dst.put_blob(manifest_bytes), len(manifest_bytes),
                          platform={"architecture": other_arch, "os": "linux",
                                    **({"variant": "v8"} if other_arch == "arm64" else {})}))
    index = dst.put_json(Index(manifests=entries), MT_INDEX)
    dst.tag("multi", index)
    return other_arch


def test_pull_index_pushed_by_skopeo_picks_platform(registry, images, tmp_path):
    if shutil.which("skopeo") is None:
        pytest.skip("skopeo is not installed")
    other = _two_platform_layout(images, tmp_path / "layout")
    dest = f"{registry.url}/multi/busybox:both"
    subprocess.run(["skopeo", "copy", "--all", "--dest-tls-verify=false", f"oci:{tmp_path / 'layout'}:multi",
                    f"docker://{dest}"], capture_output=True, text=True, check=True)
    mine = str(tmp_path / "mine")
    pb(mine, "pull", dest)
    from pybuild.store import Store
    assert Store(mine).load_image(dest).config.architecture == json.loads(
        pb(images, "inspect", "busybox").stdout)[0]["Architecture"]
    theirs = str(tmp_path / "theirs")
    pb(theirs, "pull", "--platform", f"linux/{other}", dest)
    assert Store(theirs).load_image(dest).config.architecture == other
    missing = str(tmp_path / "missing")
    line = one_line_error(pb(missing, "pull", "--platform", "linux/s390x", dest, check=False))
    assert "no image for platform linux/s390x" in line and f"linux/{other}" in line
    assert tags(missing) == set()


# ---- auth ------------------------------------------------------------------------------------------
def test_basic_auth_login_push_pull_logout(auth_registry, images, tmp_path):
    authfile = str(tmp_path / "auth.json")
    env = {**ENV, "REGISTRY_AUTH_FILE": authfile}
    dest = f"{auth_registry.url}/private/busybox:1"
    line = one_line_error(pb(images, "push", "busybox", dest, check=False, env=env))
    assert "authentication required" in line
    line = one_line_error(pb(images, "login", "-u", "alice", "--password-stdin", auth_registry.url,
                             input="wrong\n", check=False, env=env))
    assert "wrong username or password" in line
    assert not os.path.exists(authfile)
    pb(images, "login", "-u", "alice", "--password-stdin", auth_registry.url, input="wonderland\n", env=env)
    assert os.stat(authfile).st_mode & 0o777 == 0o600
    assert auth_registry.url in json.load(open(authfile))["auths"]
    digest = pb(images, "push", "busybox", dest, env=env).stdout.strip()
    fresh = str(tmp_path / "fresh")
    pb(fresh, "pull", dest, env=env)
    assert digest_of(fresh, dest) == digest
    if shutil.which("skopeo"):  # skopeo reads the file pybuild wrote
        subprocess.run(["skopeo", "inspect", "--tls-verify=false", "--authfile", authfile, f"docker://{dest}"],
                       capture_output=True, check=True)
    pb(images, "logout", auth_registry.url, env=env)
    assert json.load(open(authfile))["auths"] == {}
    assert "authentication required" in one_line_error(pb(str(tmp_path / "x"), "pull", dest, check=False, env=env))


def test_docker_config_and_wrong_stored_password(auth_registry, images, tmp_path):
    """Credentials from ~/.docker/config.json (DOCKER_CONFIG), as `docker login` writes them."""
    import base64
    docker_dir = tmp_path / "docker"
    docker_dir.mkdir()
    env = {**ENV, "DOCKER_CONFIG": str(docker_dir)}
    env.pop("REGISTRY_AUTH_FILE", None)
    env.pop("XDG_RUNTIME_DIR", None)
    good = base64.b64encode(b"alice:wonderland").decode()
    (docker_dir / "config.json").write_text(json.dumps({"auths": {auth_registry.url: {"auth": good}},
                                                        "psFormat": "keep me"}))
    dest = f"{auth_registry.url}/docker/busybox:1"
    pb(images, "push", "busybox", dest, env=env)
    bad = base64.b64encode(b"alice:nope").decode()
    (docker_dir / "config.json").write_text(json.dumps({"auths": {auth_registry.url: {"auth": bad}}}))
    line = one_line_error(pb(str(tmp_path / "s"), "pull", dest, check=False, env=env))
    assert "wrong username or password" in line
    assert tags(str(tmp_path / "s")) == set()


# ---- bad input -------------------------------------------------------------------------------------
def test_registry_down_missing_tag_bad_reference(registry, images, tmp_path):
    from registrylib import free_port
    root = str(tmp_path / "s")
    line = one_line_error(pb(root, "pull", f"127.0.0.1:{free_port()}/x/y:1", check=False))
    assert "connection refused" in line
    line = one_line_error(pb(root, "pull", f"{registry.url}/test/busybox:nosuchtag", check=False))
    assert "manifest unknown" in line
    line = one_line_error(pb(root, "pull", f"{registry.url}/Bad/Name", check=False))
    assert "invalid reference" in line
    assert tags(root) == set()


def test_manifest_digest_mismatch_rejected(registry, images, proxy, tmp_path):
    pb(images, "push", "busybox", f"{registry.url}/test/mm:1")
    proxy.corrupt_manifests = True
    root = str(tmp_path / "s")
    line = one_line_error(pb(root, "pull", f"{proxy.url}/test/mm:1", check=False))
    assert "digest mismatch" in line
    assert tags(root) == set() and os.listdir(os.path.join(root, "blobs", "sha256")) == []


def _big_layer(images: str) -> tuple[str, int]:
    from pybuild.store import Store
    layer = Store(images).load_image("big").manifest.layers[-1]
    return layer.digest, layer.size


def _only_whole_blobs(root: str) -> None:
    import hashlib
    blob_dir = os.path.join(root, "blobs", "sha256")
    for name in os.listdir(blob_dir):
        with open(os.path.join(blob_dir, name), "rb") as fh:
            assert hashlib.sha256(fh.read()).hexdigest() == name


def test_truncated_blob_fails_cleanly(registry, images, proxy, tmp_path):
    pb(images, "push", "big", f"{registry.url}/test/trunc:1")
    proxy.cut_blob_after = 1 << 20
    proxy.ignore_range = True  # every attempt starts over and is cut again
    root = str(tmp_path / "s")
    line = one_line_error(pb(root, "pull", f"{proxy.url}/test/trunc:1", check=False))
    assert "connection broken after 1048576 of" in line
    assert tags(root) == set()
    digest, _ = _big_layer(images)
    assert digest[7:] not in os.listdir(os.path.join(root, "blobs", "sha256"))
    _only_whole_blobs(root)


def test_broken_download_resumes_with_range(registry, images, proxy, tmp_path):
    pb(images, "push", "big", f"{registry.url}/test/resume:1")
    proxy.cut_blob_after = 3 << 20
    proxy.cut_times = 1
    root = str(tmp_path / "s")
    pb(root, "pull", f"{proxy.url}/test/resume:1")
    digest, _ = _big_layer(images)
    ranges = [h.get("Range") for m, p, h in proxy.log if p.endswith(digest)]
    assert f"bytes={3 << 20}-" in ranges
    assert digest_of(root, f"{proxy.url}/test/resume:1") == digest_of(images, "big")


def test_interrupted_pull_resumes(registry, images, proxy, tmp_path):
    pb(images, "push", "big", f"{registry.url}/test/killed:1")
    digest, size = _big_layer(images)
    proxy.stall_blob_after = 5 << 20
    root = str(tmp_path / "s")
    proc = subprocess.Popen([PYBUILD, "--root", root, "pull", f"{proxy.url}/test/killed:1"], env=ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert proxy.stalled.wait(60)
        deadline = time.monotonic() + 30
        partial = os.path.join(root, "ingest", digest[7:])
        while time.monotonic() < deadline and (not os.path.exists(partial) or os.path.getsize(partial) < 5 << 20):
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert os.path.getsize(partial) == 5 << 20
    assert tags(root) == set() and digest[7:] not in os.listdir(os.path.join(root, "blobs", "sha256"))
    proxy.stall_blob_after = None
    proxy.release.set()
    proxy.log.clear()
    pb(root, "pull", f"{proxy.url}/test/killed:1")
    ranges = [h.get("Range") for m, p, h in proxy.log if p.endswith(digest) and m == "GET"]
    assert ranges == [f"bytes={5 << 20}-"]
    assert digest_of(root, f"{proxy.url}/test/killed:1") == digest_of(images, "big")
    assert not os.path.exists(partial)


def test_interrupted_chunked_push_resumes(registry, images, proxy, tmp_path):
    dest = f"{proxy.url}/test/chunked:1"
    pb(images, "push", "busybox", dest)  # so that the big layer is the only blob left to upload
    proxy.patches = 0
    proxy.stall_patch = 4
    proc = subprocess.Popen([PYBUILD, "--root", images, "push", "--chunk-size", "1M", "big", dest], env=ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert proxy.stalled.wait(60)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    proxy.stall_patch = None
    proxy.release.set()
    proxy.log.clear()
    out = pb(images, "push", "--chunk-size", "1M", "big", dest)
    patches = [h["Content-Range"] for m, p, h in proxy.log if m == "PATCH"]
    assert patches and patches[0].startswith(f"{3 << 20}-"), patches
    assert any(m == "GET" and "/blobs/uploads/" in p for m, p, h in proxy.log)  # asked how far it got
    assert "resumed at" in out.stderr
    info = subprocess.run(["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{registry.url}/test/chunked:1"],
                          capture_output=True, check=True).stdout
    import hashlib
    assert "sha256:" + hashlib.sha256(info).hexdigest() == digest_of(images, "big")


# ---- FROM pulls on demand --------------------------------------------------------------------------
def test_from_pulls_missing_never_always(registry, images, tmp_path):
    ref = f"{registry.url}/base/busybox:1"
    pb(images, "push", "busybox", ref)
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(f"FROM {ref}\nRUN cat /etc/passwd > /copy\n")
    root = str(tmp_path / "s")
    line = one_line_error(pb(root, "build", "--pull=never", "-t", "app", str(ctx), check=False))
    assert line == f"pybuild: Dockerfile:1: FROM {ref}: image not found in the store {root}"
    built = pb(root, "build", "-t", "app", str(ctx))
    assert "Pulling" in built.stderr
    assert digest_of(root, ref) == digest_of(images, "busybox")
    again = pb(root, "build", "-t", "app", str(ctx))
    assert "Pulling" not in again.stderr                     # missing: the store has it now
    pb(images, "push", "big", ref)                           # the tag moves in the registry
    pb(root, "build", "--pull=always", "-t", "app", str(ctx))
    assert digest_of(root, ref) == digest_of(images, "big")
    ctx2 = tmp_path / "ctx2"
    ctx2.mkdir()
    (ctx2 / "Dockerfile").write_text(f"FROM {registry.url}/base/nosuch:1\n")
    line = one_line_error(pb(root, "build", str(ctx2), check=False))
    assert f"FROM {registry.url}/base/nosuch:1: image not found in the store" in line and "manifest unknown" in line


def test_bearer_token_auth(token_registry, images, tmp_path):
    """WWW-Authenticate: Bearer realm=…,service=…,scope=… → a token from the realm (with the saved
    credentials as Basic), for the scopes the operation needs; anonymous tokens may pull only."""
    token = token_registry.token
    authfile = str(tmp_path / "auth.json")
    env = {**ENV, "REGISTRY_AUTH_FILE": authfile}
    dest = f"{token_registry.url}/team/busybox:1"
    line = one_line_error(pb(images, "push", "busybox", dest, check=False, env=env))
    assert "denied" in line or "unauthorized" in line
    line = one_line_error(pb(images, "login", "-u", "alice", "--password-stdin", token_registry.url,
                             input="bad\n", check=False, env=env))
    assert "wrong username or password" in line and not os.path.exists(authfile)
    pb(images, "login", "-u", "alice", "--password-stdin", token_registry.url, input="wonderland\n", env=env)
    token.requests.clear()
    digest = pb(images, "push", "busybox", dest, env=env).stdout.strip()
    assert token.requests and all(with_auth for with_auth, _ in token.requests)
    assert any("repository:team/busybox:pull,push" in scopes for _, scopes in token.requests)
    assert len(token.requests) <= 2  # the token is cached per scope, not fetched per request
    fresh = str(tmp_path / "fresh")
    pb(fresh, "pull", dest, env=env)
    assert digest_of(fresh, dest) == digest
    # anonymous: the token server grants pull, so a pull works without credentials
    anon = str(tmp_path / "anon")
    pb(anon, "pull", dest, env={**ENV, "REGISTRY_AUTH_FILE": str(tmp_path / "none.json")})
    assert digest_of(anon, dest) == digest


def test_blobs_download_concurrently(registry, images, proxy, tmp_path):
    """While the first blob GET hangs, the others are already asked for (3 at a time, as docker)."""
    pb(images, "push", "big", f"{registry.url}/test/concurrent:1")
    proxy.stall_blob_after = 0
    root = str(tmp_path / "s")
    proc = subprocess.Popen([PYBUILD, "--root", root, "pull", "-q", f"{proxy.url}/test/concurrent:1"], env=ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and sum(
                1 for m, p, _ in list(proxy.log) if m == "GET" and "/blobs/" in p) < 3:
            time.sleep(0.05)
        waiting = sum(1 for m, p, _ in list(proxy.log) if m == "GET" and "/blobs/" in p)
    finally:
        proxy.stall_blob_after = None
        proxy.release.set()
    assert proc.wait(60) == 0, proc.stderr.read()
    assert waiting == 3
    assert digest_of(root, f"{proxy.url}/test/concurrent:1") == digest_of(images, "big")


def test_tls_registry_verification(tls_registry, images, tmp_path):
    """https with a self-signed certificate: a loopback registry is insecure by default (as docker's
    127.0.0.0/8), --tls-verify=true checks against the system bundle (which lacks this CA: one line),
    and a CA bundle that has it ($SSL_CERT_FILE) makes the verified pull work."""
    dest = f"{tls_registry.url}/tls/busybox:1"
    digest = pb(images, "push", "busybox", dest).stdout.strip()
    line = one_line_error(pb(str(tmp_path / "a"), "pull", "--tls-verify=true", dest, check=False))
    assert "TLS certificate verification failed" in line
    pb(str(tmp_path / "b"), "pull", "--tls-verify=true", dest, env={**ENV, "SSL_CERT_FILE": tls_registry.tls_cert})
    assert digest_of(str(tmp_path / "b"), dest) == digest


def test_5xx_answers_are_retried(registry, images, proxy, tmp_path):
    pb(images, "push", "busybox", f"{registry.url}/test/flaky:1")
    proxy.fail_times = 3  # 503 to the first three requests (ping, manifest, ...)
    root = str(tmp_path / "s")
    pb(root, "pull", f"{proxy.url}/test/flaky:1")
    assert [m for m, _, _ in proxy.log[:4]] == ["GET"] * 4
    assert digest_of(root, f"{proxy.url}/test/flaky:1") == digest_of(images, "busybox")
    proxy.fail_times = 100  # a registry that keeps failing: one line, after the retries
    line = one_line_error(pb(str(tmp_path / "t"), "pull", f"{proxy.url}/test/flaky:1", check=False))
    assert "503" in line
