"""binderfs as Linux 6.1's binderfs.c has it: binder-control, its BINDER_CTL_ADD, the devices.

A mount's ``dev/binderfs`` holds ``binder-control``, ``binder_logs/``, ``features/`` and one
device per name. :class:`Binderfs` is that root's model: which names are devices and of which
context, their minor numbers, and ``BINDER_CTL_ADD``, ``unlink`` and ``rename`` with 6.1's
results; the I/O layer mirrors it in the tree. :class:`ControlFile` is an open binder-control:
its ioctls come as the device ABI's frames (docs/binderfs.md).

What the oracle's 6.1 binderfs showed (``run.sh -B``): binder-control has minor 0 and mode
0600, the devices of the ``devices`` parameter the next minors; a new device gets the lowest
free minor and mode 0600; a duplicate name (of a device, binder-control, binder_logs or
features) fails with EEXIST, an empty name, ``.``, ``..`` or a name with ``/`` with EACCES;
in both cases the struct was already copied back with the major and minor that were then freed.
The name is cut at 255 bytes (``name[255] = 0``). Other ioctls on binder-control give EINVAL.
"""

from __future__ import annotations

import errno
from typing import Final

from .. import abi, uapi
from .context import Context
from .errors import BinderError

# The major the oracle's 6.1 binderfs got (alloc_chrdev_region: dynamic on a real system).
MAJOR: Final = 246
# ENOSPC past this many devices: binderfs's ``max=`` mount option (the kernel's default is
# 2**20 minors, far more than a daemon should hold for one client's asking).
MAX_DEVICES: Final = 4096
CONTROL: Final = b"binder-control"
RESERVED: Final = (CONTROL, b"binder_logs", b"features")
FEATURES: Final = {"oneway_spam_detection": 1, "extended_error": 1}  # binderfs.c binder_features
RENAME_NOREPLACE: Final = 1
RENAME_EXCHANGE: Final = 2


def _name_error(name: bytes) -> int:
    """lookup_one_len's refusals: 0, or EACCES for "", ".", ".." and names with "/"."""
    if not name or name in (b".", b"..") or b"/" in name:
        return errno.EACCES
    return 0


class Device:
    """A binderfs device: its context and minor number."""

    __slots__ = ("context", "minor")

    def __init__(self, context: Context, minor: int) -> None:
        self.context = context
        self.minor = minor


class Binderfs:
    """The root of one binderfs mount: binder-control and the devices, by name."""

    def __init__(self, contexts: list[Context]) -> None:
        """``contexts``: the devices the ``devices`` parameter names, created at mount."""
        self.minors: set[int] = {0}  # binder-control's
        self.devices: dict[bytes, Device] = {}
        for ctx in contexts:
            self.devices[ctx.name.encode()] = Device(ctx, self._next_minor())

    def _next_minor(self) -> int:
        """ida_alloc_max: the lowest free minor."""
        minor = 0
        while minor in self.minors:
            minor += 1
        self.minors.add(minor)
        return minor

    def exists(self, name: bytes) -> bool:
        return name in self.devices or name in RESERVED

    def add(self, arg: bytes) -> tuple[int, bytes, bytes | None]:
        """BINDER_CTL_ADD (binderfs_binder_device_create): (ret, struct copied back, new name)."""
        raw, _major, _minor = uapi.BINDERFS_DEVICE.unpack(arg)
        if len(self.devices) >= MAX_DEVICES:
            return -errno.ENOSPC, b"", None
        minor = self._next_minor()
        name = raw[:uapi.BINDERFS_MAX_NAME].split(b"\0", 1)[0]
        # The kernel copies the struct back before it looks the name up.
        out = uapi.BINDERFS_DEVICE.pack(raw[:uapi.BINDERFS_MAX_NAME] + b"\0", MAJOR, minor)
        err = _name_error(name) or (errno.EEXIST if self.exists(name) else 0)
        if err:
            self.minors.discard(minor)
            return -err, out, None
        self.devices[name] = Device(Context(name.decode(errors="surrogateescape")), minor)
        return 0, out, name

    def unlink(self, name: bytes) -> None:
        """binderfs_unlink: a device goes (its context lives on in the procs that have it open)."""
        if name not in self.devices:
            raise BinderError(errno.EPERM if name in RESERVED else errno.ENOENT, "not a binderfs device")
        self.minors.discard(self.devices.pop(name).minor)

    def rename(self, old: bytes, new: bytes, flags: int) -> bytes | None:
        """binderfs_rename of a device within the root: the name replaced, if any (simple_rename)."""
        if CONTROL in (old, new):
            raise BinderError(errno.EPERM, "binder-control cannot be renamed")
        if old not in self.devices or new in RESERVED:
            raise BinderError(errno.EPERM, "only devices are renamed in vbinder's binderfs")
        if flags & ~RENAME_NOREPLACE:
            raise BinderError(errno.EINVAL, "unsupported rename flags")
        replaced = new if new in self.devices and new != old else None
        if replaced is not None and flags & RENAME_NOREPLACE:
            raise BinderError(errno.EEXIST, "target exists")
        if replaced is not None:
            self.unlink(replaced)
        self.devices[new] = self.devices.pop(old)
        return replaced


class ControlFile:
    """An open binder-control: the device ABI's frames, per thread, for its ioctls.

    Requests are whole frames written at the thread's key (this file takes no split frames);
    each reply is made at its write and read back at the key, as a device file's. Its ioctls:
    BINDER_CTL_ADD, and VBINDER_ABI_VERSION (so that a client can tell a vbinder file); any
    other gives -EINVAL, as binder_ctl_ioctl does.
    """

    MAX_REPLIES: Final = 1024

    def __init__(self, fs: Binderfs) -> None:
        self.fs = fs
        self.replies: dict[int, bytes] = {}  # tid -> reply not yet read to its end

    def write(self, offset: int, data: bytes) -> bytes | None:
        """A pwrite of a request: the name of the device it created, if any."""
        tid, pos = abi.split_offset(offset)
        if pos != 0:
            raise BinderError(errno.EINVAL, "binder-control takes whole frames only")
        try:
            frame = abi.decode_request(data)
        except abi.FrameError as e:
            raise BinderError(errno.EINVAL, f"malformed frame: {e}") from None
        if tid in self.replies:
            raise BinderError(errno.EBUSY, "new request before the last reply was read")
        if len(self.replies) >= self.MAX_REPLIES:
            raise BinderError(errno.EAGAIN, "too many unread replies")
        created = None
        cmd, arg = frame.code, frame.arg
        if uapi.ioc_size(cmd) != len(arg):
            ret, out = -errno.EINVAL, b""
        elif cmd == abi.VBINDER_ABI_VERSION:
            ret, out = 0, uapi.U32.pack(abi.ABI_VERSION)
        elif cmd == uapi.BINDER_CTL_ADD:
            ret, out, created = self.fs.add(arg)
        else:
            ret, out = -errno.EINVAL, b""
        self.replies[tid] = abi.encode_reply(ret, out)
        return created

    def read(self, offset: int, size: int) -> bytes:
        """A pread of this thread's reply at ``pos``; EINVAL when there is none (a plain read)."""
        tid, pos = abi.split_offset(offset)
        reply = self.replies.get(tid)
        if reply is None:
            raise BinderError(errno.EINVAL, "no reply to read")
        chunk = reply[pos:pos + size]
        if pos + len(chunk) >= len(reply):
            del self.replies[tid]
        return chunk
