"""Device discovery: which binder device the client opens, and with which transport.

An explicit path, else ``$BINDER_DEVICE``, else a real ``/dev/binder``, else the one vbinder
mount in ``/proc/mounts``; a character device gets the kernel transport, a vbinder device file
the vbinder one.
"""

from __future__ import annotations

import errno
import os
import stat

from .errors import TransportError
from .kernel_transport import KernelTransport
from .transport import MAP_PRIVATE, MAP_SIZE, Transport, VbinderTransport


def find_device(path: str | None = None, name: str = "binder") -> str:
    """The device to open: ``path``, ``$BINDER_DEVICE``, ``/dev/<name>``, or the vbinder mount's."""
    if path:
        return path
    env = os.environ.get("BINDER_DEVICE")
    if env:
        return env
    return real_or_mounted(name, missing="no binder device: no /dev/binder and no vbinder mount "
                           "(run `vbinder mount DIR`, or set BINDER_DEVICE)", several="set BINDER_DEVICE")


def real_or_mounted(name: str, missing: str, several: str) -> str:
    """The character device ``/dev/<name>`` if there is one, else ``<mount>/dev/<name>`` of the
    one vbinder mount; ``missing`` and ``several`` say what to do when there is none or more."""
    real = f"/dev/{name}"
    try:
        if stat.S_ISCHR(os.stat(real).st_mode):
            return real
    except OSError:
        pass
    mounts = vbinder_mounts()
    if len(mounts) == 1:
        return os.path.join(mounts[0], "dev", name)
    if not mounts:
        raise TransportError(errno.ENOENT, missing)
    raise TransportError(errno.EINVAL, f"several vbinder mounts ({', '.join(mounts)}): {several}")


def vbinder_mounts() -> list[str]:
    """Mount points whose fsname is ``vbinder``."""
    out = []
    try:
        with open("/proc/mounts") as f:
            for line in f:
                fields = line.split()
                if len(fields) >= 3 and fields[0] == "vbinder":
                    out.append(fields[1].replace("\\040", " "))
    except OSError:
        pass
    return out


def open_transport(path: str | None = None, name: str = "binder", map_size: int = MAP_SIZE,
                   map_flags: int = MAP_PRIVATE) -> Transport:
    """Open the binder device (see :func:`find_device`) and map ``map_size`` bytes of it."""
    dev = find_device(path, name)
    try:
        st = os.stat(dev)
    except OSError as e:
        raise TransportError(e.errno, f"{dev}: {e.strerror}") from None
    if stat.S_ISCHR(st.st_mode):
        return KernelTransport(dev, map_size, map_flags)
    return VbinderTransport(dev, map_size, map_flags)
