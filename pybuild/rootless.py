"""pybuild as an ordinary user (issue 19), as buildah runs rootless.

How: the whole pybuild process moves into a user namespace before it touches anything, and
stays there (buildah's re-exec into `buildah unshare`, done here in-process):

  1. `enter()` (the CLI, first thing, single-threaded) forks a helper, unshares CLONE_NEWUSER
     itself, and the helper, still in the host's namespace, maps it with the setuid helpers
     newuidmap/newgidmap (Debian package `uidmap`): image id 0 is the user's own id, image ids
     1..N are the user's subordinate range from /etc/subuid and /etc/subgid (`plan_maps`).
     The helpers check the ranges against those files, so the user never gets an id the
     administrator did not give them. Then the process becomes id 0 of the namespace (all
     capabilities there, none on the host) and drops its supplementary groups.
  2. Everything else is pybuild as root would run it, inside that namespace: the build's mount
     namespace (sandbox.py) is owned by the user namespace, so overlay mounts are allowed
     (Linux >= 5.11), with `userxattr` (opaque markers are `user.overlay.opaque`: a user
     namespace may not write `trusted.*`), and the unpacked lower layers carry the same.
  3. Ownership: why the layers say what the image says. Unpack chowns each entry to the tar's
     ids; inside the namespace that is a real chown, and on disk the tree holds the *mapped*
     host ids (image root = the user, image uid 1000 = subuid start + 999). The RUN step's
     runtime (pyrunc by default) runs in the same namespace with no user namespace of its own,
     so a `chown 1000:1000 f` in the step is the same real chown. Commit stat()s the upper dir
     from inside the namespace, where the kernel maps the host ids back: the tar gets 1000 and
     the base's root-owned files stay 0. This is buildah's choice (real ids on disk, the
     namespace as the translator) rather than umoci's (every file owned by the user, the image
     ids kept in a `user.rootlesscontainers` xattr): with real ids, the RUN step itself sees
     and enforces the image's ownership (a step running as uid 1000 cannot write root's
     files), which an xattr scheme cannot give a process inside the container. The cost, as
     with buildah: the user cannot remove subordinate-owned files of the store with plain `rm`
     (`pybuild rmi`/`prune` can; they run in the namespace).
     An image id outside the map (above the subordinate range) cannot be represented: unpack
     and chown fail with one line naming the entry (EINVAL), never a silent wrong owner.
  4. Network: a user namespace cannot make veth pairs on the host, so pybuild's bridge needs
     root. Rootless RUN steps share the host's network namespace by default (`--network host`,
     what buildah rootless does when asked for host; no new privilege: the user already has
     that network), or `--network none` (a namespace of their own with only `lo`).
     `bridge` is refused with one line. sysfs cannot be mounted without an own network
     namespace, so with `host` the step gets a read-only rbind of the host's /sys (runc's
     `spec --rootless` does the same).
  5. Where: the store defaults to `$XDG_DATA_HOME/pybuild` (~/.local/share/pybuild), the
     runtime state of `pybuild run` to `$XDG_RUNTIME_DIR/pybuild` (runc's rule for which
     caller honours XDG: `pyrunc.rootless.honor_xdg_runtime_dir`).

Security: every privilege pybuild has here is the namespace's: host files owned by ids outside
the map (root's) stay unwritable whatever capabilities the step holds; a setuid binary made in
a step is owned on the host by the user or a subordinate id, never by host root; the store's
own files (blobs, manifests) are the user's.

`plan_maps` and `subordinate_ranges` are pure; `enter` runs the helpers.
"""

from __future__ import annotations

import os
import pwd
import shutil

from pybuild.errors import PybuildError


class RootlessError(PybuildError):
    """The host lacks what a rootless build needs (the message names it)."""


def active() -> bool:
    """True when pybuild runs without host root: not root, or root of a user namespace that
    does not map every id (entered here, or e.g. inside a rootless container)."""
    from pyrunc.rootless import in_user_namespace

    return os.geteuid() != 0 or in_user_namespace()


def honor_xdg() -> bool:
    """runc's rule: an ordinary user, or "root" of a user namespace whose $USER is not root."""
    from pyrunc.rootless import honor_xdg_runtime_dir

    return honor_xdg_runtime_dir()


def default_store() -> str:
    """`--root`'s default: /var/lib/pybuild for root, $XDG_DATA_HOME/pybuild for a user."""
    if not honor_xdg():
        return "/var/lib/pybuild"
    data = os.environ.get("XDG_DATA_HOME") or os.path.join(_home(), ".local", "share")
    return os.path.join(data, "pybuild")


def runtime_dir(name: str, system_default: str) -> str:
    """A run-time state dir: `system_default` for root, $XDG_RUNTIME_DIR/pybuild/NAME for a user."""
    if not honor_xdg():
        return system_default
    base = os.environ.get("XDG_RUNTIME_DIR")
    if not base:
        raise RootlessError("rootless: XDG_RUNTIME_DIR is not set (a login session sets it to /run/user/UID)")
    return os.path.join(base, "pybuild", name)


def default_network() -> str:
    """The network of RUN steps when none is asked for: pybuild's bridge as root, the host's as a user."""
    return "host" if active() else "bridge"


def check_network(network: str) -> None:
    if network == "bridge" and active():
        raise RootlessError("rootless: --network=bridge needs root (veth pairs on the host); use host or none")


# A user namespace may mount sysfs only with its own network namespace: with the host's network
# the container sees the host's /sys read-only (runc's `spec --rootless` does the same).
SYS_RBIND = {"destination": "/sys", "type": "none", "source": "/sys",
             "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]}


def adapt_spec(spec: dict, network: str) -> dict:
    """A RUN step's or `pybuild run`'s config as a rootless runtime can run it (no-op as root):
    the host's /sys bound when sharing the host's network, and no named cgroup (pyrunc and runc
    then use what the user may write, if anything, instead of failing)."""
    if not active():
        return spec
    check_network(network)
    if network == "host":
        spec["mounts"] = [dict(SYS_RBIND) if m.get("type") == "sysfs" else m for m in spec.get("mounts", [])]
    spec.get("linux", {}).pop("cgroupsPath", None)
    return spec


def ids_in_map(map_text: str) -> list[range]:
    """The inside ids of a /proc/PID/uid_map or gid_map text."""
    out = []
    for line in map_text.splitlines():
        parts = line.split()
        if len(parts) == 3:
            out.append(range(int(parts[0]), int(parts[0]) + int(parts[2])))
    return out


def check_mapped(uid: int, gid: int, what: str) -> None:
    """An id the build would give a file must exist in the namespace (rootless): say so in one line
    instead of the kernel's EINVAL. No-op as root."""
    if not active():
        return
    for kind, value in (("uid", uid), ("gid", gid)):
        with open(f"/proc/self/{kind}_map") as f:
            ranges = ids_in_map(f.read())
        if not any(value in r for r in ranges):
            top = max((r.stop for r in ranges), default=1) - 1
            raise RootlessError(f"{what}: {kind} {value} is not mapped in this user namespace "
                                f"(rootless: ids 0-{top} are, the user and their subordinate ids)")


def overlay_xattr_ns() -> str:
    """Where overlay keeps its opaque markers: `user.` in a user namespace (mount option userxattr)."""
    return "user" if active() else "trusted"


def _home() -> str:
    home = os.environ.get("HOME")
    if home:
        return home
    return pwd.getpwuid(os.getuid()).pw_dir


def subordinate_ranges(text: str, name: str, uid: int) -> list[tuple[int, int]]:
    """The (start, count) lines of an /etc/subuid-format file for a user (by name or by id)."""
    out = []
    for line in text.splitlines():
        parts = line.strip().split(":")
        if len(parts) != 3 or parts[0] not in (name, str(uid)):
            continue
        if parts[1].isdigit() and parts[2].isdigit() and int(parts[2]) > 0:
            out.append((int(parts[1]), int(parts[2])))
    return out


def plan_maps(own: int, ranges: list[tuple[int, int]]) -> list[str]:
    """newuidmap/newgidmap's triples: image id 0 = `own`, then the ranges back to back from 1."""
    args = ["0", str(own), "1"]
    inside = 1
    for start, count in ranges:
        args += [str(inside), str(start), str(count)]
        inside += count
    return args


def _ranges(path: str, name: str, uid: int) -> list[tuple[int, int]]:
    try:
        with open(path) as f:
            text = f.read()
    except FileNotFoundError:
        text = ""
    except OSError as err:
        raise RootlessError(f"rootless: cannot read {path}: {err.strerror}") from None
    found = subordinate_ranges(text, name, uid)
    if not found:
        flag = "--add-subuids" if path.endswith("subuid") else "--add-subgids"
        raise RootlessError(f"rootless: no subordinate ids for {name} in {path} "
                            f"(an administrator adds them: usermod {flag} 100000-165535 {name})")
    return found


def enter() -> None:
    """Move this (single-threaded) process into a new user namespace mapped as the module
    docstring says, and become its root. No-op for root (and so once entered: a pybuild that
    this one starts, a hook, is root of the namespace already)."""
    if os.geteuid() == 0:
        return
    uid, gid = os.getuid(), os.getgid()
    try:
        pw = pwd.getpwuid(uid)
    except KeyError:
        raise RootlessError(f"rootless: uid {uid} has no passwd entry (needed to find its subordinate ids)") from None
    name = pw.pw_name
    os.environ.setdefault("HOME", pw.pw_dir)  # the store's default; inside, uid 0 is root's passwd entry
    tools = {}
    for tool in ("newuidmap", "newgidmap"):
        found = shutil.which(tool)
        if found is None:
            raise RootlessError(f"rootless: {tool} is not installed or not on PATH (Debian package uidmap)")
        tools[tool] = found
    uid_args = plan_maps(uid, _ranges("/etc/subuid", name, uid))
    gid_args = plan_maps(gid, _ranges("/etc/subgid", name, uid))
    _unshare_and_map(tools, uid_args, gid_args)


def join(pid: int) -> None:
    """Become root of the user namespace `pid` lives in (pybuild exec, single-threaded): each
    pybuild makes a namespace of its own, and a container's namespaces belong to the one of the
    `pybuild run` that started it; a sibling namespace may not enter them. The kernel lets the
    user join only a namespace they own (they hold every capability there from outside), so
    this gives nothing beyond it. No-op for root."""
    from pyrunc import syscalls

    if os.geteuid() == 0:
        return
    try:
        fd = os.open(f"/proc/{pid}/ns/user", os.O_RDONLY | os.O_CLOEXEC)
    except OSError as err:
        raise RootlessError(f"rootless: the container's user namespace (/proc/{pid}/ns/user): {err.strerror}") from None
    try:
        syscalls.setns(fd, syscalls.CLONE_NEWUSER)
    except OSError as err:
        raise RootlessError(f"rootless: join the container's user namespace: {err.strerror}") from None
    finally:
        os.close(fd)
    _become_root()


def _unshare_and_map(tools: dict[str, str], uid_args: list[str], gid_args: list[str]) -> None:
    """The helper forked before the unshare (it stays in the host's namespace, where the
    setuid helpers work) maps us once we say we have unshared; its exit status and stderr
    say whether it did."""
    import subprocess

    from pyrunc import syscalls

    go_r, go_w = os.pipe2(os.O_CLOEXEC)
    err_r, err_w = os.pipe2(os.O_CLOEXEC)
    target = os.getpid()
    pid = os.fork()
    if pid == 0:  # the helper
        code = 1
        try:
            os.close(go_w)
            os.close(err_r)
            if os.read(go_r, 1) == b"1":
                msgs = []
                for tool, args in (("newuidmap", uid_args), ("newgidmap", gid_args)):
                    res = subprocess.run([tools[tool], str(target), *args], stdin=subprocess.DEVNULL,
                                         capture_output=True)
                    if res.returncode != 0:
                        msgs.append(f"{tool}: {res.stderr.decode(errors='replace').strip() or res.returncode}")
                        break
                os.write(err_w, "; ".join(msgs).encode())
                code = 1 if msgs else 0
        except BaseException as err:  # noqa: BLE001 -- the helper must exit and say why
            os.write(err_w, f"helper: {err}".encode(errors="replace"))
        finally:
            os._exit(code)
    os.close(go_r)
    os.close(err_w)
    try:
        try:
            syscalls.unshare(syscalls.CLONE_NEWUSER)
        except OSError as err:
            os.write(go_w, b"0")
            os.waitpid(pid, 0)
            raise RootlessError(f"rootless: cannot create a user namespace: {err.strerror} "
                                "(unprivileged user namespaces disabled? see kernel.unprivileged_userns_clone "
                                "and user.max_user_namespaces)") from None
        os.write(go_w, b"1")
        os.close(go_w)
        go_w = -1
        msg = b""
        while chunk := os.read(err_r, 4096):
            msg += chunk
        _, status = os.waitpid(pid, 0)
        if os.waitstatus_to_exitcode(status) != 0:
            raise RootlessError(f"rootless: mapping the subordinate ids failed: "
                                f"{msg.decode(errors='replace') or 'helper died'}")
    finally:
        if go_w >= 0:
            os.close(go_w)
        os.close(err_r)
    _become_root()


def _become_root() -> None:
    """Id 0 of the namespace just entered (the user's own id); the supplementary groups, unmapped
    there, dropped (docs/SECURITY.md §12 says why this gives nothing)."""
    os.setgroups([])
    os.setresgid(0, 0, 0)
    os.setresuid(0, 0, 0)
