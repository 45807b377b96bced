"""binderfs: new binder devices at run time, through ``binder-control`` (BINDER_CTL_ADD).

The same call works on a real binderfs (an ioctl on the character device) and on a vbinder
mount's ``dev/binderfs/binder-control`` (the ioctl as the device ABI's request and reply frames,
docs/binderfs.md)::

    major, minor = add_device("mydev")        # then open dev/binderfs/mydev
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
import threading

from vbinder import abi, uapi

from .device import real_or_mounted
from .errors import TransportError

CONTROL = "binderfs/binder-control"


def find_control(path: str | None = None) -> str:
    """``path``, else the real ``/dev/binderfs/binder-control``, else the vbinder mount's."""
    if path:
        return path
    return real_or_mounted(CONTROL, missing="no binderfs: no /dev/binderfs and no vbinder mount",
                           several="name the control file")


def control_ioctl(control: str, cmd: int, arg: bytes) -> tuple[int, bytes]:
    """One ioctl on the binder-control file ``control``: (ret or -errno, the argument as the
    driver copied it back, empty if it did not). A real one is an ioctl; a vbinder one the
    device ABI's request and reply frames."""
    fd = os.open(control, os.O_RDWR | os.O_CLOEXEC)
    try:
        if stat.S_ISCHR(os.fstat(fd).st_mode):
            buf = bytearray(arg)
            try:
                ret = fcntl.ioctl(fd, cmd, buf, True)
                return int(ret), bytes(buf)
            except OSError as e:
                # BINDER_CTL_ADD copies the struct back before it can fail with EEXIST or EACCES.
                return -(e.errno or errno.EIO), bytes(buf) if uapi.ioc_dir(cmd) & uapi.IOC_READ else b""
        key = abi.key(threading.get_native_id())
        request = abi.encode_request(cmd, arg)
        if os.pwrite(fd, request, key) != len(request):
            raise TransportError(errno.EIO, f"{control}: short write of a request")
        data = os.pread(fd, abi.HEADER_SIZE + len(arg) + 8, key)
        total = abi.reply_total(data)
        if total > len(data):
            data += os.pread(fd, total - len(data), key + len(data))
        reply = abi.decode_reply(data)
        return reply.code, reply.arg
    finally:
        os.close(fd)


def ctl_add(control: str, name: bytes) -> tuple[int, bytes]:
    """BINDER_CTL_ADD on ``control`` with ``name`` (cut to 256 bytes, NUL-padded)."""
    return control_ioctl(control, uapi.BINDER_CTL_ADD, uapi.BINDERFS_DEVICE.pack(name, 0, 0))


def add_device(name: str | bytes, control: str | None = None) -> tuple[int, int]:
    """Create the binder device ``name`` in the binderfs of ``control`` (:func:`find_control`):
    its (major, minor). Raises OSError with binderfs's errno: EEXIST, EACCES (a bad name), ENOSPC."""
    raw = name.encode() if isinstance(name, str) else name
    path = find_control(control)
    ret, out = ctl_add(path, raw)
    if ret < 0:
        raise OSError(-ret, f"BINDER_CTL_ADD {raw.decode(errors='replace')!r} on {path}: {os.strerror(-ret)}")
    _name, major, minor = uapi.BINDERFS_DEVICE.unpack(out)
    return major, minor
