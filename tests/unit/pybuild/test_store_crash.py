"""A writer killed with SIGKILL at any moment leaves a valid store (DESIGN §5)."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from pybuild.store import Store

WRITER = textwrap.dedent("""
    import os, sys
    from pybuild.layer import commit_layer
    from pybuild.mutate import Mutator
    from pybuild.store import Store
    store = Store(sys.argv[1])
    src = sys.argv[2]
    i = 0
    while True:
        i += 1
        with open(os.path.join(src, "counter"), "w") as f:
            f.write(str(i))
        desc, digests = commit_layer(store, src)
        m = Mutator(store)
        m.add_layer(desc, digests.diff_id, f"step {i}")
        manifest = m.commit()
        store.tag(f"img:{i % 3}", manifest)
        image = store.load_image(f"img:{i % 3}")
        store.ensure_layers(image.manifest, image.config)
        print(i, flush=True)
""")


@pytest.mark.parametrize("delay", [0.15, 0.4, 0.9])
def test_sigkill_mid_commit_leaves_a_valid_store(tmp_path, delay):
    src = tmp_path / "src"
    src.mkdir()
    for n in range(8):
        (src / f"f{n}").write_bytes(os.urandom(1 << 20))
    root = str(tmp_path / "store")
    Store(root)
    proc = subprocess.Popen([sys.executable, "-c", WRITER, root, str(src)], stdout=subprocess.PIPE)
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    store = Store(root)
    json.loads(open(store.index_path).read())  # parses: never half-written
    for name in os.listdir(store.blob_dir):
        if name.startswith(".tmp-"):
            continue
        data = open(os.path.join(store.blob_dir, name), "rb").read()
        assert hashlib.sha256(data).hexdigest() == name  # a visible blob is always complete
    for name, _ in store.list_refs():
        image = store.load_image(name)
        for desc in image.manifest.layers:
            store.verify_blob(desc.digest)
        store.ensure_layers(image.manifest, image.config)
    for entry in os.listdir(store.layers_root):
        if not entry.startswith(".tmp-"):
            assert os.path.isfile(os.path.join(store.layers_root, entry, "layer.json"))
    store.gc()
    assert not [n for n in os.listdir(store.blob_dir) + os.listdir(store.layers_root) if n.startswith(".tmp-")]
