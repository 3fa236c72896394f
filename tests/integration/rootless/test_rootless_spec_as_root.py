"""The rootless spec (`pyrunc spec --rootless`: a user namespace, /sys bound with rbind, a
`cgroup` mount at /sys/fs/cgroup) run by root, runc as the oracle: the container sees its own
cgroups. The rbind puts copies of the host's cgroup mounts under ROOTFS/sys/fs/cgroup, which the
tmpfs mounted there hides; pyrunc bound its cgroup dirs from such a copy whenever mountinfo
listed it first ("mount cgroup /sys/fs/cgroup/cpu: No such file or directory")."""

from __future__ import annotations

from pyrunc.spec import default_config


def test_rootless_spec_run_by_root_sees_its_cgroups(runtime, bundle, cid):
    config = default_config(rootless=True)
    config["process"]["terminal"] = False
    config["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 0, "size": 65536}]
    config["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 0, "size": 65536}]
    config["process"]["args"] = ["sh", "-c", "n=0; for d in /sys/fs/cgroup/*/; do n=$((n+1)); "
                                 "grep -qx 1 $d/cgroup.procs || echo missing $d; done; echo $n"]
    bundle.config = config
    bundle.write()
    for i in range(5):  # mountinfo's order is not fixed: more than one try
        p = runtime("run", "-b", bundle.path, f"{cid}-{i}", check=True)
        out = p.stdout.decode().split("\n")
        assert "missing" not in p.stdout.decode() and int(out[0]) >= 2, out  # init is in each hierarchy's own cgroup
