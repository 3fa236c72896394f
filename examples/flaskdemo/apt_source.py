"""Print "SUITE MIRROR" of the Debian release the host's apt uses (for debootstrap).

Reads /etc/apt/sources.list and /etc/apt/sources.list.d/*.list (one-line form)
and *.sources (deb822), takes the first `deb` entry that is not a security or
updates suite, and prints its suite and URI. Nothing is hard-coded: the mirror is
whatever this machine's apt is configured with.
"""

import glob
import sys


def entries():
    files = ["/etc/apt/sources.list"] + sorted(glob.glob("/etc/apt/sources.list.d/*.list"))
    for path in files:
        try:
            lines = open(path).read().splitlines()
        except OSError:
            continue
        for line in lines:
            words = line.split("#", 1)[0].split()
            if len(words) >= 3 and words[0] == "deb":
                rest = words[1:]
                if rest[0].startswith("["):  # [arch=amd64 signed-by=…]
                    while rest and not rest[0].endswith("]"):
                        rest = rest[1:]
                    rest = rest[1:]
                if len(rest) >= 2:
                    yield rest[1], rest[0]
    for path in sorted(glob.glob("/etc/apt/sources.list.d/*.sources")):
        try:
            text = open(path).read()
        except OSError:
            continue
        for stanza in text.split("\n\n"):
            fields = {}
            for line in stanza.splitlines():
                if ":" in line and not line.startswith((" ", "\t", "#")):
                    key, _, value = line.partition(":")
                    fields[key.strip().lower()] = value.split()
            if "deb" in fields.get("types", []) and fields.get("enabled", ["yes"])[0] != "no":
                for uri in fields.get("uris", []):
                    for suite in fields.get("suites", []):
                        yield suite, uri


for suite, uri in entries():
    if "security" in uri or "-" in suite:  # bookworm-security, bookworm-updates
        continue
    print(suite, uri)
    sys.exit(0)
sys.exit("apt_source: no Debian release found in /etc/apt/sources.list*")
