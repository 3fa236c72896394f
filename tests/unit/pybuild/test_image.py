"""image.py: chainIDs recomputed by hand, canonical JSON, tolerant parsing."""

from __future__ import annotations

import hashlib
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pybuild.errors import StoreError
from pybuild.image import (MT_CONFIG, MT_LAYER_GZIP, ContainerConfig, Descriptor, History, ImageConfig, Manifest,
                           RootFS, chain_id, chain_ids, format_time, parse_config, parse_manifest, to_json)


def _sha(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def test_chain_ids_follow_the_image_spec_formula():
    d = [_sha("a"), _sha("b"), _sha("c")]
    c1 = d[0]
    c2 = "sha256:" + hashlib.sha256(f"{c1} {d[1]}".encode()).hexdigest()
    c3 = "sha256:" + hashlib.sha256(f"{c2} {d[2]}".encode()).hexdigest()
    assert chain_ids(d) == [c1, c2, c3]
    assert chain_id(d) == c3
    assert chain_id([]) is None


def test_canonical_json_is_compact_ordered_and_html_escaped():
    cfg = ImageConfig(created="2024-01-01T00:00:00Z",
                      config=ContainerConfig(env=("A=<b>&",), cmd=("sh",), labels={"z": "1", "a": "2"}),
                      rootfs=RootFS(diff_ids=(_sha("x"),)),
                      history=(History(created_by="RUN x", empty_layer=True),))
    data = to_json(cfg)
    assert b" " not in data.replace(b"RUN x", b"")
    assert b"\\u003cb\\u003e\\u0026" in data
    keys = list(json.loads(data))
    assert keys == ["created", "architecture", "os", "config", "rootfs", "history"]
    assert list(json.loads(data)["config"]["Labels"]) == ["a", "z"]
    assert json.loads(data)["history"] == [{"created_by": "RUN x", "empty_layer": True}]


def test_empty_fields_are_omitted_but_empty_cmd_is_kept():
    assert ContainerConfig().to_dict() == {}
    assert ContainerConfig(cmd=()).to_dict() == {"Cmd": []}


def test_config_roundtrip():
    cfg = ImageConfig(created="2024-01-01T00:00:00.5Z", author="me",
                      config=ContainerConfig(user="1:2", exposed_ports=("80/tcp",), env=("PATH=/bin",),
                                             entrypoint=("/e",), cmd=("c",), volumes=("/v",), working_dir="/w",
                                             labels={"k": "v"}, stop_signal="SIGTERM",
                                             healthcheck={"Test": ["CMD", "true"]}, on_build=("RUN x",),
                                             shell=("/bin/sh", "-c")),
                      rootfs=RootFS(diff_ids=(_sha("1"), _sha("2"))),
                      history=(History(created="t", created_by="b", comment="c"),))
    assert parse_config(to_json(cfg)) == cfg


def test_manifest_roundtrip_and_errors():
    m = Manifest(config=Descriptor(MT_CONFIG, _sha("c"), 3),
                 layers=(Descriptor(MT_LAYER_GZIP, _sha("l"), 9, annotations={"x": "y"}),))
    assert parse_manifest(to_json(m)) == m
    with pytest.raises(StoreError, match="manifest: missing field config"):
        parse_manifest(b'{"layers": []}')
    with pytest.raises(StoreError, match="invalid JSON"):
        parse_manifest(b"{")
    with pytest.raises(StoreError, match="descriptor"):
        parse_manifest(b'{"config": {"mediaType": "x"}}')


def test_format_time_matches_go_rfc3339nano():
    assert format_time(0) == "1970-01-01T00:00:00Z"
    assert format_time(1.5) == "1970-01-01T00:00:01.5Z"


def test_docker_config_fields_are_tolerated():
    doc = {"architecture": "amd64", "os": "linux", "container_config": {"Hostname": "x"},
           "config": {"Hostname": "", "Env": ["A=1"], "Cmd": None, "Entrypoint": "/bin/sh"},
           "rootfs": {"type": "layers", "diff_ids": []}}
    cfg = parse_config(json.dumps(doc).encode())
    assert cfg.config.env == ("A=1",)
    assert cfg.config.cmd is None
    assert cfg.config.entrypoint == ("/bin/sh",)


@given(env=st.lists(st.text(min_size=1, max_size=8).map(lambda s: "K=" + s), max_size=4),
       cmd=st.none() | st.lists(st.text(max_size=8), max_size=3).map(tuple),
       labels=st.dictionaries(st.text(min_size=1, max_size=5), st.text(max_size=5), max_size=3))
def test_container_config_roundtrip_property(env, cmd, labels):
    cfg = ContainerConfig(env=tuple(env), cmd=cmd, labels=labels)
    assert ContainerConfig.from_dict(json.loads(to_json(cfg))) == cfg
