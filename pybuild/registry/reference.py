"""Image references as docker parses them (distribution/reference): pure, no I/O.

    parse("busybox")                      -> docker.io / library/busybox : latest
    parse("127.0.0.1:5000/app:1")         -> 127.0.0.1:5000 / app : 1
    parse("ghcr.io/o/r@sha256:…")         -> ghcr.io / o/r @ sha256:…
    parse("docker://localhost/x")         -> the transport prefix skopeo and podman accept is dropped

The first path component is a registry host when it holds a '.' or a ':' or is 'localhost' (docker's
rule); otherwise the reference is on Docker Hub and a one-component path gets 'library/'. Repository
components are lower-case [a-z0-9] runs joined by '.', '_', '__' or '-' runs; tags are [A-Za-z0-9_][-.\\w]{0,127}.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pybuild.registry.errors import ReferenceError_

DOCKER_HUB = "docker.io"
DOCKER_HUB_API = "registry-1.docker.io"
_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*")
_TAG = re.compile(r"[\w][\w.-]{0,127}")
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
_HOST = re.compile(r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*"
                   r"|\[[0-9a-fA-F:.]+\])(?::[0-9]+)?")
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1", "[::1]")


@dataclass(frozen=True, slots=True)
class Reference:
    domain: str                 # "docker.io", "127.0.0.1:5000"
    repository: str             # "library/busybox"
    tag: str | None = None      # None when only a digest was given
    digest: str | None = None

    @property
    def api_host(self) -> str:
        """host[:port] the HTTP requests go to (Docker Hub's API host differs from its name)."""
        return DOCKER_HUB_API if self.domain == DOCKER_HUB else self.domain

    @property
    def name(self) -> str:
        """domain/repository, without tag or digest."""
        return f"{self.domain}/{self.repository}"

    @property
    def object(self) -> str:
        """What GET /v2/<repo>/manifests/<object> asks for: the digest if given, else the tag."""
        return self.digest or self.tag or "latest"

    def __str__(self) -> str:
        text = self.name
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text

    def familiar(self) -> str:
        """The short form docker shows (and pybuild's store uses): Docker Hub's prefix dropped."""
        name = self.name
        if self.domain == DOCKER_HUB:
            name = self.repository[len("library/"):] if self.repository.startswith("library/") else self.repository
        if self.tag:
            name += f":{self.tag}"
        if self.digest:
            name += f"@{self.digest}"
        return name

    def with_tag(self, tag: str | None, digest: str | None = None) -> "Reference":
        return Reference(self.domain, self.repository, tag, digest)

    def is_loopback(self) -> bool:
        return host_is_loopback(self.domain)


def host_is_loopback(host: str) -> bool:
    """localhost, 127.0.0.0/8 and ::1 (with or without a port): docker talks plain HTTP to these."""
    name = host
    if name.startswith("["):
        name = name[1:name.find("]")] if "]" in name else name
    elif name.count(":") == 1:
        name = name.rsplit(":", 1)[0]
    return name in LOOPBACK_HOSTS or name.startswith("127.")


def has_domain(text: str) -> bool:
    """True when the reference names its registry (docker's rule for the first path component)."""
    text = strip_transport(text)
    first, slash, _ = text.partition("/")
    return bool(slash) and ("." in first or ":" in first or first == "localhost" or first.startswith("["))


def strip_transport(text: str) -> str:
    return text[len("docker://"):] if text.startswith("docker://") else text


def parse(text: str, default_tag: str | None = "latest") -> Reference:
    """Parse and normalise; raises ReferenceError_ naming what is wrong."""
    original = text
    text = strip_transport(text.strip())
    if not text:
        raise ReferenceError_("invalid reference: empty")
    digest = None
    if "@" in text:
        text, _, digest = text.partition("@")
        if not _DIGEST.fullmatch(digest):
            raise ReferenceError_(f"invalid reference {original!r}: digest must be sha256:<64 hex>")
    tag = None
    slash = text.rfind("/")
    colon = text.rfind(":")
    if colon > slash:
        text, tag = text[:colon], text[colon + 1:]
        if not _TAG.fullmatch(tag):
            raise ReferenceError_(f"invalid reference {original!r}: invalid tag {tag!r}")
    if has_domain(text):
        domain, _, path = text.partition("/")
        if not _HOST.fullmatch(domain):
            raise ReferenceError_(f"invalid reference {original!r}: invalid registry host {domain!r}")
        if domain in ("index.docker.io", DOCKER_HUB_API):
            domain = DOCKER_HUB
    else:
        domain, path = DOCKER_HUB, text
    if domain == DOCKER_HUB and "/" not in path:
        path = f"library/{path}"
    for component in path.split("/"):
        if not _COMPONENT.fullmatch(component):
            raise ReferenceError_(f"invalid reference {original!r}: repository name must be lowercase "
                                  f"[a-z0-9] words joined by '.', '_' or '-' (got {component!r})")
    if len(path) > 255:
        raise ReferenceError_(f"invalid reference {original!r}: repository name longer than 255 characters")
    if tag is None and digest is None:
        tag = default_tag
    return Reference(domain, path, tag, digest)


def parse_platform(text: str) -> dict[str, str]:
    """`os/arch[/variant]` (docker's --platform) -> an OCI platform dict; arch aliases as containerd."""
    parts = [p.strip().lower() for p in text.split("/")]
    if not 2 <= len(parts) <= 3 or not all(parts):
        raise ReferenceError_(f"--platform {text!r}: expected os/arch[/variant]")
    arch = {"x86_64": "amd64", "x86-64": "amd64", "aarch64": "arm64", "armhf": "arm", "i386": "386"}.get(
        parts[1], parts[1])
    out = {"os": parts[0], "architecture": arch}
    if len(parts) == 3:
        out["variant"] = parts[2]
    elif arch == "arm64":
        out["variant"] = "v8"  # containerd normalises arm64 to arm64/v8 and treats them as equal
    return out
