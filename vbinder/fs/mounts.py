"""Finding, checking and removing mounts, without pyfuse3 (``vbinder umount`` needs none)."""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
from dataclasses import dataclass

FSNAME = "vbinder"


class MountError(Exception):
    """A mount or unmount that cannot be done; the message says why and what to do."""


@dataclass(slots=True, frozen=True)
class MountInfo:
    mountpoint: str
    fstype: str
    source: str
    options: str
    dev: str = ""  # "major:minor" of the mounted file system (one per FUSE connection)


def _unescape(field: str) -> str:
    r"""Undo /proc/self/mountinfo's octal escapes (``\040`` for a space)."""
    if "\\" not in field:
        return field
    out, i = [], 0
    while i < len(field):
        if field[i] == "\\" and i + 4 <= len(field) and field[i + 1:i + 4].isdigit():
            out.append(chr(int(field[i + 1:i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def canonical(path: str) -> str:
    """An absolute path with its parent's symlinks resolved, without touching ``path`` itself
    (which may be a dead mount whose stat fails with ENOTCONN)."""
    path = os.path.abspath(path)
    return os.path.join(os.path.realpath(os.path.dirname(path)), os.path.basename(path))


def mounts() -> list[MountInfo]:
    """The mounts of this process's mount namespace, from /proc/self/mountinfo."""
    result = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, sep, right = line.rstrip("\n").partition(" - ")
            if not sep:
                continue
            fields, rest = left.split(" "), right.split(" ")
            if len(fields) < 6 or len(rest) < 2:
                continue
            result.append(MountInfo(_unescape(fields[4]), rest[0], _unescape(rest[1]), fields[5], fields[2]))
    return result


def find_mount(path: str) -> MountInfo | None:
    """The mount whose mount point is ``path`` (the topmost one), or None."""
    path = canonical(path)
    found = None
    for m in mounts():
        if m.mountpoint == path:
            found = m
    return found


def is_attached(dev: str) -> bool:
    """True while a mount of the file system ``dev`` ("major:minor") is in this mount namespace.

    A lazy unmount (``vbinder umount``, ``fusermount3 -u -z``) detaches the mount at once, while
    the FUSE connection lives on for as long as clients hold files open.
    """
    return any(m.dev == dev for m in mounts())


def is_vbinder(m: MountInfo) -> bool:
    return m.source == FSNAME and (m.fstype == "fuse" or m.fstype.startswith("fuse."))


def is_dead(path: str) -> bool:
    """True when ``path`` is a FUSE mount whose daemon is gone (statfs fails with ENOTCONN).

    Not stat: the kernel may answer that from its attribute cache.
    """
    try:
        os.statvfs(path)
    except OSError as e:
        return e.errno == errno.ENOTCONN
    return False


def check_mountable(mountpoint: str, allow_other: bool) -> None:
    """Raise MountError with a clear message when mounting at ``mountpoint`` cannot work."""
    if not os.path.exists("/dev/fuse"):
        raise MountError("no /dev/fuse: load the fuse module (modprobe fuse), or give the container "
                         "the device (docker run --device /dev/fuse --cap-add SYS_ADMIN)")
    if not os.access("/dev/fuse", os.R_OK | os.W_OK):
        raise MountError("permission denied on /dev/fuse: the user needs read and write access to it")
    m = find_mount(mountpoint)
    if m is not None:
        if is_dead(mountpoint):
            raise MountError(f"{mountpoint} is a dead mount (its daemon has died): "
                             f"run `vbinder umount {mountpoint}` first")
        raise MountError(f"{mountpoint} is busy: already a mount ({m.source} on {m.fstype}); "
                         f"unmount it first (`vbinder umount {mountpoint}` for a vbinder mount)")
    if not os.path.exists(mountpoint):
        raise MountError(f"mountpoint {mountpoint} does not exist (create it with mkdir)")
    if not os.path.isdir(mountpoint):
        raise MountError(f"mountpoint {mountpoint} is not a directory")
    if os.geteuid() != 0:
        if shutil.which("fusermount3") is None:
            raise MountError("fusermount3 not found: a user other than root needs the fuse3 package")
        if not os.access(mountpoint, os.W_OK):
            raise MountError(f"permission denied: no write access to the mountpoint {mountpoint}")
        if allow_other and not _user_allow_other():
            raise MountError("--allow-other needs `user_allow_other` in /etc/fuse.conf "
                             "for a user other than root")


def _user_allow_other() -> bool:
    try:
        with open("/etc/fuse.conf") as f:
            return any(line.split("#", 1)[0].strip() == "user_allow_other" for line in f)
    except OSError:
        return False


def unmount(mountpoint: str) -> None:
    """Lazily unmount the vbinder mount at ``mountpoint``, also a dead one (daemon killed)."""
    m = find_mount(mountpoint)
    if m is None:
        raise MountError(f"{mountpoint} is not mounted")
    if not is_vbinder(m):
        raise MountError(f"{mountpoint} is not a vbinder mount ({m.source} on {m.fstype})")
    path = canonical(mountpoint)
    errors = []
    commands = []
    if shutil.which("fusermount3"):
        commands.append(["fusermount3", "-u", "-z", "--", path])
    if os.geteuid() == 0 and shutil.which("umount"):
        commands.append(["umount", "-l", path])
    if not commands:
        raise MountError("cannot unmount: fusermount3 not found (install fuse3)")
    for cmd in commands:
        r = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True)
        if r.returncode == 0 and find_mount(mountpoint) is None:
            return
        errors.append(f"{cmd[0]}: {(r.stderr or r.stdout).strip() or f'exit {r.returncode}'}")
    raise MountError(f"cannot unmount {mountpoint}: " + "; ".join(errors))
