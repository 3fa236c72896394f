"""sysctl.validate_sysctl: only namespaced keys, no path tricks (CVE-2025-52881)."""

from __future__ import annotations

import pytest

from pyrunc.errors import ConfigError
from pyrunc.sysctl import key_to_path, validate_sysctl

ALL = {"ipc", "network", "uts", "mount", "pid"}


@pytest.mark.parametrize("key", ["kernel/../../sysrq-trigger", "../sysrq-trigger", "kernel..shmmax",
                                 ".kernel.shmmax", "kernel.shmmax.", "net.ipv4.conf.all/../x", "",
                                 "net.ipv4.ip forward", "kernel.shm\0max", "net/ipv4/ip_forward"])
def test_path_tricks_are_refused(key: str) -> None:
    with pytest.raises(ConfigError) as err:
        validate_sysctl({key: "1"}, ALL)
    assert "linux.sysctl" in str(err.value)


@pytest.mark.parametrize("key", ["kernel.core_pattern", "kernel.modprobe", "vm.overcommit_memory",
                                 "fs.file-max", "kernel.sysrq", "kernel.shm_next_id_x"])
def test_host_wide_sysctls_are_refused(key: str) -> None:
    with pytest.raises(ConfigError, match="not in a separate kernel namespace"):
        validate_sysctl({key: "1"}, ALL)


def test_ipc_sysctls_need_an_ipc_namespace() -> None:
    good = {"kernel.shmmax": "1", "kernel.msgmnb": "2", "kernel.sem": "1 2 3 4", "fs.mqueue.msg_max": "5"}
    assert validate_sysctl(good, {"ipc"}) == {"kernel/shmmax": "1", "kernel/msgmnb": "2",
                                               "kernel/sem": "1 2 3 4", "fs/mqueue/msg_max": "5"}
    with pytest.raises(ConfigError, match="host's ipc namespace"):
        validate_sysctl({"kernel.shmmax": "1"}, {"network", "uts"})


def test_net_sysctls_need_a_network_namespace() -> None:
    assert validate_sysctl({"net.ipv4.ip_forward": "1"}, {"network"}) == {"net/ipv4/ip_forward": "1"}
    with pytest.raises(ConfigError, match="host's network namespace"):
        validate_sysctl({"net.ipv4.ip_forward": "1"}, {"ipc"})
    with pytest.raises(ConfigError, match="host's network namespace"):
        validate_sysctl({"net.ipv4.ip_forward": "1"}, {"network"}, host_netns=True)


def test_uts_sysctls() -> None:
    assert validate_sysctl({"kernel.domainname": "x"}, {"uts"}) == {"kernel/domainname": "x"}
    with pytest.raises(ConfigError, match="host's uts namespace"):
        validate_sysctl({"kernel.domainname": "x"}, {"ipc"})
    with pytest.raises(ConfigError, match="hostname"):
        validate_sysctl({"kernel.hostname": "x"}, {"uts"})


def test_key_to_path() -> None:
    assert key_to_path("net.ipv6.conf.all.disable_ipv6") == "net/ipv6/conf/all/disable_ipv6"
