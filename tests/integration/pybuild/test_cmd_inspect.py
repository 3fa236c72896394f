"""pybuild inspect, with podman as the oracle: the inspect fields docker promises and their
types, --type and missing names, and --format results on the same data."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import select
import shutil
import struct
import subprocess
import sys
import termios
import time

import pytest

from netlib import Pb, free_port
from podmanlib import (SLEEP, ULIMITS, add_data, busybox_pb, container_id as _cid, one_line, podman,  # noqa: F401
                       podman_images, tar_of)
from test_build_common import make_busybox_rootfs, needs_busybox, needs_root

pytestmark = [needs_root, needs_busybox]


# ---- inspect ---------------------------------------------------------------------------------------


PROMISED = {  # docker's names the issue lists, and their JSON types
    "Id": str, "Name": str, "Image": str, "Created": str, "Path": str, "Args": list, "RestartCount": int,
    "State": dict, "State.Status": str, "State.Pid": int, "State.ExitCode": int, "State.Running": bool,
    "State.StartedAt": str, "State.FinishedAt": str, "Config": dict, "Config.Cmd": list, "Config.Env": list,
    "Config.Image": str, "Config.Hostname": str, "Mounts": list, "NetworkSettings": dict,
    "NetworkSettings.Ports": dict, "NetworkSettings.IPAddress": str, "HostConfig.PortBindings": dict,
    "HostConfig.NetworkMode": str, "GraphDriver.Name": str,
}


def _get(doc: dict, dotted: str):
    for part in dotted.split("."):
        doc = doc[part]
    return doc


def test_inspect_container_fields_as_podman(pb, podman):
    port, port2 = free_port(), free_port()
    pb("run", "-d", "--name", "web", "-p", f"{port}:1234", "-v", "vol1:/data", "busybox", *SLEEP)
    theirs = podman.run_d("-p", f"{port2}:1234", "-v", f"{podman.volume()}:/data")
    [mine] = json.loads(pb("inspect", "web").stdout)
    [want] = json.loads(podman("inspect", theirs, check=True).stdout)
    for key, kind in PROMISED.items():
        assert isinstance(_get(mine, key), kind) and isinstance(_get(want, key), kind), key
    assert mine["State"]["Status"] == want["State"]["Status"] == "running"
    pid = mine["State"]["Pid"]
    with open(f"/proc/{pid}/cgroup") as fh:  # the host pid of the container's init
        assert mine["Id"] in fh.read()
    assert mine["NetworkSettings"]["Ports"] == {"1234/tcp": [{"HostIp": "", "HostPort": str(port)}]}
    assert want["NetworkSettings"]["Ports"] == {"1234/tcp": [{"HostIp": "", "HostPort": str(port2)}]}
    assert mine["NetworkSettings"]["IPAddress"].count(".") == 3
    [m] = mine["Mounts"]
    assert (m["Type"], m["Name"], m["Destination"], m["RW"]) == ("volume", "vol1", "/data", True)
    assert m["Source"] == os.path.join(pb.root, "volumes", "vol1", "_data")
    # the same templates give the same answers (values that differ by nature left out)
    for tpl in ("{{.State.Status}} {{.State.Running}} {{.State.ExitCode}} {{.RestartCount}}",
                "{{range .Mounts}}{{.Type}} {{.Destination}} {{.RW}}{{end}}",
                "{{range $p, $b := .NetworkSettings.Ports}}{{$p}} {{len $b}}{{end}}",
                "{{index .Config.Cmd 0}} {{len .Args}} {{.Path}}",
                "{{if .State.Running}}up{{else}}down{{end}} {{with .State}}{{gt .Pid 1}}{{end}}",
                "{{.HostConfig.NetworkMode}}"):
        assert pb("inspect", "-f", tpl, "web").stdout == podman("inspect", "-f", tpl, theirs).stdout, tpl
    # a missing field: one line, 125, as podman
    assert podman("inspect", "-f", "{{.State.Foo}}", theirs).returncode == 125
    res = pb("inspect", "-f", "{{.State.Foo}}", "web", check=False)
    assert res.returncode == 125 and "can't evaluate field Foo" in one_line(res) and res.stdout == ""


def test_inspect_types_and_missing_names(pb, podman):
    pb("run", "-d", "--name", "c1", "--network", "none", "busybox", *SLEEP)
    image = json.loads(pb("inspect", "--type", "image", "busybox").stdout)[0]
    want = json.loads(podman("image", "inspect", podman.image, check=True).stdout)[0]
    for key in ("Id", "RepoTags", "Created", "Config", "Architecture", "Os", "Size", "RootFS", "History",
                "Digest", "RepoDigests", "Labels", "Author"):
        assert type(image[key]) is type(want[key]) or want[key] is None or image[key] is None, key
    assert image["Config"]["Cmd"] == ["sh"] and image["RootFS"]["Type"] == "layers"
    assert pb("inspect", "-f", "{{.Config.Cmd}} {{.Os}}", "busybox").stdout == "[sh] linux\n"
    assert pb("inspect", "-f", "{{.State.Status}}", "c1").stdout == "running\n"  # containers first
    for args, needle in ((("--type", "container", "busybox"), "no such container: busybox"),
                         (("--type", "image", "c1"), "no such image: c1"),
                         (("nosuch",), "no such object: nosuch")):
        res = pb("inspect", *args, check=False)
        assert res.returncode == 125 and needle in one_line(res)
    assert podman("inspect", "nosuch-pbt16").returncode == 125
    res = pb("inspect", "c1", "nosuch", check=False)  # found ones are printed, then the error
    assert res.returncode == 125 and len(json.loads(res.stdout)) == 1 and "no such object: nosuch" in one_line(res)
    res = pb("inspect", "-f", "{{.Id", "c1", check=False)
    assert res.returncode == 125 and "unclosed action" in one_line(res) and res.stdout == ""


def test_format_matches_podman_on_the_same_data(pb, podman):
    """Go's own templates (podman's) and ours over a volume with the same name and labels."""
    name = podman.volume("--label", "b=2", "--label", "a=1", "--label", "sp=x y")
    pb("volume", "create", "--label", "b=2", "--label", "a=1", "--label", "sp=x y", name)
    templates = [
        "{{.Name}} {{.Driver}} {{.Scope}}", "{{.Labels}}", "{{json .Labels}}", "{{.Options}}",
        "{{range $k, $v := .Labels}}{{$k}}={{$v}};{{end}}", '{{index .Labels "b"}}', "{{.Labels.zzz}}",
        "{{len .Labels}}", '{{if eq .Driver "local"}}L{{else}}?{{end}}', "{{upper .Name | lower}}",
        '{{printf "%-12s|%5d|%q|%x|%v" .Driver 42 .Name 255 .Labels}}', '{{join (split "a,b,c" ",") "+"}}',
        "{{- /* c */ -}} x {{- \" y \" -}} z", '{{title "hello world"}} {{pad "p" 1 2}}|{{truncate .Name 4}}',
        "{{range split \"x y z\" \" \"}}{{if eq . \"y\"}}{{continue}}{{end}}{{.}}{{end}}",
        "{{$n := .Name}}{{with .Labels}}{{$n}}:{{.a}}{{end}}", "{{and 1 0 2}} {{or 0 \"\" 3}} {{not 0}}",
        "{{lt 1 2}} {{le 2 2}} {{gt 1.5 2.5}} {{ge \"b\" \"a\"}} {{ne 1 2}} {{eq 1 2 1}}",
        "{{print 1 2 \"a\" \"b\" 3}}|{{println 1 \"x\"}}", "{{0x10}} {{1e3}} {{'a'}} {{1_000}} {{-3}}",
        "{{slice \"abcdef\" 1 3}} {{len \"héllo\"}}", '{{printf "%d %s" "x" 5}}',
    ]
    for tpl in templates:
        want = podman("volume", "inspect", "--format", tpl, name)
        got = pb("volume", "inspect", "--format", tpl, name, check=False)
        assert (got.returncode, got.stdout) == (want.returncode, want.stdout), tpl
    for bad in ("{{.Nope}}", "{{.Name", "{{nosuch .Name}}", "{{index .Labels 1}}"):
        assert podman("volume", "inspect", "--format", bad, name).returncode == 125
        res = pb("volume", "inspect", "--format", bad, name, check=False)
        assert res.returncode == 125 and res.stdout == "", bad
        one_line(res)


# ---- top, port -------------------------------------------------------------------------------------
