"""The client's side of the fd channel (docs/abi-fds.md): passing file descriptors on vbinder.

A vbinder device file cannot carry fds, so each open file gets a Unix socket to the daemon:
before a request whose transactions name fds, the thread *stages* them (``SCM_RIGHTS``); fds
delivered to this process arrive on the socket, and a reply's fixup segment says where in which
buffer each fd number goes. :class:`FdChannel` does both ends for :class:`VbinderTransport`,
and closes the fds of a ``BINDER_TYPE_FDA`` array when its buffer is freed, as 6.1 does.

Several threads share the socket: a thread that reads another delivery than its own keeps it
for its owner (by tag, under a lock). Standard library only.
"""

from __future__ import annotations

import array
import errno
import os
import socket
import struct
import sys
import threading
from collections.abc import Callable

from vbinder import fdabi, uapi

from .errors import TransportError

TIMEOUT: float = 5.0  # seconds: the daemon answers HELLO at once, and sends fds before their reply
_CMSG_SPACE: int = socket.CMSG_SPACE(4 * fdabi.MAX_FDS)

Ioctl = Callable[[int, bytes], tuple[int, bytes]]


def _is_open(fd: int) -> bool:
    try:
        os.fstat(fd)
        return True
    except OSError:
        return False


class _Delivery:
    __slots__ = ("fds", "complete", "report")

    def __init__(self) -> None:
        self.fds: list[int] = []
        self.complete = False
        self.report = False


class FdChannel:
    """The fd channel of one open device file."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._lock = threading.Lock()
        self._deliveries: dict[int, _Delivery] = {}
        self._dead = False
        # Buffer address -> the FDA fds of each delivery there, oldest first; the oldest are closed
        # when a buffer there is freed. Another thread may receive a new buffer at the address
        # the driver just freed before this one has closed the old one's fds: they stay apart.
        self.fda: dict[int, list[list[int]]] = {}

    @classmethod
    def open(cls, ioctl: Ioctl, features: int) -> FdChannel | None:
        """Ask the daemon for the channel of the file ``ioctl`` reaches and bind it; None when
        the daemon has none (``features``, VBINDER_FEATURES's answer, lacks FEATURE_FDS)."""
        if not features & fdabi.FEATURE_FDS:
            return None
        ret, arg = ioctl(fdabi.VBINDER_FD_CHANNEL, bytes(fdabi.CHANNEL.size))
        if ret < 0:
            raise TransportError(-ret, f"no fd channel: {os.strerror(-ret)}")
        token, name = fdabi.CHANNEL.unpack(arg)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
        try:
            sock.settimeout(TIMEOUT)
            sock.connect(b"\0" + name.rstrip(b"\0"))
            sock.send(fdabi.HELLO.pack(fdabi.HELLO_MAGIC, fdabi.VERSION, token))
            ack = sock.recv(64)
            if len(ack) != fdabi.ACK.size or fdabi.ACK.unpack(ack)[0] != fdabi.ACK_MAGIC:
                raise TransportError(errno.EPROTO, "the daemon did not acknowledge the fd channel")
            status = fdabi.ACK.unpack(ack)[1]
            if status < 0:
                raise TransportError(-status, f"fd channel refused: {os.strerror(-status)}")
        except OSError as e:
            sock.close()
            if isinstance(e, TransportError):
                raise
            raise TransportError(e.errno or errno.EIO, f"fd channel: {e}") from None
        except BaseException:
            sock.close()
            raise
        return cls(sock)

    # -- sending --------------------------------------------------------------------------------

    def stage(self, tid: int, seq: int, numbers: list[int]) -> None:
        """Send the fds ``numbers`` (those open) for thread ``tid``'s request ``seq``."""
        fds = [n for n in numbers if _is_open(n)]
        for i in range(0, len(fds), fdabi.MAX_FDS):
            part = fds[i:i + fdabi.MAX_FDS]
            record = fdabi.STAGE.pack(fdabi.STAGE_MAGIC, fdabi.STAGE_FIRST if i == 0 else 0, tid, seq,
                                      len(part)) + fdabi.encode_numbers(part)
            try:
                self.sock.sendmsg([record], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", part))])
            except OSError as e:
                raise TransportError(e.errno or errno.EIO, f"staging fds: {e}") from None

    # -- receiving ------------------------------------------------------------------------------

    def apply(self, fixups: bytes, buffers: dict[int, bytes]) -> dict[int, bytes]:
        """Put the fds of a reply's fixup segment into its ``buffers``; the buffers, patched."""
        tag, entries = fdabi.decode_fixups(fixups)
        delivery = self._take(tag)
        fds = delivery.fds
        if len(fds) < len(entries):
            print(f"vbinder_client: {len(entries) - len(fds)} of {len(entries)} fds delivered to this "
                  "process were lost (its fd table is full?): they read as -1", file=sys.stderr)
            fds = fds + [-1] * (len(entries) - len(fds))
        patched: dict[int, bytearray] = {}
        fda: dict[int, list[int]] = {}  # this delivery's FDA fds, by buffer
        for (addr, kind), fd in zip(entries, fds, strict=False):
            start = next((b for b, data in buffers.items() if b <= addr and addr + 4 <= b + len(data)), None)
            if start is None:
                if fd >= 0:
                    os.close(fd)  # nowhere to put it (a malformed reply): nobody will close it
                continue
            buf = patched.get(start)
            if buf is None:
                buf = patched[start] = bytearray(buffers[start])
            struct.pack_into("<i", buf, addr - start, fd)
            if kind == fdabi.KIND_FDA and fd >= 0:
                fda.setdefault(start, []).append(fd)
        if fda:
            with self._lock:
                for start, numbers in fda.items():
                    self.fda.setdefault(start, []).append(numbers)
        for extra in fds[len(entries):]:
            if extra >= 0:
                os.close(extra)
        if delivery.report:
            record = fdabi.INSTALLED.pack(fdabi.INSTALLED_MAGIC, len(entries), tag)
            try:
                self.sock.send(record + fdabi.encode_numbers(fds[:len(entries)]))
            except OSError:
                pass  # only a log line would be missing
        if not patched:
            return buffers
        out = dict(buffers)
        for start, buf in patched.items():
            out[start] = bytes(buf)
        return out

    def _take(self, tag: int) -> _Delivery:
        """The fds of delivery ``tag`` (they were sent before its reply: reading does not wait)."""
        with self._lock:
            while True:
                d = self._deliveries.get(tag)
                if d is not None and d.complete:
                    del self._deliveries[tag]
                    return d
                if self._dead or not self._read_one():
                    return d if d is not None else _Delivery()

    def _read_one(self) -> bool:
        """Read one record from the daemon (with the lock held); False when the channel ended."""
        try:
            data, anc, flags, _addr = self.sock.recvmsg(64, _CMSG_SPACE, socket.MSG_CMSG_CLOEXEC)
        except OSError:
            data, anc, flags = b"", [], 0
        fds: list[int] = []
        for level, kind, raw in anc:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                a = array.array("i")
                a.frombytes(raw[:len(raw) - len(raw) % 4])
                fds.extend(a)
        if len(data) != fdabi.DELIVER.size or fdabi.DELIVER.unpack(data)[0] != fdabi.DELIVER_MAGIC:
            for fd in fds:
                os.close(fd)
            self._end()
            return False
        _magic, dflags, tag, index, count = fdabi.DELIVER.unpack(data)
        if flags & socket.MSG_CTRUNC or len(fds) < count:
            fds += [-1] * (count - len(fds))  # the process's fd table is full
        d = self._deliveries.get(tag)
        if d is None:
            d = self._deliveries[tag] = _Delivery()
        d.fds.extend(fds)
        d.report = bool(dflags & fdabi.DELIVER_REPORT)
        d.complete = bool(dflags & fdabi.DELIVER_LAST)
        return True

    def _end(self) -> None:
        """The channel ended (the daemon closed it): what it brought and nobody took is closed."""
        self._dead = True
        for d in self._deliveries.values():
            for fd in d.fds:
                if fd >= 0:
                    os.close(fd)
        self._deliveries.clear()

    # -- BC_FREE_BUFFER ------------------------------------------------------------------------

    def freed(self, write: bytes) -> None:
        """Close the FDA fds of every buffer a BC_FREE_BUFFER of ``write`` (the part the driver
        consumed) freed, as 6.1's binder_deferred_fd_close does: the oldest delivery's at that
        address (a newer one there came after the driver freed it, to another thread)."""
        pos = 0
        while pos + 4 <= len(write):
            cmd = int.from_bytes(write[pos:pos + 4], "little")
            if cmd == uapi.BC_FREE_BUFFER and pos + 12 <= len(write):
                buffer = int.from_bytes(write[pos + 4:pos + 12], "little")
                fds: list[int] = []
                with self._lock:
                    held = self.fda.get(buffer)
                    if held:
                        fds = held.pop(0)
                        if not held:
                            del self.fda[buffer]
                for fd in fds:
                    try:
                        os.close(fd)
                    except OSError:
                        pass
            pos += 4 + uapi.ioc_size(cmd)

    def close(self) -> None:
        with self._lock:
            self._end()
        self.sock.close()
