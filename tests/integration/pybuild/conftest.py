"""Fixtures of the pybuild integration tests that talk to a registry: Debian's docker-registry run by
the tests on 127.0.0.1 (tests/registrylib.py), one per module, stopped at teardown."""

from __future__ import annotations

import os
import shutil

import pytest

from registrylib import REGISTRY_BIN, Registry


def _need_registry() -> None:
    if not os.path.exists(REGISTRY_BIN) or shutil.which("htpasswd") is None:
        pytest.skip("needs docker-registry and htpasswd (apt-get install docker-registry apache2-utils)")


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    _need_registry()
    reg = Registry(str(tmp_path_factory.mktemp("registry"))).start()
    yield reg
    reg.stop()


@pytest.fixture(scope="module")
def auth_registry(tmp_path_factory):
    _need_registry()
    reg = Registry(str(tmp_path_factory.mktemp("registry-auth")), users={"alice": "wonderland"}).start()
    yield reg
    reg.stop()


@pytest.fixture(scope="module")
def token_registry(tmp_path_factory):
    """A registry behind Bearer token auth (distribution's token spec) with its token server."""
    _need_registry()
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl CLI to sign tokens")
    from registrylib import TokenServer
    work = str(tmp_path_factory.mktemp("registry-token"))
    token = TokenServer(work, {"alice": "wonderland"})
    reg = Registry(work, token=token).start()
    yield reg
    reg.stop()
    token.stop()


@pytest.fixture(scope="module")
def tls_registry(tmp_path_factory):
    """A registry on https://127.0.0.1 with a self-signed certificate (Registry.tls_cert)."""
    _need_registry()
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl CLI to make a certificate")
    reg = Registry(str(tmp_path_factory.mktemp("registry-tls")), tls=True).start()
    yield reg
    reg.stop()
