"""The pyfuse3 ``Operations`` of a vbinder mount: the tree, device files, waits.

Thin by design: device files go straight to the driver's :class:`DeviceFile` with the raw file
offset; a read that would block waits on a trio event that the driver's ticket sets, inside a
cancel scope the watchdog can cancel. Handlers return, or raise ``FUSEError``, and nothing else:
any other exception becomes EIO and a log line (platform fact 9).
"""

from __future__ import annotations

import errno
import functools
import logging
import os
import select
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any, ParamSpec, TypeVar

import pyfuse3
import trio
from pyfuse3 import FUSEError

from ..abi import KEY_SHIFT, POS_MASK, split_offset
from ..driver import BinderError, DeviceFile, Driver, Waiter, WouldBlock
from ..driver.binderfs import Binderfs, ControlFile
from ..driver.context import Context
from ..driver.debugfs import render_proc
from ..fdabi import SLOT_BIT
from .binderfs import PROC_DIR as BINDERFS_PROC_DIR
from .host import Host
from .slot import RequestSlot, SlotError
from .tree import Control, Device, Dir, Generated, Inode, Stream, StreamSource, Symlink, Tree
from .watchdog import Watch, Watchdog

log = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")

PROC_DIR = "sys/kernel/debug/binder/proc"
PROC_DIRS = (PROC_DIR, BINDERFS_PROC_DIR)  # debugfs's and binderfs's binder_logs: the same entries
ATTR_TIMEOUT = 1.0
ENTRY_TIMEOUT = 1.0


def fuse_error(e: Exception, what: str) -> FUSEError:
    """The FUSEError a handler answers for ``e``: BinderError's errno, EIO (and a log line) for a bug."""
    if isinstance(e, FUSEError):
        return e
    if isinstance(e, BinderError):
        return FUSEError(e.errno)
    log.error("%s failed: answering EIO", what, exc_info=e)
    return FUSEError(errno.EIO)


def handler(fn: Callable[P, Coroutine[Any, Any, R]]) -> Callable[P, Coroutine[Any, Any, R]]:
    """Map a handler's errors to FUSEError (:func:`fuse_error`)."""

    @functools.wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await fn(*args, **kwargs)
        except Exception as e:
            raise fuse_error(e, fn.__name__) from None

    return wrapper


# -- open files ------------------------------------------------------------------------------------


@dataclass(slots=True, eq=False)
class DeviceHandle:
    """An open device file: one binder proc."""

    node: Device
    file: DeviceFile
    tgid: int
    polls: dict[int, pyfuse3.PollHandle] = field(default_factory=dict)  # tid -> waiting poll


@dataclass(slots=True, eq=False)
class GeneratedHandle:
    node: Generated
    content: bytes
    tid: int = 0  # the opener (a write_as file's writer)
    tgid: int = 0


@dataclass(slots=True, eq=False)
class StreamHandle:
    """An open stream (``proc/kmsg``, ``trace_pipe``): the next line to deliver, and a partly
    delivered line."""

    node: Stream
    source: StreamSource
    tgid: int
    seq: int
    rest: bytes = b""
    nonblock: bool = False  # O_NONBLOCK at open: EAGAIN when nothing is new


@dataclass(slots=True, eq=False)
class ControlHandle:
    """An open binderfs binder-control: its ioctls' frames."""

    node: Control
    file: ControlFile


Handle = DeviceHandle | GeneratedHandle | StreamHandle | ControlHandle


class Operations(pyfuse3.Operations):
    """The file system of one vbinder mount."""

    supports_dot_lookup = True
    enable_writeback_cache = False

    def __init__(self, driver: Driver, tree: Tree, host: Host, watchdog: Watchdog | None = None) -> None:
        super().__init__()
        self.driver = driver
        self.tree = tree
        self.host = host
        self.watchdog = watchdog if watchdog is not None else Watchdog(host)
        self.handles: dict[int, Handle] = {}
        self._polling: set[DeviceHandle] = set()  # files with a poll(2) waiting
        self._next_fh = 1
        self.closing = False
        self._proc_files: set[int] = set()  # the pids with a debugfs proc/<pid> file in the tree

    # -- helpers -------------------------------------------------------------------------------------

    def _node(self, inode: int) -> Inode:
        node = self.tree.nodes.get(inode)
        if node is None:
            raise FUSEError(errno.ENOENT)
        return node

    def _handle(self, fh: int) -> Handle:
        h = self.handles.get(fh)
        if h is None:
            raise FUSEError(errno.EBADF)
        return h

    def _attrs(self, node: Inode) -> pyfuse3.EntryAttributes:
        a = pyfuse3.EntryAttributes()
        a.st_ino = node.inode
        a.generation = 0
        a.entry_timeout = ENTRY_TIMEOUT
        a.attr_timeout = ATTR_TIMEOUT
        a.st_mode = node.st_mode
        a.st_nlink = self.tree.nlink(node)
        a.st_uid = self.tree.uid
        a.st_gid = self.tree.gid
        a.st_rdev = 0
        a.st_size = self.tree.size(node)
        a.st_blksize = 4096
        a.st_blocks = 0
        a.st_atime_ns = a.st_mtime_ns = a.st_ctime_ns = self.tree.time_ns
        return a

    def _new_fh(self, h: Handle) -> int:
        fh = self._next_fh
        self._next_fh += 1
        self.handles[fh] = h
        return fh

    async def _wait(self, ticket: Waiter, tid: int, deadline: float | None = None) -> int | None:
        """Wait until ``ticket`` wakes or ``deadline`` (driver clock) passes (None), or the watchdog
        ends the wait of thread ``tid`` (its errno, or 0)."""
        if self.closing:
            return errno.ENOTCONN
        # The per-call path: the task sleeps until the driver's ticket, the watchdog or a cancel
        # (shutdown, a deadline) wakes it; cheaper than an Event in cancel scopes.
        task = trio.lowlevel.current_task()
        asleep = True

        def wake() -> None:
            nonlocal asleep
            if asleep:
                asleep = False
                trio.lowlevel.reschedule(task)

        def abort(_raise_cancel: object) -> trio.lowlevel.Abort:
            nonlocal asleep
            asleep = False
            return trio.lowlevel.Abort.SUCCEEDED

        ticket.wake_cb = wake
        watch = Watch(tid, None, wake)
        self.watchdog.add(watch)
        try:
            if deadline is None:
                await trio.lowlevel.wait_task_rescheduled(abort)
            else:
                with trio.move_on_at(trio.current_time() + deadline - self.driver.log.clock()):
                    await trio.lowlevel.wait_task_rescheduled(abort)
        finally:
            self.watchdog.discard(watch)
            ticket.wake_cb = None
        return watch.result

    def _sync_proc_files(self) -> None:
        """Make debugfs's proc/ directory show the driver's entries (after an open or release)."""
        want = set(self.driver.debugfs_procs)
        if want == self._proc_files:
            return
        for pid in self._proc_files - want:
            for proc_dir in PROC_DIRS:
                node = self.tree.resolve(f"{proc_dir}/{pid}")
                self.tree.remove(f"{proc_dir}/{pid}")
                if node is not None:
                    pyfuse3.invalidate_entry_async(node.parent, str(pid).encode(), deleted=node.inode,
                                                   ignore_enoent=True)
        for pid in want - self._proc_files:
            for proc_dir in PROC_DIRS:
                self.tree.add_generated(f"{proc_dir}/{pid}", functools.partial(self._render_proc, pid), mode=0o444)
        self._proc_files = want

    def _render_proc(self, pid: int) -> bytes:
        return render_proc(self.driver, pid).encode(errors="surrogateescape")

    def _notify_polls(self) -> None:
        """Wake the poll(2) callers whose thread now has something to read."""
        if not self._polling:  # the usual case, after every device read and write
            return
        for h in list(self._polling):
            for tid in [t for t in h.polls if h.file.poll(t)]:
                ph = h.polls.pop(tid)
                try:
                    ph.notify()
                except OSError as e:
                    log.debug("poll notify failed: %s", e)
            if not h.polls:
                self._polling.discard(h)

    def shutdown(self) -> None:
        """Stop waiting: every waiting read is answered ENOTCONN, new ones too."""
        self.closing = True
        self.watchdog.end_all(errno.ENOTCONN)

    # -- the tree ------------------------------------------------------------------------------------

    @handler
    async def lookup(self, parent_inode: int, name: bytes, ctx: pyfuse3.RequestContext
                     ) -> pyfuse3.EntryAttributes:
        node = self.tree.lookup(parent_inode, name)
        if node is None:
            raise FUSEError(errno.ENOENT)
        node.nlookup += 1
        return self._attrs(node)

    async def forget(self, inode_list: Sequence[tuple[int, int]]) -> None:
        try:
            for inode, n in inode_list:
                self.tree.forget(inode, n)
        except Exception:
            log.exception("forget failed")

    @handler
    async def getattr(self, inode: int, ctx: pyfuse3.RequestContext) -> pyfuse3.EntryAttributes:
        return self._attrs(self._node(inode))

    @handler
    async def setattr(self, inode: int, attr: pyfuse3.EntryAttributes, fields: pyfuse3.SetattrFields,
                      fh: int | None, ctx: pyfuse3.RequestContext) -> pyfuse3.EntryAttributes:
        node = self._node(inode)
        if fields.update_mode and isinstance(node, Device) and node.context is not None:
            node.mode = attr.st_mode & 0o7777  # a binderfs device: chmod, as on binderfs
        elif fields.update_mode or fields.update_uid or fields.update_gid:
            raise FUSEError(errno.EPERM)
        if fields.update_size and not isinstance(node, Device | Generated):
            raise FUSEError(errno.EINVAL if isinstance(node, Stream) else errno.EISDIR)
        if fields.update_size and isinstance(node, Generated) and node.truncate is not None:
            node.truncate()
        # Truncation (``echo 8 > file`` opens with O_TRUNC, fact 11) and times are accepted and
        # change nothing: sizes stay 0, times stay the mount's.
        return self._attrs(node)

    @handler
    async def readlink(self, inode: int, ctx: pyfuse3.RequestContext) -> bytes:
        node = self._node(inode)
        if not isinstance(node, Symlink):
            raise FUSEError(errno.EINVAL)
        return node.target

    @handler
    async def opendir(self, inode: int, ctx: pyfuse3.RequestContext) -> int:
        if not isinstance(self._node(inode), Dir):
            raise FUSEError(errno.ENOTDIR)
        return inode

    @handler
    async def readdir(self, fh: int, start_id: int, token: pyfuse3.ReaddirToken) -> None:
        d = self._node(fh)
        assert isinstance(d, Dir)
        # Entries in name order; next_id is the position after the entry.
        entries = sorted(d.children.items())
        for i, (name, ino) in enumerate(entries[start_id:], start_id):
            node = self.tree.nodes[ino]
            if not pyfuse3.readdir_reply(token, name, self._attrs(node), i + 1):
                break
            node.nlookup += 1

    @handler
    async def releasedir(self, fh: int) -> None:
        return None

    @handler
    async def statfs(self, ctx: pyfuse3.RequestContext) -> pyfuse3.StatvfsData:
        s = pyfuse3.StatvfsData()
        s.f_bsize = s.f_frsize = 4096
        s.f_files = len(self.tree.nodes)
        s.f_namemax = 255
        return s

    # -- files ---------------------------------------------------------------------------------------

    @handler
    async def open(self, inode: int, flags: int, ctx: pyfuse3.RequestContext) -> pyfuse3.FileInfo:
        node = self._node(inode)
        writing = (flags & os.O_ACCMODE) != os.O_RDONLY
        reading = (flags & os.O_ACCMODE) != os.O_WRONLY
        if isinstance(node, Dir):
            raise FUSEError(errno.EISDIR)
        if isinstance(node, Device):
            if flags & (os.O_DIRECT | os.O_APPEND):
                raise FUSEError(errno.EINVAL)  # the kernel would reorder chunks or ignore offsets
            if ctx.pid == 0:
                raise FUSEError(errno.EPERM)  # a caller outside the daemon's pid namespace
            tgid = self.host.tgid(ctx.pid)
            if tgid is None:
                raise FUSEError(errno.ESRCH)
            device = node.context if isinstance(node.context, Context) else node.device
            f = self.driver.open(device, tgid=tgid, tid=ctx.pid, euid=ctx.uid,
                                 nonblock=bool(flags & os.O_NONBLOCK),
                                 secctx=self.host.security_context(ctx.pid))
            fh = self._new_fh(DeviceHandle(node, f, tgid))
            self._sync_proc_files()
            return pyfuse3.FileInfo(fh=fh, direct_io=True, keep_cache=False, nonseekable=False)
        if isinstance(node, Generated):
            if (writing and node.write is None and node.write_as is None) or (reading and node.read is None):
                raise FUSEError(errno.EACCES)  # root passes default_permissions: decide here
            if flags & os.O_TRUNC and writing and node.truncate is not None:
                node.truncate()
            content = node.read() if reading and node.read is not None else b""
            tgid = (self.host.tgid(ctx.pid) or 0) if node.write_as is not None and ctx.pid else 0
            fh = self._new_fh(GeneratedHandle(node, content, ctx.pid, tgid))
            return pyfuse3.FileInfo(fh=fh, direct_io=True, keep_cache=False)
        if isinstance(node, Stream):
            if writing or node.source is None:
                raise FUSEError(errno.EACCES)
            if ctx.pid == 0:
                raise FUSEError(errno.EPERM)
            tgid = self.host.tgid(ctx.pid)
            if tgid is None:
                raise FUSEError(errno.ESRCH)
            fh = self._new_fh(StreamHandle(node, node.source, tgid, seq=node.source.start(),
                                           nonblock=bool(flags & os.O_NONBLOCK)))
            return pyfuse3.FileInfo(fh=fh, direct_io=True, keep_cache=False, nonseekable=True)
        if isinstance(node, Control) and isinstance(node.binderfs, Binderfs):
            fh = self._new_fh(ControlHandle(node, ControlFile(node.binderfs)))
            return pyfuse3.FileInfo(fh=fh, direct_io=True, keep_cache=False)
        raise FUSEError(errno.EINVAL)

    async def read(self, fh: int, off: int, size: int) -> bytes:
        h = self.handles.get(fh)
        if type(h) is DeviceHandle:  # the per-call path, without a wrapper coroutine
            if off & SLOT_BIT:
                return await self._slot_read(h, off, size)
            try:
                got = h.file.read(off, size)
            except Exception as e:
                raise fuse_error(e, "read") from None
            finally:
                self._notify_polls()
            if isinstance(got, WouldBlock):
                return await self._device_wait(h, off, size, got)
            return got
        return await self._other_read(fh, off, size)

    async def _slot_read(self, h: DeviceHandle, off: int, size: int) -> bytes:
        """A pread at a slot offset (docs/abi-slot.md): the request in the client's slot, its write
        and read phase; a reply too long for the pread goes into the slot, and a stub answers."""
        fds = self.host.fds
        slot = fds.slot_of(h.file.proc) if fds is not None else None
        tid = off >> KEY_SHIFT
        try:
            if slot is None:
                raise SlotError(errno.ENXIO, "a slot request without a request slot")
            produced = h.file.slot_request(tid, *slot.request(off))
        except SlotError as e:
            proc = h.file.proc
            proc.log.user_error("%d:%d vbinder: %s", proc.pid, tid, e)
            raise FUSEError(e.errno) from None
        except Exception as e:
            raise fuse_error(e, "read") from None
        finally:
            self._notify_polls()
        if not produced:
            # Let the tasks the write phase woke (its transaction's receiver) answer first: with
            # two requests, their answers went out while this client sent its read; the read
            # phase that follows here usually only finds that it must wait. Twice: trio runs a
            # batch of tasks in either order (measured: 0, 1, 2 checkpoints, +40, +25, +20 µs
            # per slot call against pwrite + pread, docs/abi-slot.md). Also when the read phase
            # has its answer already (a reply's BR_TRANSACTION_COMPLETE): skipping them there
            # measured 5 % fewer sync calls/s (the caller's answer waits for the read phase),
            # and one-way calls/s the same.
            await trio.lowlevel.checkpoint()
            await trio.lowlevel.checkpoint()
        key = off & ~POS_MASK
        try:
            got = h.file.read(key, size, slot.capacity)
        except Exception as e:
            raise fuse_error(e, "read") from None
        finally:
            self._notify_polls()
        if isinstance(got, WouldBlock):
            got = await self._device_wait(h, key, size, got)
        return self._slot_answer(h, slot, off, size, got)

    @staticmethod
    def _slot_answer(h: DeviceHandle, slot: RequestSlot, off: int, size: int, got: bytes) -> bytes:
        if len(got) <= size:
            return got
        stub = slot.put_reply(off, got)
        if stub is None:
            return got[:size]  # the rest is read at key + pos, as version 1 reads it
        h.file.consume(off >> KEY_SHIFT)
        return stub

    async def _device_wait(self, h: DeviceHandle, off: int, size: int, wb: WouldBlock) -> bytes:
        """A device read whose read phase waits: until woken, then resumed (again if it waits)."""
        ticket, deadline = wb.waiter, wb.deadline
        tid = split_offset(off)[0]
        try:
            while True:
                ended = await self._wait(ticket, tid, deadline)
                if ended is not None:
                    first = h.file.abandon(off, ticket, size)
                    if first is not None:  # a chained read: its first reply is the answer
                        return first
                    raise FUSEError(ended or errno.EINTR)
                got = h.file.resume(off, size, ticket)
                if not isinstance(got, WouldBlock):
                    return got
                ticket, deadline = got.waiter, got.deadline
        except Exception as e:
            raise fuse_error(e, "read") from None
        finally:
            self._notify_polls()

    @handler
    async def _other_read(self, fh: int, off: int, size: int) -> bytes:
        h = self._handle(fh)
        if isinstance(h, GeneratedHandle):
            return h.content[off:off + size]
        if isinstance(h, StreamHandle):
            return await self._stream_read(h, size)
        if isinstance(h, ControlHandle):
            return h.file.read(off, size)
        raise FUSEError(errno.EBADF)

    async def _stream_read(self, h: StreamHandle, size: int) -> bytes:
        """A stream: whole lines when they fit; waits while there are none."""
        source = h.source
        while not h.rest:
            data, h.seq = source.data_since(h.seq)
            if data:
                h.rest = data
                break
            if self.closing:
                raise FUSEError(errno.ENOTCONN)
            if source.ended:
                return b""
            if h.nonblock:
                raise FUSEError(errno.EAGAIN)
            event = trio.Event()
            source.on_next(event.set)
            watch = Watch(None, h.tgid)
            self.watchdog.add(watch)
            try:
                with watch.scope:
                    await event.wait()
            finally:
                self.watchdog.discard(watch)
            if watch.result == 0:
                return b""  # the opener exited
            if watch.result is not None:
                raise FUSEError(watch.result)
        out = h.rest[:size]
        if source.lines and len(out) < len(h.rest) and b"\n" in out:
            out = out[:out.rindex(b"\n") + 1]
        h.rest = h.rest[len(out):]
        return out

    async def write(self, fh: int, off: int, buf: bytes) -> int:
        h = self.handles.get(fh)
        if type(h) is DeviceHandle:  # the per-call path, without a wrapper coroutine
            try:
                return h.file.write(off, buf)
            except Exception as e:
                raise fuse_error(e, "write") from None
            finally:
                self._notify_polls()
        return await self._other_write(fh, off, buf)

    @handler
    async def _other_write(self, fh: int, off: int, buf: bytes) -> int:
        h = self._handle(fh)
        if isinstance(h, ControlHandle):
            created = h.file.write(off, bytes(buf))
            if created is not None and h.node.created is not None:
                h.node.created(created)
            return len(buf)
        if isinstance(h, GeneratedHandle) and h.node.write_as is not None:
            h.node.write_as(bytes(buf), h.tid, h.tgid)
            return len(buf)
        if isinstance(h, GeneratedHandle) and h.node.write is not None:
            h.node.write(bytes(buf))
            return len(buf)  # a parameter takes the whole write (param_attr_store)
        raise FUSEError(errno.EBADF)

    @handler
    async def poll(self, inode: int, fh: int, poll_handle: pyfuse3.PollHandle | None,
                   ctx: pyfuse3.RequestContext) -> int:
        h = self._handle(fh)
        if isinstance(h, DeviceHandle):
            if h.file.poll(ctx.pid):
                h.polls.pop(ctx.pid, None)
                return select.POLLIN
            if poll_handle is not None:
                h.polls[ctx.pid] = poll_handle
                self._polling.add(h)
            return 0
        if isinstance(h, StreamHandle):
            data, seq = h.source.data_since(h.seq) if not h.rest else (b"", h.seq)
            if data:  # keep what was fetched: the next read delivers it
                h.rest = data
                h.seq = seq
            return select.POLLIN if h.rest else 0
        return select.POLLIN | select.POLLOUT

    @handler
    async def flush(self, fh: int) -> None:
        h = self._handle(fh)
        if isinstance(h, DeviceHandle):
            # A process that exits closes its mappings before its files (exit_mm, exit_files):
            # its mapped area goes first, as binder_vma_close would.
            h.file.flush(mm_gone=self.host.mm_gone(h.tgid))
            self._notify_polls()

    @handler
    async def release(self, fh: int) -> None:
        h = self.handles.pop(fh, None)
        if isinstance(h, DeviceHandle):
            h.polls.clear()
            self._polling.discard(h)
            h.file.release()
            self.host.release(h.file.proc)
            self._sync_proc_files()
            self._notify_polls()

    @handler
    async def access(self, inode: int, mode: int, ctx: pyfuse3.RequestContext) -> bool:
        self._node(inode)
        return True  # default_permissions: the kernel checks the modes

    @handler
    async def fsync(self, fh: int, datasync: bool) -> None:
        self._handle(fh)

    # Everything that would change the tree is refused.

    @handler
    async def mknod(self, parent_inode: int, name: bytes, mode: int, rdev: int,
                    ctx: pyfuse3.RequestContext) -> pyfuse3.EntryAttributes:
        raise FUSEError(errno.EPERM)

    @handler
    async def mkdir(self, parent_inode: int, name: bytes, mode: int,
                    ctx: pyfuse3.RequestContext) -> pyfuse3.EntryAttributes:
        parent = self._node(parent_inode)
        if not isinstance(parent, Dir) or parent.mkdir is None:
            raise FUSEError(errno.EPERM)
        if name in parent.children:
            raise FUSEError(errno.EEXIST)
        parent.mkdir(name.decode(errors="replace"))
        node = self.tree.lookup(parent_inode, name)
        if node is None:
            raise FUSEError(errno.EIO)
        node.nlookup += 1
        return self._attrs(node)

    @handler
    async def unlink(self, parent_inode: int, name: bytes, ctx: pyfuse3.RequestContext) -> None:
        parent = self._node(parent_inode)
        if not isinstance(parent, Dir) or parent.unlink is None:
            raise FUSEError(errno.EPERM)
        if name not in parent.children:
            raise FUSEError(errno.ENOENT)
        parent.unlink(name)

    @handler
    async def rmdir(self, parent_inode: int, name: bytes, ctx: pyfuse3.RequestContext) -> None:
        parent = self._node(parent_inode)
        if not isinstance(parent, Dir) or parent.rmdir is None:
            raise FUSEError(errno.EPERM)
        if name not in parent.children:
            raise FUSEError(errno.ENOENT)
        parent.rmdir(name.decode(errors="replace"))

    @handler
    async def rename(self, parent_inode_old: int, name_old: bytes, parent_inode_new: int,
                     name_new: bytes, flags: int, ctx: pyfuse3.RequestContext) -> None:
        parent = self._node(parent_inode_old)
        if parent_inode_new != parent_inode_old or not isinstance(parent, Dir) or parent.rename is None:
            raise FUSEError(errno.EPERM)
        if name_old not in parent.children:
            raise FUSEError(errno.ENOENT)
        parent.rename(name_old, name_new, flags)

    @handler
    async def symlink(self, parent_inode: int, name: bytes, target: bytes,
                      ctx: pyfuse3.RequestContext) -> pyfuse3.EntryAttributes:
        raise FUSEError(errno.EPERM)

    @handler
    async def link(self, inode: int, new_parent_inode: int, new_name: bytes,
                   ctx: pyfuse3.RequestContext) -> pyfuse3.EntryAttributes:
        raise FUSEError(errno.EPERM)

    @handler
    async def create(self, parent_inode: int, name: bytes, mode: int, flags: int,
                     ctx: pyfuse3.RequestContext) -> tuple[pyfuse3.FileInfo, pyfuse3.EntryAttributes]:
        raise FUSEError(errno.EACCES)
