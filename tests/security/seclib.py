"""Constants and helpers the security tests import by name (`from seclib import ...`).

Not in conftest.py: with several conftest.py files in the tree, `from conftest
import` picks whichever was loaded last.
"""

from __future__ import annotations

DOCKER_CAPS = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
               "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
               "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE"]


def parse_status(text: str) -> dict[str, str]:
    """`Key:\\tvalue` lines of /proc/self/status printed by a container."""
    out = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            out[key.strip()] = value.strip()
    return out
