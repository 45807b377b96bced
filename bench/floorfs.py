"""The floor: the smallest pyfuse3 file system that carries a request and a reply between processes.

One file, ``pp``, opened with vbinder's settings (``direct_io``, no page cache, seekable, so that
``pread``/``pwrite`` carry an offset), served by ``pyfuse3.main`` with vbinder's task limits,
priority and mount options (fsname ``vbinder-floor``, so that clients looking for a vbinder mount
never pick it). As in vbinder's device ABI, the offset names a channel (``channel << 40``) plus a position:

- a ``pwrite`` at position 0 starts a message, later chunks (the kernel splits large writes)
  append to it; a message is complete when its first 8 bytes (its total length) are in;
- a ``pread`` at position 0 waits until a message is complete on its channel and returns its
  start; ``pread``\\s at later positions return the rest; the message is gone once read to its end.

A ping-pong between two processes (A writes channel 0 and reads channel 1, B the reverse) costs
the same four FUSE requests per round trip as the least a binder call needs (the caller's write
and read, the callee's read and write), with nothing else in the daemon: a vbinder sync call
cannot be faster than about this.

A message whose length field has ``ACK`` set also queues an 8-byte acknowledgement on the
channel next to its own (``channel ^ 1``), readable at once. When B sends its replies that way
and reads the acknowledgement before waiting again, a round trip takes the five requests of a
vbinder sync call, in its order: the callee reads BR_TRANSACTION_COMPLETE after its reply
(DESIGN.md's read-only fast path saves the rest). That is the least this architecture allows a
vbinder call, so the difference from vbinder is vbinder's own work.

A **request slot** (issue 21's idea, measured here on the floor before anything is built in
vbinder): a process puts its message in a file of its own, ``SLOTS/slot<channel>`` (``u64 seq``,
then the message), and a ``pread`` at a position with :data:`SLOT` set first sends that message on
``channel ^ 1`` (once per ``seq``), then reads its own channel as at position 0. A ping-pong then
takes two FUSE requests per round trip: a call's write and read in one request on each side.

Run it as ``python -m bench.floorfs MOUNTPOINT [SLOTS]``; SIGINT or SIGTERM unmounts.
"""

from __future__ import annotations

import errno
import logging
import os
import signal
import stat
import sys
import time
from collections import deque
from dataclasses import dataclass, field

import pyfuse3
import trio

from bench.worker import FLOOR_ACK, FLOOR_HEADER  # the clients' side of the format
from vbinder.fs.daemon import MAX_TASKS, MIN_TASKS, raise_priority  # the same settings as vbinder's daemon

log = logging.getLogger("bench.floorfs")

FILE_NAME = b"pp"
FILE_INODE = pyfuse3.ROOT_INODE + 1
CHANNEL_SHIFT = 40
POS_MASK = (1 << CHANNEL_SHIFT) - 1
HEADER = FLOOR_HEADER  # a message's total length, header included, | ACK
ACK = FLOOR_ACK  # in the length field: acknowledge on channel ^ 1 (see the module docstring)
ACK_MESSAGE = HEADER.pack(HEADER.size)
SLOT = 1 << 39  # in a pread's position: send the reader's slot first (see the module docstring)
SLOT_SEQ = HEADER  # u64 seq before the message in a slot file
FSNAME = "vbinder-floor"
SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@dataclass(slots=True)
class Channel:
    partial: bytearray | None = None  # the message being written
    ready: deque[bytes] = field(default_factory=deque)  # complete messages
    current: bytes | None = None  # the message being read
    event: trio.Event = field(default_factory=trio.Event)


class FloorOperations(pyfuse3.Operations):
    """A root directory with one file; reads and writes as in the module docstring."""

    supports_dot_lookup = True
    enable_writeback_cache = False

    def __init__(self, slots: str | None = None) -> None:
        super().__init__()
        self.channels: dict[int, Channel] = {}
        self.time_ns = time.time_ns()
        self.closing = False
        self.slots = slots
        self.slot_files: dict[int, tuple[int, list[int]]] = {}  # channel -> (fd, [last seq])

    def _send_slot(self, n: int) -> None:
        """The message in channel ``n``'s slot file goes on channel ``n`` (unless sent already)."""
        got = self.slot_files.get(n)
        if got is None:
            if self.slots is None:
                raise pyfuse3.FUSEError(errno.EINVAL)
            got = self.slot_files[n] = (os.open(os.path.join(self.slots, f"slot{n}"), os.O_RDONLY), [0])
        fd, last = got
        head = os.pread(fd, 65536, 0)
        seq = SLOT_SEQ.unpack_from(head)[0]
        if seq == last[0]:
            return
        last[0] = seq
        length = HEADER.unpack_from(head, SLOT_SEQ.size)[0]
        msg = head[SLOT_SEQ.size:SLOT_SEQ.size + length]
        if len(msg) < length:
            msg += os.pread(fd, length - len(msg), SLOT_SEQ.size + len(msg))
        ch = self._channel(n)
        ch.ready.append(msg)
        ch.event.set()

    def shutdown(self) -> None:
        """Answer every waiting read (ENOTCONN), as vbinder does: a process killed while it waits
        in a FUSE read stays stuck until the read is answered (DESIGN.md, platform fact 8)."""
        self.closing = True
        for ch in self.channels.values():
            ch.event.set()

    def _channel(self, n: int) -> Channel:
        ch = self.channels.get(n)
        if ch is None:
            ch = self.channels[n] = Channel()
        return ch

    def _attrs(self, inode: int) -> pyfuse3.EntryAttributes:
        a = pyfuse3.EntryAttributes()
        a.st_ino = inode
        a.entry_timeout = a.attr_timeout = 1.0
        a.st_mode = (stat.S_IFDIR | 0o755) if inode == pyfuse3.ROOT_INODE else (stat.S_IFREG | 0o666)
        a.st_nlink = 2 if inode == pyfuse3.ROOT_INODE else 1
        a.st_uid, a.st_gid = os.getuid(), os.getgid()
        a.st_blksize = 4096
        a.st_atime_ns = a.st_mtime_ns = a.st_ctime_ns = self.time_ns
        return a

    async def lookup(self, parent_inode: int, name: bytes, ctx: pyfuse3.RequestContext) -> pyfuse3.EntryAttributes:
        if parent_inode == pyfuse3.ROOT_INODE and name == FILE_NAME:
            return self._attrs(FILE_INODE)
        if name in (b".", b".."):
            return self._attrs(pyfuse3.ROOT_INODE)
        raise pyfuse3.FUSEError(errno.ENOENT)

    async def getattr(self, inode: int, ctx: pyfuse3.RequestContext) -> pyfuse3.EntryAttributes:
        if inode not in (pyfuse3.ROOT_INODE, FILE_INODE):
            raise pyfuse3.FUSEError(errno.ENOENT)
        return self._attrs(inode)

    async def setattr(self, inode: int, attr: pyfuse3.EntryAttributes, fields: pyfuse3.SetattrFields,
                      fh: int | None, ctx: pyfuse3.RequestContext) -> pyfuse3.EntryAttributes:
        return self._attrs(inode)

    async def opendir(self, inode: int, ctx: pyfuse3.RequestContext) -> int:
        if inode != pyfuse3.ROOT_INODE:
            raise pyfuse3.FUSEError(errno.ENOTDIR)
        return inode

    async def readdir(self, fh: int, start_id: int, token: pyfuse3.ReaddirToken) -> None:
        if start_id == 0:
            pyfuse3.readdir_reply(token, FILE_NAME, self._attrs(FILE_INODE), 1)

    async def open(self, inode: int, flags: int, ctx: pyfuse3.RequestContext) -> pyfuse3.FileInfo:
        if inode != FILE_INODE:
            raise pyfuse3.FUSEError(errno.EISDIR)
        return pyfuse3.FileInfo(fh=inode, direct_io=True, keep_cache=False, nonseekable=False)

    async def write(self, fh: int, off: int, buf: bytes) -> int:
        ch = self._channel(off >> CHANNEL_SHIFT)
        if off & POS_MASK == 0 or ch.partial is None:
            ch.partial = bytearray(buf)
        else:
            ch.partial += buf
        p = ch.partial
        if len(p) >= HEADER.size:
            length = HEADER.unpack_from(p)[0]
            if len(p) >= length & ~ACK:
                ch.ready.append(bytes(p))
                ch.partial = None
                ch.event.set()
                if length & ACK:
                    ack = self._channel((off >> CHANNEL_SHIFT) ^ 1)
                    ack.ready.append(ACK_MESSAGE)
                    ack.event.set()
        return len(buf)

    async def read(self, fh: int, off: int, size: int) -> bytes:
        ch = self._channel(off >> CHANNEL_SHIFT)
        pos = off & POS_MASK
        if pos == SLOT:
            self._send_slot((off >> CHANNEL_SHIFT) ^ 1)
            pos = 0
        if pos == 0:
            while not ch.ready:
                if self.closing:
                    raise pyfuse3.FUSEError(errno.ENOTCONN)
                if ch.event.is_set():
                    ch.event = trio.Event()
                await ch.event.wait()
            ch.current = ch.ready.popleft()
        msg = ch.current
        if msg is None:
            raise pyfuse3.FUSEError(errno.EINVAL)
        out = msg[pos:pos + size]
        if pos + len(out) >= len(msg):
            ch.current = None
        return out


def mount_options() -> set[str]:
    """vbinder's options (vbinder.fs.daemon.mount_options) with this file system's name."""
    return {f"fsname={FSNAME}", f"subtype={FSNAME}", "default_permissions"}


def serve(mountpoint: str, slots: str | None = None) -> None:
    """Mount at ``mountpoint`` and serve until SIGINT/SIGTERM/SIGHUP, then unmount."""
    raise_priority()  # vbinder's daemon's priority too
    signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)
    ops = FloorOperations(slots)
    pyfuse3.init(ops, mountpoint, mount_options())
    try:
        trio.run(_main, ops)
    finally:
        pyfuse3.close(unmount=True)


async def _main(ops: FloorOperations) -> None:
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_signals, ops)
        await pyfuse3.main(min_tasks=MIN_TASKS, max_tasks=MAX_TASKS)
        nursery.cancel_scope.cancel()


async def _signals(ops: FloorOperations) -> None:
    with trio.open_signal_receiver(*SIGNALS) as signals:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, SIGNALS)
        async for _signum in signals:
            ops.shutdown()
            pyfuse3.terminate()
            return


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        sys.exit("usage: python -m bench.floorfs MOUNTPOINT [SLOTS]")
    serve(sys.argv[1], sys.argv[2] if len(sys.argv) == 3 else None)
