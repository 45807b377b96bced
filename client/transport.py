"""Transports: how the client reaches a binder driver (ioctl calls and the mapped area).

:class:`VbinderTransport` speaks the vbinder device ABI (frames over pwrite/pread, DESIGN.md);
``open_transport`` finds the device: an explicit path, else ``$BINDER_DEVICE``, else a real
``/dev/binder``, else the one vbinder mount in ``/proc/mounts``.
"""

from __future__ import annotations

import errno
import os
import resource
import stat
import threading
from typing import Protocol

from vbinder import abi, uapi

WR = uapi.WRITE_READ
MAP_SIZE = (1 << 20) - 2 * 4096  # libbinder's BINDER_VM_SIZE: 1 MiB - 8 KiB
_FIRST_READ = 16384  # one pread usually fetches the whole reply
# Where this client places the memory it sends (out of the driver's mapped-area range).
_USER_BASE = 0x1000_0000_0000


class TransportError(OSError):
    """An ioctl failed (``errno`` set), or the device could not be used."""


class Transport(Protocol):
    """What IPCThreadState needs from a driver."""

    path: str
    map_addr: int

    def ioctl(self, cmd: int, arg: bytes) -> tuple[int, bytes]: ...

    def write_read(self, write: bytes, read_size: int) -> tuple[int, int, bytes, dict[int, bytes]]: ...

    def close(self) -> None: ...


def find_device(path: str | None = None, name: str = "binder") -> str:
    """The device to open: ``path``, ``$BINDER_DEVICE``, ``/dev/<name>``, or the vbinder mount's."""
    if path:
        return path
    env = os.environ.get("BINDER_DEVICE")
    if env:
        return env
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
        raise TransportError(errno.ENOENT, "no binder device: no /dev/binder and no vbinder mount "
                             "(run `vbinder mount DIR`, or set BINDER_DEVICE)")
    raise TransportError(errno.EINVAL, f"several vbinder mounts ({', '.join(mounts)}): set BINDER_DEVICE")


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


def _raise_fsize_limit() -> None:
    """Keys are large file offsets: the soft RLIMIT_FSIZE must allow them (DESIGN.md, Identity)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    if hard != resource.RLIM_INFINITY:
        raise TransportError(errno.EFBIG, "vbinder needs an unlimited RLIMIT_FSIZE (its file offsets "
                             f"carry thread ids), but the hard limit is {hard}")
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_FSIZE, (hard, hard))


class VbinderTransport:
    """A vbinder device file: every ioctl is one request frame and its reply frame."""

    def __init__(self, path: str, map_size: int = MAP_SIZE) -> None:
        _raise_fsize_limit()
        self.path = path
        self.fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
        self.map_addr = 0
        self.map_size = 0
        self._local = threading.local()
        try:
            ret, arg = self.ioctl(abi.VBINDER_ABI_VERSION, b"\0" * 4)
            if ret < 0 or uapi.U32.unpack(arg)[0] != abi.ABI_VERSION:
                raise TransportError(errno.EPROTO, f"{path} does not speak vbinder ABI {abi.ABI_VERSION}")
            if map_size:
                ret, arg = self.ioctl(abi.VBINDER_MMAP, abi.VBINDER_MMAP_ARG.pack(0, map_size, abi.PROT_READ, 2))
                if ret < 0:
                    raise TransportError(-ret, f"mapping {path}: {os.strerror(-ret)}")
                self.map_addr, self.map_size = abi.VBINDER_MMAP_ARG.unpack(arg)[:2]
        except BaseException:
            os.close(self.fd)
            raise

    # -- frames ------------------------------------------------------------------------------------

    def _key(self) -> int:
        local = self._local
        key = getattr(local, "key", None)
        if key is None:
            key = local.key = abi.key(threading.get_native_id())
        return key

    def _exchange(self, request: bytes | None) -> abi.Frame:
        """pwrite ``request`` (None: the read-only fast path) and pread its whole reply."""
        fd = self.fd
        key = self._key()
        if request is not None:
            n = os.pwrite(fd, request, key)
            if n != len(request):
                raise TransportError(errno.EIO, f"short write of a request ({n} of {len(request)})")
        data = os.pread(fd, _FIRST_READ, key)
        total = abi.reply_total(data)
        if total > len(data):
            data += os.pread(fd, total - len(data), key + len(data))
        return abi.decode_reply(data)

    def ioctl(self, cmd: int, arg: bytes, segments: list[tuple[int, bytes]] | None = None) -> tuple[int, bytes]:
        """One ioctl: (return value, argument copied back)."""
        f = self._exchange(abi.encode_request(cmd, arg, segments or ()))
        return f.code, f.arg

    def write_read(self, write: bytes, read_size: int) -> tuple[int, int, bytes, dict[int, bytes]]:
        """BINDER_WRITE_READ with ``write`` (BC commands whose pointers were made by ``place``).

        Returns (ret, write_consumed, what was read, transaction buffers by address).
        """
        local = self._local
        read_buffer = getattr(local, "read_buffer", 0)
        if not read_buffer:
            read_buffer = local.read_buffer = _USER_BASE + (threading.get_native_id() << 24)
        data_segments = getattr(local, "segments", None) or []
        local.segments = []
        f = None
        if not write and not data_segments and getattr(local, "last_read_size", 0) == read_size:
            try:
                f = self._exchange(None)  # the ABI's read-only fast path
            except OSError as e:
                if e.errno != errno.ENOMSG:
                    raise
        if f is None:
            waddr = read_buffer + 0x10000
            arg = WR.pack(len(write), 0, waddr, read_size, 0, read_buffer)
            request = abi.encode_request(uapi.BINDER_WRITE_READ, arg, [*data_segments, (waddr, write)])
            f = self._exchange(request)
            local.last_read_size = read_size if read_size else getattr(local, "last_read_size", 0)
        bwr = WR.unpack(f.arg)
        if bwr[1] < len(write):
            local.segments = data_segments + local.segments  # commands left unsent still point there
        buffers: dict[int, bytes] = {}
        read = b""
        for addr, data in f.segments:
            if addr == read_buffer:
                read = data
            else:
                buffers[addr] = data
        return f.code, bwr[1], read, buffers

    def place(self, data: bytes) -> int:
        """Put ``data`` in this thread's memory for the next write_read; returns its address."""
        local = self._local
        segments = getattr(local, "segments", None)
        if segments is None:
            segments = local.segments = []
        base = getattr(local, "read_buffer", 0) or _USER_BASE + (threading.get_native_id() << 24)
        local.read_buffer = base
        addr = base + 0x20000 + sum((len(d) + 7) & ~7 for _a, d in segments)
        segments.append((addr, data))
        return addr

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def open_transport(path: str | None = None, name: str = "binder") -> Transport:
    """Open the binder device (see :func:`find_device`)."""
    dev = find_device(path, name)
    try:
        st = os.stat(dev)
    except OSError as e:
        raise TransportError(e.errno, f"{dev}: {e.strerror}") from None
    if stat.S_ISCHR(st.st_mode):
        from .kernel_transport import KernelTransport

        return KernelTransport(dev)
    return VbinderTransport(dev)
