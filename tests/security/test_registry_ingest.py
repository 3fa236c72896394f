"""A registry or a local attacker against pull's resumable downloads (pybuild.registry.ingest).

The partial file of a blob has a predictable name (ROOT/ingest/<hex>) so that a later pull can resume
it; these are the ways that name could be abused, and each must be refused before a byte is written.
No registry is needed: the refusals happen before any request.
"""

from __future__ import annotations

import os

import pytest

from pybuild.errors import StoreError
from pybuild.image import Descriptor
from pybuild.registry.errors import RegistryError
from pybuild.registry.ingest import fetch_blob, ingest_dir
from pybuild.store import Store

DIGEST = "sha256:" + "ab" * 32


class NoNetwork:
    class transport:
        backoff = 0.0

    def open_blob(self, *a, **k):
        raise AssertionError("must refuse before asking the registry")


def test_partial_file_that_is_a_symlink_is_refused(tmp_path):
    store = Store(str(tmp_path / "store"))
    victim = tmp_path / "victim"
    victim.write_text("host file\n")
    os.symlink(victim, os.path.join(ingest_dir(store), DIGEST[7:]))
    with pytest.raises(RegistryError, match="symbolic link"):
        fetch_blob(store, NoNetwork(), Descriptor("x", DIGEST, 10))
    assert victim.read_text() == "host file\n"


def test_partial_file_that_is_a_hard_link_is_refused(tmp_path):
    store = Store(str(tmp_path / "store"))
    victim = tmp_path / "store" / "victim"
    victim.write_text("host file\n")
    os.link(victim, os.path.join(ingest_dir(store), DIGEST[7:]))
    with pytest.raises(RegistryError, match="not a plain file"):
        fetch_blob(store, NoNetwork(), Descriptor("x", DIGEST, 10))
    assert victim.read_text() == "host file\n"


@pytest.mark.parametrize("digest", ["sha256:../../../etc/passwd", "sha256:" + "A" * 64, "md5:" + "a" * 32])
def test_manifest_digest_cannot_name_a_path(tmp_path, digest):
    store = Store(str(tmp_path / "store"))
    with pytest.raises(StoreError, match="invalid digest"):
        fetch_blob(store, NoNetwork(), Descriptor("x", digest, 10))


def test_ingest_dir_is_private(tmp_path):
    store = Store(str(tmp_path / "store"))
    os.makedirs(os.path.join(store.root, "ingest"), mode=0o777)
    os.chmod(os.path.join(store.root, "ingest"), 0o777)
    assert os.stat(ingest_dir(store)).st_mode & 0o777 == 0o700
