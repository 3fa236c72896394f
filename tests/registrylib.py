"""A real registry for tests: Debian's `docker-registry` binary run directly (never the system service)
with a config in a temp dir, listening on 127.0.0.1 on a free port; stopped by `stop()`.

    reg = Registry(tmpdir, users={"alice": "secret"})   # htpasswd basic auth; users=None: no auth
    reg = Registry(tmpdir, token=TokenServer(tmpdir, {"alice": "secret"}))   # Bearer tokens
    reg.start()  ...  reg.url == "127.0.0.1:PORT"  ...  reg.stop()

htpasswd entries are bcrypt, written by `htpasswd -nbB` (apache2-utils): the registry accepts only bcrypt.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request

REGISTRY_BIN = shutil.which("docker-registry") or "/usr/bin/docker-registry"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Registry:
    def __init__(self, workdir: str, users: dict[str, str] | None = None, port: int | None = None,
                 token: "TokenServer | None" = None, tls: bool = False) -> None:
        self.workdir = workdir
        self.users = users
        self.token = token
        self.tls_cert = self._make_cert() if tls else None
        self.port = port or free_port()
        self.url = f"127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = os.path.join(workdir, "registry.log")

    def _config(self) -> str:
        data = os.path.join(self.workdir, "data")
        os.makedirs(data, exist_ok=True)
        lines = ["version: 0.1", "log:", "  level: warn", "storage:", "  filesystem:",
                 f"    rootdirectory: {data}", "  delete:", "    enabled: true", "http:",
                 f"  addr: 127.0.0.1:{self.port}"]
        if self.tls_cert:
            lines += ["  tls:", f"    certificate: {self.tls_cert}", f"    key: {self.tls_cert[:-4]}.key"]
        if self.token is not None:
            lines += ["auth:", "  token:", f"    realm: {self.token.url}", f"    service: {self.token.service}",
                      f"    issuer: {self.token.issuer}", f"    rootcertbundle: {self.token.cert}"]
        elif self.users is not None:
            htpasswd = os.path.join(self.workdir, "htpasswd")
            with open(htpasswd, "w") as fh:
                for user, password in self.users.items():
                    fh.write(bcrypt_entry(user, password) + "\n")
            lines += ["auth:", "  htpasswd:", "    realm: pybuild-test", f"    path: {htpasswd}"]
        path = os.path.join(self.workdir, "config.yml")
        with open(path, "w") as fh:
            fh.write("\n".join(lines) + "\n")
        return path

    def start(self, timeout: float = 15) -> "Registry":
        config = self._config()
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([REGISTRY_BIN, "serve", config], stdout=log, stderr=log,
                                     stdin=subprocess.DEVNULL)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"docker-registry exited {self.proc.returncode}: {self.log()}")
            try:
                if self.tls_cert:
                    import ssl
                    ctx = ssl.create_default_context(cafile=self.tls_cert)
                    urllib.request.urlopen(f"https://{self.url}/v2/", timeout=1, context=ctx)
                else:
                    urllib.request.urlopen(f"http://{self.url}/v2/", timeout=1)
                return self
            except urllib.error.HTTPError:
                return self  # 401 with auth: it answers
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"docker-registry did not answer on {self.url}: {self.log()}")

    def _make_cert(self) -> str:
        """A self-signed certificate for 127.0.0.1 (the registry's TLS), made with the openssl CLI."""
        cert = os.path.join(self.workdir, "tls.crt")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                        os.path.join(self.workdir, "tls.key"), "-out", cert, "-days", "2", "-subj",
                        "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
        return cert

    def log(self) -> str:
        try:
            with open(self.log_path, errors="replace") as fh:
                return fh.read()[-2000:]
        except FileNotFoundError:
            return ""

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


def bcrypt_entry(user: str, password: str) -> str:
    out = subprocess.run(["htpasswd", "-nbB", user, password], capture_output=True, text=True, check=True)
    return out.stdout.strip()


class FaultProxy:
    """An HTTP proxy in front of a registry that can break transfers on purpose.

    Faults (attributes, changed by the test at any time):
      stall_blob_after: int | None    a blob GET sends this many body bytes, then hangs (`stalled` is set)
                                       until `release` is set, then closes — a pull killed mid-layer
      cut_blob_after: int | None      a blob GET sends this many body bytes of its response, then closes
      cut_times: int                  how many responses cut_blob_after applies to (-1: all)
      ignore_range: bool              answer Range requests with the whole blob (200)
      stall_patch: int | None         the Nth PATCH (1-based) reads part of its body, then hangs like above
      corrupt_manifests: bool         manifest GETs get one byte changed (same length)
      fail_status: int, fail_times: int   answer the next fail_times requests with fail_status (e.g. 503)
    `log` records (method, path, headers) of every request.
    """

    def __init__(self, upstream: str) -> None:
        import http.server
        import threading

        self.upstream = upstream
        self.log: list[tuple[str, str, dict[str, str]]] = []
        self.stall_blob_after: int | None = None
        self.cut_blob_after: int | None = None
        self.cut_times = -1
        self.ignore_range = False
        self.stall_patch: int | None = None
        self.corrupt_manifests = False
        self.fail_status = 503
        self.fail_times = 0
        self.patches = 0
        self.stalled = threading.Event()
        self.release = threading.Event()
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def _any(self):
                proxy.handle(self)

            do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _any

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()

    def _stall(self, handler) -> None:
        self.stalled.set()
        self.release.wait(60)
        handler.close_connection = True

    def handle(self, h) -> None:
        import http.client

        headers = {k: v for k, v in h.headers.items()}
        self.log.append((h.command, h.path, headers))
        if self.fail_times > 0:
            self.fail_times -= 1
            if int(headers.get("Content-Length") or 0):
                h.rfile.read(int(headers["Content-Length"]))
            h.send_response(self.fail_status)
            h.send_header("Content-Length", "0")
            h.end_headers()
            return
        length = int(headers.get("Content-Length") or 0)
        is_patch = h.command == "PATCH"
        if is_patch:
            self.patches += 1
        body = b""
        if length:
            if is_patch and self.stall_patch == self.patches:
                h.rfile.read(min(length, 4096))
                self._stall(h)
                return
            body = h.rfile.read(length)
        elif headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(h.rfile.readline().strip().split(b";")[0], 16)
                if size == 0:
                    h.rfile.readline()
                    break
                chunks.append(h.rfile.read(size))
                h.rfile.readline()
            body = b"".join(chunks)
            headers.pop("Transfer-Encoding")
            headers["Content-Length"] = str(len(body))
        if self.ignore_range:
            headers.pop("Range", None)
        conn = http.client.HTTPConnection(self.upstream, timeout=60)
        conn.request(h.command, h.path, body=body if (length or body) else None, headers=headers)
        resp = conn.getresponse()
        is_blob_get = h.command == "GET" and "/blobs/sha256:" in h.path and resp.status in (200, 206)
        is_manifest = h.command == "GET" and "/manifests/" in h.path and resp.status == 200
        h.send_response_only(resp.status, resp.reason)
        for k, v in resp.getheaders():
            if k.lower() not in ("transfer-encoding", "connection"):
                h.send_header(k, v)
        data = resp.read() if h.command != "HEAD" else b""
        if "Content-Length" not in dict(resp.getheaders()) and h.command != "HEAD":
            h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        conn.close()
        if is_manifest and self.corrupt_manifests and data:
            data = data[:-1] + (b" " if data[-1:] != b" " else b"\n")
        if is_blob_get and self.stall_blob_after is not None:
            h.wfile.write(data[: self.stall_blob_after])
            h.wfile.flush()
            self._stall(h)
            return
        if is_blob_get and self.cut_blob_after is not None and self.cut_times != 0 and \
                len(data) > self.cut_blob_after:
            self.cut_times -= 1
            h.wfile.write(data[: self.cut_blob_after])
            h.wfile.flush()
            h.close_connection = True
            return
        h.wfile.write(data)


class TokenServer:
    """A Bearer token server for docker-registry's `auth: token` (distribution's token spec): issues
    RS256 JWTs signed by a self-signed key made with the openssl CLI (the cert goes to the registry's
    rootcertbundle and into each token's x5c header). Users in `users` get what they ask for; anonymous
    requests get pull only. `requests` records (Authorization present, scope) of each token request."""

    def __init__(self, workdir: str, users: dict[str, str], service: str = "pybuild-test") -> None:
        import http.server
        import threading

        self.users = users
        self.service = service
        self.issuer = "pybuild-test-issuer"
        self.key = os.path.join(workdir, "token.key")
        self.cert = os.path.join(workdir, "token.crt")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", self.key,
                        "-out", self.cert, "-days", "2", "-subj", "/CN=pybuild-test-token"],
                       check=True, capture_output=True)
        der = subprocess.run(["openssl", "x509", "-in", self.cert, "-outform", "DER"], check=True,
                             capture_output=True).stdout
        import base64
        self.x5c = base64.b64encode(der).decode()
        self.requests: list[tuple[bool, list[str]]] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                server.answer(self)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/token"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def _sign(self, claims: dict) -> str:
        import base64
        import json as _json

        def b64(data: bytes) -> str:
            return base64.urlsafe_b64encode(data).rstrip(b"=").decode()
        header = {"typ": "JWT", "alg": "RS256", "x5c": [self.x5c]}
        signing_input = f"{b64(_json.dumps(header).encode())}.{b64(_json.dumps(claims).encode())}"
        sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", self.key], input=signing_input.encode(),
                             check=True, capture_output=True).stdout
        return f"{signing_input}.{b64(sig)}"

    def answer(self, h) -> None:
        import base64
        import json as _json
        import urllib.parse

        query = urllib.parse.parse_qs(urllib.parse.urlsplit(h.path).query)
        scopes = query.get("scope", [])
        auth = h.headers.get("Authorization", "")
        self.requests.append((bool(auth), scopes))
        user = None
        if auth.startswith("Basic "):
            name, _, password = base64.b64decode(auth[6:]).decode().partition(":")
            if self.users.get(name) != password:
                h.send_response(401)
                h.send_header("Content-Length", "0")
                h.end_headers()
                return
            user = name
        access = []
        for scope in scopes:
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            allowed = [a for a in actions.split(",") if a and (user or a == "pull")]
            access.append({"type": kind, "name": name, "actions": allowed})
        now = int(time.time())
        token = self._sign({"iss": self.issuer, "sub": user or "", "aud": self.service, "exp": now + 300,
                            "nbf": now - 10, "iat": now, "jti": os.urandom(8).hex(), "access": access})
        body = _json.dumps({"token": token, "expires_in": 300}).encode()
        h.send_response(200)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)
