"""Kubernetes through containerd's CRI: pyrunc as a runtime handler, runc as the oracle.

The test starts Debian's containerd 1.6 with the CRI plugin and its own root,
state and socket (docs/KUBERNETES.md has the same configuration), imports a
locally built image (busybox-static; its entrypoint sleeps forever, so it is
also the pause image: no pause binary is packaged here), and drives the CRI
gRPC API as the kubelet does, through a client generated at test time from
the cri-api protobuf kept in tests/data/cri. Pods use the host network, so no
CNI plugin is needed. The same sequence runs under the handler "pyrunc" and
the handler "runc"; the outcomes must be the same.

Not exercised here: a kubelet or crictl (neither is packaged), the streaming
side of Exec/Attach/PortForward (the API returns a URL; following it needs a
SPDY/websocket client), pod networking through CNI, and tty exec (pyrunc has
no terminal support yet: Exec with tty only gets its URL).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import time
import uuid

import pytest

from testlib import PYRUNC

HERE = os.path.dirname(os.path.abspath(__file__))
PROTO = os.path.join(HERE, "..", "..", "data", "cri", "api.proto")
IMAGE = "localhost/pyrunc-test/busybox:1"
PAUSE = "localhost/pyrunc-test/pause:1"

pytestmark = [
    pytest.mark.skipif(shutil.which("containerd") is None or shutil.which("ctr") is None,
                       reason="containerd is not installed (apt-get install containerd)"),
    pytest.mark.skipif(shutil.which("containerd-shim-runc-v2") is None, reason="no containerd-shim-runc-v2"),
    pytest.mark.skipif(shutil.which("runc") is None, reason="runc (the oracle) is not installed"),
]


# ---------------------------------------------------------------- the client
def _client_modules(outdir: str):
    """api_pb2 and api_pb2_grpc generated from the kept .proto (gogoproto
    options dropped: Go generation hints, nothing on the wire)."""
    grpc_tools = pytest.importorskip("grpc_tools.protoc", reason="grpcio-tools is not installed")
    pytest.importorskip("grpc", reason="grpcio is not installed")
    with open(PROTO) as f:
        text = "".join(line for line in f if "gogoproto" not in line)
    os.makedirs(outdir, exist_ok=True)
    with open(os.path.join(outdir, "api.proto"), "w") as f:
        f.write(text)
    include = os.path.join(os.path.dirname(grpc_tools.__file__), "_proto")
    rc = grpc_tools.main(["protoc", f"-I{outdir}", f"-I{include}", f"--python_out={outdir}",
                          f"--grpc_python_out={outdir}", os.path.join(outdir, "api.proto")])
    assert rc == 0, "protoc failed on the CRI proto"
    sys.path.insert(0, outdir)
    try:
        import api_pb2
        import api_pb2_grpc
    finally:
        sys.path.remove(outdir)
    return api_pb2, api_pb2_grpc


# ---------------------------------------------------------------- the image
def _tar_bytes(root: str) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            for name in sorted(dirnames) + sorted(filenames):
                full = os.path.join(dirpath, name)
                info = tar.gettarinfo(full, os.path.relpath(full, root))
                info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "root", "root"
                if info.isreg():
                    with open(full, "rb") as f:
                        tar.addfile(info, f)
                else:
                    tar.addfile(info)
    return buf.getvalue()


def _blob(layout: str, data: bytes) -> dict:
    digest = hashlib.sha256(data).hexdigest()
    with open(os.path.join(layout, "blobs", "sha256", digest), "wb") as f:
        f.write(data)
    return {"digest": f"sha256:{digest}", "size": len(data)}


def _image_archive(tmp: str, root: str) -> str:
    """An OCI archive with one layer, the busybox-static tree the other tests
    use, named twice: the container image, and the pause image (entrypoint:
    sleep forever)."""
    layout = os.path.join(tmp, "layout")
    os.makedirs(os.path.join(layout, "blobs", "sha256"))
    layer = _tar_bytes(root)
    layer_desc = {"mediaType": "application/vnd.oci.image.layer.v1.tar", **_blob(layout, layer)}
    config = {"architecture": "amd64", "os": "linux",
              "config": {"Entrypoint": ["/bin/sleep"], "Cmd": ["2147483647"],
                         "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]},
              "rootfs": {"type": "layers", "diff_ids": [layer_desc["digest"]]}}
    config_desc = {"mediaType": "application/vnd.oci.image.config.v1+json",
                   **_blob(layout, json.dumps(config).encode())}
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": config_desc, "layers": [layer_desc]}
    manifest_desc = {"mediaType": "application/vnd.oci.image.manifest.v1+json",
                     **_blob(layout, json.dumps(manifest).encode())}
    index = {"schemaVersion": 2, "manifests": [
        {**manifest_desc, "annotations": {"io.containerd.image.name": name,
                                          "org.opencontainers.image.ref.name": name.rsplit(":", 1)[1]}}
        for name in (IMAGE, PAUSE)]}
    with open(os.path.join(layout, "index.json"), "w") as f:
        json.dump(index, f)
    with open(os.path.join(layout, "oci-layout"), "w") as f:
        json.dump({"imageLayoutVersion": "1.0.0"}, f)
    archive = os.path.join(tmp, "image.tar")
    with tarfile.open(archive, "w") as tar:
        for name in ("oci-layout", "index.json", "blobs"):
            tar.add(os.path.join(layout, name), name)
    return archive


# ---------------------------------------------------------------- containerd
def containerd_config(tmp: str, pyrunc_bin: str, runc_bin: str) -> str:
    """The configuration docs/KUBERNETES.md documents, with private paths."""
    return f"""version = 2
root = "{tmp}/root"
state = "{tmp}/state"
[grpc]
  address = "{tmp}/containerd.sock"
[ttrpc]
  address = "{tmp}/containerd.sock.ttrpc"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{PAUSE}"
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false
  # root here lacks CAP_SYS_RESOURCE: never ask for an oom_score_adj below containerd's own
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{tmp}/cni-bin"
    conf_dir = "{tmp}/cni-conf"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.pyrunc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.pyrunc.options]
        BinaryName = "{pyrunc_bin}"
        Root = "{tmp}/runtime-root/pyrunc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = "{runc_bin}"
        Root = "{tmp}/runtime-root/runc"
"""


# containerd's cgroup library (v1) wants every hierarchy a process is in to be
# mounted. On this host net_cls,net_prio is a hierarchy of its own that is not
# mounted in the initial mount namespace, so ContainerStats fails for runc and
# pyrunc alike ("cannot find cgroup mount destination"). containerd therefore
# runs in a private mount namespace whose /sys/fs/cgroup is a copy of the
# host's (bind mounts of every entry) plus that hierarchy, as systemd would
# mount it; nothing changes on the host.
CGROUP_VIEW = r"""set -e
view=$1
if grep -q '^net_cls' /proc/cgroups && ! grep -q ' - cgroup .*net_cls' /proc/self/mountinfo; then
    mount -t tmpfs -o mode=755 cgroup-view "$view"
    for e in /sys/fs/cgroup/*; do
        n=${e##*/}
        if [ -L "$e" ]; then cp -P "$e" "$view/"; else mkdir "$view/$n"; mount --rbind "$e" "$view/$n"; fi
    done
    mkdir "$view/net_cls,net_prio"
    mount -t cgroup -o net_cls,net_prio cgroup "$view/net_cls,net_prio"
    ln -s net_cls,net_prio "$view/net_cls"
    ln -s net_cls,net_prio "$view/net_prio"
    mount --move "$view" /sys/fs/cgroup
fi"""


class Containerd:
    def __init__(self, tmp: str) -> None:
        self.tmp = tmp
        for d in ("cni-bin", "cni-conf", "runtime-root"):
            os.makedirs(os.path.join(tmp, d), exist_ok=True)
        self.config = os.path.join(tmp, "config.toml")
        with open(self.config, "w") as f:
            f.write(containerd_config(tmp, PYRUNC, shutil.which("runc")))
        self.socket = os.path.join(tmp, "containerd.sock")
        self.log = open(os.path.join(tmp, "containerd.log"), "wb")
        view = os.path.join(tmp, "cgroup-view")
        os.makedirs(view, exist_ok=True)
        self.proc = subprocess.Popen(["unshare", "--mount", "--propagation", "private", "sh", "-c",
                                      CGROUP_VIEW + '\nexec containerd --config "$2"', "sh", view, self.config],
                                     stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 30
        while not os.path.exists(self.socket):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"containerd did not start: {self.tail()}")
            time.sleep(0.1)

    def tail(self) -> str:
        self.log.flush()
        with open(self.log.name, "rb") as f:
            return f.read()[-3000:].decode(errors="replace")

    def ctr(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["ctr", "-a", self.socket, "-n", "k8s.io", *args], capture_output=True,
                              timeout=120)

    def stop(self) -> None:
        shims = _shims_of(self.socket)
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for pid in shims:  # normally gone with their tasks; never leave one behind
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.log.close()
        _unmount_under(self.tmp)


def _shims_of(address: str) -> list[int]:
    """Shims started for this containerd (their command line names its socket)."""
    out = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read().split(b"\0")
        except OSError:
            continue
        if cmd and cmd[0].endswith(b"containerd-shim-runc-v2") and address.encode() in b" ".join(cmd):
            out.append(int(pid))
    return out


def _unmount_under(path: str) -> None:
    with open("/proc/self/mountinfo") as f:
        points = [ln.split()[4] for ln in f]
    for point in sorted((p for p in points if p.startswith(path + "/")), key=len, reverse=True):
        subprocess.run(["umount", "-l", point], capture_output=True)


def wait_for_images(api, images, timeout: float = 30) -> None:
    """The CRI plugin learns of imported images from events: wait until it has both."""
    deadline = time.monotonic() + timeout
    for name in (PAUSE, IMAGE):
        while not images.ImageStatus(api.ImageStatusRequest(image=api.ImageSpec(image=name)), timeout=30).image.id:
            assert time.monotonic() < deadline, f"the CRI plugin never saw {name}"
            time.sleep(0.2)


# ---------------------------------------------------------------- the kubelet's part
def _pod_lifecycle(api, stub, handler: str, cgroup_parent: str, log_dir: str) -> dict:
    """What a kubelet does for a one-container pod; returns what it saw."""
    seen: dict = {}
    name = f"pod-{handler}-{uuid.uuid4().hex[:6]}"
    sandbox_config = api.PodSandboxConfig(
        metadata=api.PodSandboxMetadata(name=name, uid=uuid.uuid4().hex, namespace="pyrunc-test", attempt=0),
        log_directory=log_dir,  # no hostname: host-network pods keep the node's (kubelet)
        linux=api.LinuxPodSandboxConfig(
            cgroup_parent=cgroup_parent,
            security_context=api.LinuxSandboxSecurityContext(
                namespace_options=api.NamespaceOption(network=api.NODE, pid=api.CONTAINER, ipc=api.POD))))
    pod = stub.RunPodSandbox(api.RunPodSandboxRequest(config=sandbox_config, runtime_handler=handler),
                             timeout=60).pod_sandbox_id
    status = stub.PodSandboxStatus(api.PodSandboxStatusRequest(pod_sandbox_id=pod), timeout=30)
    seen["sandbox state"] = api.PodSandboxState.Name(status.status.state)
    container_config = api.ContainerConfig(
        metadata=api.ContainerMetadata(name="main", attempt=0), image=api.ImageSpec(image=IMAGE),
        command=["sh", "-c", "echo started; exec sleep 600"], log_path="main.log",
        linux=api.LinuxContainerConfig(resources=api.LinuxContainerResources(
            memory_limit_in_bytes=64 << 20, cpu_shares=256)))
    ctr = stub.CreateContainer(api.CreateContainerRequest(
        pod_sandbox_id=pod, config=container_config, sandbox_config=sandbox_config), timeout=60).container_id
    stub.StartContainer(api.StartContainerRequest(container_id=ctr), timeout=60)
    seen["container state"] = api.ContainerState.Name(
        stub.ContainerStatus(api.ContainerStatusRequest(container_id=ctr), timeout=30).status.state)

    def exec_sync(script: str) -> tuple[int, str]:
        r = stub.ExecSync(api.ExecSyncRequest(container_id=ctr, cmd=["sh", "-c", script], timeout=30), timeout=60)
        return r.exit_code, r.stdout.decode().strip()

    seen["exec"] = exec_sync("echo hello; id -u")
    seen["exec exit code"] = exec_sync("exit 7")[0]
    seen["host network"] = exec_sync("test -d /sys/class/net/lo && ls /sys/class/net | grep -c -v '^lo$' | "
                                     "awk '{print ($1 > 0)}'")
    memcg = "/sys/fs/cgroup/memory"  # the container's own cgroup: the runtime mounts it there
    seen["memory limit"] = exec_sync(f"cat {memcg}/memory.limit_in_bytes")
    url = stub.Exec(api.ExecRequest(container_id=ctr, cmd=["sh"], tty=True, stdin=True, stdout=True),
                    timeout=30).url
    seen["exec url"] = url.startswith("http://127.0.0.1:")
    stats = stub.ContainerStats(api.ContainerStatsRequest(container_id=ctr), timeout=30).stats
    seen["stats"] = (stats.attributes.id == ctr, stats.memory.working_set_bytes.value > 0,
                     stats.cpu.usage_core_nano_seconds.value > 0)
    stub.UpdateContainerResources(api.UpdateContainerResourcesRequest(
        container_id=ctr, linux=api.LinuxContainerResources(memory_limit_in_bytes=96 << 20, cpu_shares=512)),
        timeout=60)
    seen["updated memory limit"] = exec_sync(f"cat {memcg}/memory.limit_in_bytes")
    with open(os.path.join(log_dir, "main.log")) as f:
        seen["log"] = [line.split(" ", 3)[-1].strip() for line in f][:1]
    stub.StopContainer(api.StopContainerRequest(container_id=ctr, timeout=5), timeout=60)
    final = stub.ContainerStatus(api.ContainerStatusRequest(container_id=ctr), timeout=30).status
    seen["stopped"] = (api.ContainerState.Name(final.state), final.exit_code)
    stub.RemoveContainer(api.RemoveContainerRequest(container_id=ctr), timeout=60)
    stub.StopPodSandbox(api.StopPodSandboxRequest(pod_sandbox_id=pod), timeout=60)
    stub.RemovePodSandbox(api.RemovePodSandboxRequest(pod_sandbox_id=pod), timeout=60)
    seen["pods left"] = len(stub.ListPodSandbox(api.ListPodSandboxRequest(), timeout=30).items)
    return seen


def _remove_pods(api, stub) -> None:
    import grpc

    try:
        for pod in stub.ListPodSandbox(api.ListPodSandboxRequest(), timeout=30).items:
            stub.StopPodSandbox(api.StopPodSandboxRequest(pod_sandbox_id=pod.id), timeout=60)
            stub.RemovePodSandbox(api.RemovePodSandboxRequest(pod_sandbox_id=pod.id), timeout=60)
    except grpc.RpcError:
        pass  # containerd is gone or wedged: _remove_cgroups still ends what ran


def _remove_cgroups(parent: str) -> None:
    """Kill what is left in the test's own cgroup parent (processes this test
    started, through containerd), then remove the cgroups, deepest first."""
    for hierarchy in sorted(os.listdir("/sys/fs/cgroup")):
        top = f"/sys/fs/cgroup/{hierarchy}{parent}"
        if not os.path.isdir(top):
            continue
        dirs = sorted((dp for dp, _, _ in os.walk(top)), key=len, reverse=True)
        for d in dirs:
            with open(os.path.join(d, "cgroup.procs")) as f:
                for pid in f.read().split():
                    try:
                        os.kill(int(pid), signal.SIGKILL)
                    except ProcessLookupError:
                        pass
        for d in dirs:
            for _ in range(50):
                try:
                    os.rmdir(d)
                    break
                except OSError:
                    time.sleep(0.1)  # the killed processes are still leaving
    # the net_cls,net_prio hierarchy containerd's view mounted (CGROUP_VIEW) is
    # mounted nowhere here: mount it privately to remove what was made there
    subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c",
                    'v=$(mktemp -d); mount -t cgroup -o net_cls,net_prio cgroup "$v" && for i in $(seq 50); do '
                    '[ -d "$v$1" ] || break; find "$v$1" -depth -type d -exec rmdir {} + 2>/dev/null; sleep 0.1; '
                    'done; umount "$v"; rmdir "$v"',
                    "sh", parent], capture_output=True, timeout=60)


def test_pod_through_cri_same_as_runc(tmp_path, busybox_rootfs):
    api, grpc_api = _client_modules(str(tmp_path / "client"))
    import grpc

    archive = _image_archive(str(tmp_path), busybox_rootfs)
    daemon = Containerd(str(tmp_path / "containerd"))
    parent = f"/pyrunc/cri-{uuid.uuid4().hex[:8]}"
    stub = None
    try:
        imported = daemon.ctr("images", "import", "--no-unpack", archive)
        assert imported.returncode == 0, imported.stderr
        channel = grpc.insecure_channel(f"unix://{daemon.socket}")
        stub = grpc_api.RuntimeServiceStub(channel)
        images = grpc_api.ImageServiceStub(channel)
        version = stub.Version(api.VersionRequest(), timeout=30)
        assert version.runtime_api_version == "v1"
        wait_for_images(api, images)
        results = {}
        for handler in ("runc", "pyrunc"):
            log_dir = tmp_path / f"logs-{handler}"
            log_dir.mkdir()
            results[handler] = _pod_lifecycle(api, stub, handler, parent, str(log_dir))
        expected = {"sandbox state": "SANDBOX_READY", "container state": "CONTAINER_RUNNING",
                    "exec": (0, "hello\n0"), "exec exit code": 7,
                    "host network": (0, "1"), "memory limit": (0, str(64 << 20)), "exec url": True,
                    "stats": (True, True, True), "updated memory limit": (0, str(96 << 20)),
                    "log": ["started"], "stopped": ("CONTAINER_EXITED", 143), "pods left": 0}
        assert results["runc"] == expected, daemon.tail()
        assert results["pyrunc"] == results["runc"], daemon.tail()
    finally:
        if stub is not None:
            _remove_pods(api, stub)  # after a failure half-way: what the kubelet would clean up
        daemon.stop()
        _remove_cgroups(parent)
