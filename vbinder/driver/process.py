"""struct binder_proc: one per open device file, with the write and read loops (6.1).

``thread_write`` runs the BC commands of a write buffer; ``thread_read`` fills a read buffer with
BR commands, returning :data:`BLOCKED` where the kernel's reader would sleep (nothing is taken
off any queue before that, so the read can simply run again when woken).
"""

from __future__ import annotations

import errno
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Final

from .. import uapi
from ..abi import UserMemory
from ..uapi import (
    BC_ACQUIRE,
    BC_ACQUIRE_DONE,
    BC_ACQUIRE_RESULT,
    BC_ATTEMPT_ACQUIRE,
    BC_CLEAR_DEATH_NOTIFICATION,
    BC_DEAD_BINDER_DONE,
    BC_DECREFS,
    BC_ENTER_LOOPER,
    BC_EXIT_LOOPER,
    BC_FREE_BUFFER,
    BC_INCREFS,
    BC_INCREFS_DONE,
    BC_REGISTER_LOOPER,
    BC_RELEASE,
    BC_REPLY,
    BC_REPLY_SG,
    BC_REQUEST_DEATH_NOTIFICATION,
    BC_TRANSACTION,
    BC_TRANSACTION_SG,
    BR_DEAD_REPLY,
    BR_NOOP,
    BR_OK,
    BR_SPAWN_LOOPER,
    ioc_nr,
)
from .alloc import Alloc
from .errors import BinderError, Waiter
from .log import Debug, Log
from .node import (
    cleanup_ref,
    dec_node_nilocked,
    dec_node_tmpref,
    free_node,
    get_node,
    get_ref,
    inc_ref_for_node,
    update_ref_for_handle,
)
from .stats import Obj, Stats
from .thread import Looper, Thread
from .transaction import (
    free_buf,
    send_failed_reply,
    transaction,
)
from .work import Death, Work, WorkList, WorkType, dequeue

if TYPE_CHECKING:
    from .binder import Driver
    from .context import Context
    from .node import Node, Ref

U32: Final = uapi.U32
TR: Final = uapi.TRANSACTION_DATA
_TR_SIZE: Final = TR.size
_MIN_READ_SPACE: Final = uapi.TRANSACTION_DATA_SECCTX.size + 4  # sizeof(tr) + 4: room for a transaction
TASK_SIZE: Final = 0x0000_7FFF_FFFF_F000  # x86-64 user space ends here: copies beyond fault
BLOCKED: Final = 1  # thread_read's ret where the kernel's reader would sleep (never a kernel return)
TID_RECHECK_INTERVAL: Final = 1.0  # seconds a tid may be idle before its task's start time is checked again
_REFCOUNT_NAMES = {BC_INCREFS: "IncRefs", BC_ACQUIRE: "Acquire", BC_RELEASE: "Release", BC_DECREFS: "DecRefs"}


class _WriteBuffer:
    """The write buffer of a BINDER_WRITE_READ, as binder_thread_write's get_user/copy_from_user see it."""

    __slots__ = ("data", "mem", "buffer", "size")

    def __init__(self, mem: UserMemory, buffer: int, size: int) -> None:
        self.data = mem.read(buffer, size)  # None: read piece by piece, faulting where get_user would
        self.mem = mem
        self.buffer = buffer
        self.size = size

    def get(self, ptr: int, n: int) -> bytes | None:
        """``n`` bytes at offset ``ptr``, or None (EFAULT) past the end or outside user memory."""
        if ptr + n > self.size:
            return None
        data = self.data
        if data is not None:
            return data[ptr:ptr + n]
        return self.mem.read(self.buffer + ptr, n)


class Proc:
    """A binder process: what one open of a device file owns."""

    def __init__(self, driver: Driver, context: Context, pid: int, euid: int, secctx: bytes | None = None) -> None:
        self.driver: Driver = driver
        self.log: Log = driver.log
        self.clock: Callable[[], float] = driver.log.clock
        self.context: Context = context
        self.pid: int = pid
        self.euid: int = euid
        self.secctx: bytes | None = secctx  # the LSM context of the opener, as binder sends it (None: no LSM)
        self.freeze_waiters: list[Waiter] = []
        self.threads: dict[int, Thread] = {}
        self.nodes: dict[int, Node] = {}  # by ptr
        self.refs_by_desc: dict[int, Ref] = {}
        self.refs_by_node: dict[Node, Ref] = {}
        self.todo: WorkList = WorkList()
        self.waiting_threads: deque[Thread] = deque()  # most recently idle first
        self.delivered_death: WorkList = WorkList()
        self.max_threads: int = 0
        self.requested_threads: int = 0
        self.requested_threads_started: int = 0
        self.tmp_ref: int = 0
        self.is_dead: bool = False
        self.is_frozen: bool = False
        self.sync_recv: bool = False
        self.async_recv: bool = False
        self.outstanding_txns: int = 0
        self.oneway_spam_detection_enabled: bool = False
        self.stats: Stats = Stats()
        self.alloc: Alloc = Alloc(pid, driver.log)
        self.vm_flags: int = 0  # the mapped area's vma flags, as binder_mmap left them
        self.page_prot: int = 0  # and its vm_page_prot
        self.mmap_range: tuple[int, int] = (0, 0)

    # -- threads and wakeups ----------------------------------------------------------------------

    def get_thread(self, tid: int) -> Thread:
        """binder_get_thread: the thread for ``tid``, created on first use.

        A tid whose task has a new start time is a new thread: the old one's state is dropped
        (checked when the tid was idle for a while, since a tid is reused only after its task
        exited; DESIGN.md, Identity).
        """
        thread = self.threads.get(tid)
        now = self.clock()
        if thread is not None and now - thread.last_seen > TID_RECHECK_INTERVAL:
            host = self.driver.host
            start = host.start_time(tid) if host is not None else None
            if start is not None and thread.start_time is not None and start != thread.start_time:
                self.thread_release(thread)
                thread = None
        if thread is None:
            thread = self.threads[tid] = Thread(self, tid)
            self.driver.stats.obj_created[Obj.THREAD] += 1
            host = self.driver.host
            if host is not None:
                thread.start_time = host.start_time(tid)
        thread.last_seen = now
        return thread

    def select_thread(self) -> Thread | None:
        """binder_select_thread_ilocked: take the most recently idle waiting thread."""
        if not self.waiting_threads:
            return None
        thread = self.waiting_threads.popleft()
        thread.waiting = False
        return thread

    def wakeup_thread(self, thread: Thread | None) -> None:
        """binder_wakeup_thread_ilocked."""
        if thread is not None:
            thread.wake()
            return
        for th in self.threads.values():
            if th.looper & Looper.POLL and th.available_for_proc_work():
                th.wake()

    def wakeup_proc(self) -> None:
        """binder_wakeup_proc_ilocked."""
        self.wakeup_thread(self.select_thread())

    def stop_waiting(self, thread: Thread) -> None:
        """A waiting read ends (woken, interrupted or cancelled): list_del_init(waiting_thread_node)."""
        if thread.waiting:
            self.waiting_threads.remove(thread)
            thread.waiting = False
        thread.waiter = None
        thread.looper &= ~Looper.WAITING

    def wake_freeze_waiters(self) -> None:
        """wake_up_interruptible_all(&proc->freeze_wait)."""
        waiters, self.freeze_waiters = self.freeze_waiters, []
        for w in waiters:
            w.wake()

    def txns_pending(self) -> bool:
        """binder_txns_pending_ilocked."""
        return self.outstanding_txns > 0 or any(th.transaction_stack for th in self.threads.values())

    def stat_br(self, thread: Thread, cmd: int) -> None:
        """binder_stat_br."""
        nr = ioc_nr(cmd)
        if nr < len(self.stats.br):
            self.driver.stats.br[nr] += 1
            self.stats.br[nr] += 1
            thread.stats.br[nr] += 1

    # -- write -----------------------------------------------------------------------------------

    def thread_write(self, thread: Thread, buffer: int, size: int, consumed: int,
                     mem: UserMemory) -> tuple[int, int]:
        """binder_thread_write: (ret, consumed)."""
        src = _WriteBuffer(mem, buffer, size)
        ptr = consumed
        end = size
        log = self.log
        d = self.driver

        while ptr < end and thread.return_error.cmd == BR_OK:
            consumed = ptr  # *consumed: where the last whole command ended
            raw = src.get(ptr, 4)
            if raw is None:
                return -errno.EFAULT, consumed
            cmd = int.from_bytes(raw, "little")
            ptr += 4
            nr = ioc_nr(cmd)
            if nr < len(self.stats.bc):
                d.stats.bc[nr] += 1
                self.stats.bc[nr] += 1
                thread.stats.bc[nr] += 1
            if cmd in (BC_INCREFS, BC_ACQUIRE, BC_RELEASE, BC_DECREFS):
                raw = src.get(ptr, 4)
                if raw is None:
                    return -errno.EFAULT, consumed
                target = int.from_bytes(raw, "little")
                ptr += 4
                strong = cmd in (BC_ACQUIRE, BC_RELEASE)
                increment = cmd in (BC_INCREFS, BC_ACQUIRE)
                ret = -1
                ref: Ref | None = None
                if increment and not target:
                    mgr = self.context.mgr_node
                    if mgr is not None:
                        if mgr.proc is self:
                            log.user_error("%d:%d context manager tried to acquire desc 0",
                                           self.pid, thread.pid)
                            return -errno.EINVAL, consumed
                        ret, ref = inc_ref_for_node(self, mgr, strong, None)
                if ret:
                    ret, ref = update_ref_for_handle(self, target, increment, strong)
                if not ret and ref is not None and ref.desc != target:
                    log.user_error("%d:%d tried to acquire reference to desc %d, got %d instead",
                                   self.pid, thread.pid, target, ref.desc)
                name = _REFCOUNT_NAMES[cmd]
                if ret:
                    log.user_error("%d:%d %s %d refcount change on invalid ref %d ret %d",
                                   self.pid, thread.pid, name, int(strong), target, ret)
                elif ref is not None:
                    log.debug(Debug.USER_REFS, "%d:%d %s ref %d desc %d s %d w %d", self.pid, thread.pid,
                              name, ref.debug_id, ref.desc, ref.strong, ref.weak)
            elif cmd in (BC_INCREFS_DONE, BC_ACQUIRE_DONE):
                raw = src.get(ptr, 16)
                if raw is None:
                    return -errno.EFAULT, consumed
                node_ptr, cookie = uapi.PTR_COOKIE.unpack(raw)
                ptr += 16
                name = "BC_INCREFS_DONE" if cmd == BC_INCREFS_DONE else "BC_ACQUIRE_DONE"
                node = get_node(self, node_ptr)
                if node is None:
                    log.user_error("%d:%d %s u%016x no match", self.pid, thread.pid, name, node_ptr)
                    continue
                if cookie != node.cookie:
                    log.user_error("%d:%d %s u%016x node %d cookie mismatch %016x != %016x", self.pid,
                                   thread.pid, name, node_ptr, node.debug_id, cookie, node.cookie)
                    dec_node_tmpref(node)
                    continue
                if cmd == BC_ACQUIRE_DONE:
                    if not node.pending_strong_ref:
                        log.user_error("%d:%d BC_ACQUIRE_DONE node %d has no pending acquire request",
                                       self.pid, thread.pid, node.debug_id)
                        dec_node_tmpref(node)
                        continue
                    node.pending_strong_ref = False
                else:
                    if not node.pending_weak_ref:
                        log.user_error("%d:%d BC_INCREFS_DONE node %d has no pending increfs request",
                                       self.pid, thread.pid, node.debug_id)
                        dec_node_tmpref(node)
                        continue
                    node.pending_weak_ref = False
                dec_node_nilocked(node, cmd == BC_ACQUIRE_DONE, False)
                log.debug(Debug.USER_REFS, "%d:%d %s node %d ls %d lw %d tr %d", self.pid, thread.pid, name,
                          node.debug_id, node.local_strong_refs, node.local_weak_refs, node.tmp_refs)
                dec_node_tmpref(node)
            elif cmd == BC_ATTEMPT_ACQUIRE:
                log.err("BC_ATTEMPT_ACQUIRE not supported")
                return -errno.EINVAL, consumed
            elif cmd == BC_ACQUIRE_RESULT:
                log.err("BC_ACQUIRE_RESULT not supported")
                return -errno.EINVAL, consumed
            elif cmd == BC_FREE_BUFFER:
                raw = src.get(ptr, 8)
                if raw is None:
                    return -errno.EFAULT, consumed
                data_ptr = int.from_bytes(raw, "little")
                ptr += 8
                try:
                    buf = self.alloc.prepare_to_free(data_ptr)
                except BinderError:
                    log.user_error("%d:%d BC_FREE_BUFFER u%016x matched unreturned or currently freeing buffer",
                                   self.pid, thread.pid, data_ptr)
                    continue
                if buf is None:
                    log.user_error("%d:%d BC_FREE_BUFFER u%016x no match", self.pid, thread.pid, data_ptr)
                    continue
                if log.debug_mask & Debug.FREE_BUFFER:
                    log.debug(Debug.FREE_BUFFER, "%d:%d BC_FREE_BUFFER u%016x found buffer %d for %s transaction",
                              self.pid, thread.pid, data_ptr, buf.debug_id,
                              "active" if buf.transaction is not None else "finished")
                free_buf(self, buf)
            elif cmd in (BC_TRANSACTION_SG, BC_REPLY_SG, BC_TRANSACTION, BC_REPLY):
                sg = cmd in (BC_TRANSACTION_SG, BC_REPLY_SG)
                n = _TR_SIZE + 8 if sg else _TR_SIZE
                raw = src.get(ptr, n)
                if raw is None:
                    return -errno.EFAULT, consumed
                ptr += n
                extra = int.from_bytes(raw[_TR_SIZE:], "little") if sg else 0
                transaction(self, thread, TR.unpack_from(raw), cmd in (BC_REPLY, BC_REPLY_SG), extra, mem)
            elif cmd == BC_REGISTER_LOOPER:
                log.debug(Debug.THREADS, "%d:%d BC_REGISTER_LOOPER", self.pid, thread.pid)
                if thread.looper & Looper.ENTERED:
                    thread.looper |= Looper.INVALID
                    log.user_error("%d:%d ERROR: BC_REGISTER_LOOPER called after BC_ENTER_LOOPER",
                                   self.pid, thread.pid)
                elif self.requested_threads == 0:
                    thread.looper |= Looper.INVALID
                    log.user_error("%d:%d ERROR: BC_REGISTER_LOOPER called without request",
                                   self.pid, thread.pid)
                else:
                    self.requested_threads -= 1
                    self.requested_threads_started += 1
                thread.looper |= Looper.REGISTERED
            elif cmd == BC_ENTER_LOOPER:
                log.debug(Debug.THREADS, "%d:%d BC_ENTER_LOOPER", self.pid, thread.pid)
                if thread.looper & Looper.REGISTERED:
                    thread.looper |= Looper.INVALID
                    log.user_error("%d:%d ERROR: BC_ENTER_LOOPER called after BC_REGISTER_LOOPER",
                                   self.pid, thread.pid)
                thread.looper |= Looper.ENTERED
            elif cmd == BC_EXIT_LOOPER:
                log.debug(Debug.THREADS, "%d:%d BC_EXIT_LOOPER", self.pid, thread.pid)
                thread.looper |= Looper.EXITED
            elif cmd in (BC_REQUEST_DEATH_NOTIFICATION, BC_CLEAR_DEATH_NOTIFICATION):
                raw = src.get(ptr, 12)
                if raw is None:
                    return -errno.EFAULT, consumed
                target, cookie = uapi.HANDLE_COOKIE.unpack(raw)
                ptr += 12
                self._death_notification(thread, cmd, target, cookie)
            elif cmd == BC_DEAD_BINDER_DONE:
                raw = src.get(ptr, 8)
                if raw is None:
                    return -errno.EFAULT, consumed
                cookie = int.from_bytes(raw, "little")
                ptr += 8
                death = next((w for w in self.delivered_death if isinstance(w, Death) and w.cookie == cookie), None)
                log.debug(Debug.DEAD_BINDER, "%d:%d BC_DEAD_BINDER_DONE %016x found %s", self.pid, thread.pid,
                          cookie, f"{id(death) if death is not None else 0:016x}")
                if death is None:
                    log.user_error("%d:%d BC_DEAD_BINDER_DONE %016x not found", self.pid, thread.pid, cookie)
                    continue
                dequeue(death)
                if death.type == WorkType.DEAD_BINDER_AND_CLEAR:
                    death.type = WorkType.CLEAR_DEATH_NOTIFICATION
                    self._queue_clear(thread, death)
            else:
                log.err("%d:%d unknown command %u", self.pid, thread.pid, cmd)
                return -errno.EINVAL, consumed
        return 0, ptr

    def _queue_clear(self, thread: Thread, death: Work) -> None:
        if thread.looper & (Looper.REGISTERED | Looper.ENTERED):
            thread.enqueue_work(death)
        else:
            self.todo.enqueue(death)
            self.wakeup_proc()

    def _death_notification(self, thread: Thread, cmd: int, target: int, cookie: int) -> None:
        log = self.log
        name = ("BC_REQUEST_DEATH_NOTIFICATION" if cmd == BC_REQUEST_DEATH_NOTIFICATION
                else "BC_CLEAR_DEATH_NOTIFICATION")
        ref = get_ref(self, target, False)
        if ref is None:
            log.user_error("%d:%d %s invalid ref %d", self.pid, thread.pid, name, target)
            return
        log.debug(Debug.DEATH_NOTIFICATION, "%d:%d %s %016x ref %d desc %d s %d w %d for node %d",
                  self.pid, thread.pid, name, cookie, ref.debug_id, ref.desc, ref.strong, ref.weak,
                  ref.node.debug_id)
        if cmd == BC_REQUEST_DEATH_NOTIFICATION:
            if ref.death is not None:
                log.user_error("%d:%d BC_REQUEST_DEATH_NOTIFICATION death notification already set",
                               self.pid, thread.pid)
                return
            self.driver.stats.obj_created[Obj.DEATH] += 1
            ref.death = Death(cookie)
            if ref.node.proc is None:
                ref.death.type = WorkType.DEAD_BINDER
                self.todo.enqueue(ref.death)
                self.wakeup_proc()
            return
        death = ref.death
        if death is None:
            log.user_error("%d:%d BC_CLEAR_DEATH_NOTIFICATION death notification not active",
                           self.pid, thread.pid)
            return
        if death.cookie != cookie:
            log.user_error("%d:%d BC_CLEAR_DEATH_NOTIFICATION death notification cookie mismatch %016x != %016x",
                           self.pid, thread.pid, death.cookie, cookie)
            return
        ref.death = None
        if not death.queued:
            death.type = WorkType.CLEAR_DEATH_NOTIFICATION
            self._queue_clear(thread, death)
        else:
            death.type = WorkType.DEAD_BINDER_AND_CLEAR

    # -- read -------------------------------------------------------------------------------------

    def thread_read(self, thread: Thread, buffer: int, size: int, consumed: int, nonblock: bool,
                    segments: list[tuple[int, bytes]]) -> tuple[int, int]:
        """binder_thread_read: (ret, consumed); appends the copy-to-user segments.

        Where the kernel would sleep, ret is :data:`BLOCKED` and the thread's ``waiter`` is what to
        wait on; nothing was taken off any queue.
        """
        log = self.log
        if buffer + size > TASK_SIZE or consumed > size:
            return -errno.EFAULT, consumed  # put_user/copy_to_user outside user space
        out = bytearray()
        if consumed == 0:
            out += U32.pack(BR_NOOP)
        while True:  # retry:
            wait_for_proc_work = thread.available_for_proc_work()
            if wait_for_proc_work:
                if not (thread.looper & (Looper.REGISTERED | Looper.ENTERED)):
                    log.user_error("%d:%d ERROR: Thread waiting for process work before calling "
                                   "BC_REGISTER_LOOPER or BC_ENTER_LOOPER (state %x)",
                                   self.pid, thread.pid, int(thread.looper | Looper.WAITING))
            if not thread.has_work(wait_for_proc_work):
                if nonblock:
                    return -errno.EAGAIN, consumed
                thread.looper |= Looper.WAITING
                if wait_for_proc_work and not thread.waiting:
                    self.waiting_threads.appendleft(thread)
                    thread.waiting = True
                thread.waiter = Waiter()
                return BLOCKED, consumed
            got_txn = self._read_work(thread, buffer, size, consumed, out, wait_for_proc_work, segments)
            if got_txn is None:  # only the BR_NOOP and no reason to return: sleep again
                continue
            break
        consumed += len(out)
        if (self.requested_threads == 0 and not self.waiting_threads
                and self.requested_threads_started < self.max_threads
                and thread.looper & (Looper.REGISTERED | Looper.ENTERED)):
            self.requested_threads += 1
            log.debug(Debug.THREADS, "%d:%d BR_SPAWN_LOOPER", self.pid, thread.pid)
            out[0:4] = U32.pack(BR_SPAWN_LOOPER)
            self.stat_br(thread, BR_SPAWN_LOOPER)
        segments.insert(0, (buffer + consumed - len(out), bytes(out)))
        return 0, consumed

    def _read_work(self, thread: Thread, buffer: int, size: int, consumed: int, out: bytearray,
                   wait_for_proc_work: bool, segments: list[tuple[int, bytes]]) -> bool | None:
        """The work loop of binder_thread_read; None means "goto retry"."""
        start = consumed
        while True:
            if thread.todo:
                lst = thread.todo
            elif self.todo and wait_for_proc_work:
                lst = self.todo
            else:
                if start + len(out) == 4 and not thread.looper_need_return:
                    return None
                return False
            if size - (start + len(out)) < _MIN_READ_SPACE:
                return False
            w = lst.pop()
            assert w is not None
            if not thread.todo:
                thread.process_todo = False
            if w.deliver(thread, out, segments):
                return True

    # -- teardown --------------------------------------------------------------------------------

    def release_work(self, lst: WorkList) -> None:
        """binder_release_work."""
        while (w := lst.pop()) is not None:
            w.cancel(self)

    def thread_release(self, thread: Thread) -> int:
        """binder_thread_release: a thread exits; returns its active transactions."""
        log = self.log
        self.threads.pop(thread.pid, None)
        self.stop_waiting(thread)
        t = thread.transaction_stack
        send_reply = t if t is not None and t.to_thread is thread else None
        thread.is_dead = True
        active = 0
        while t is not None:
            active += 1
            log.debug(Debug.DEAD_TRANSACTION, "release %d:%d transaction %d %s, still active",
                      self.pid, thread.pid, t.debug_id, "in" if t.to_thread is thread else "out")
            if t.to_thread is thread:
                self.outstanding_txns -= 1
                t.to_proc = None
                t.to_thread = None
                if t.buffer is not None:
                    t.buffer.transaction = None
                    t.buffer = None
                t = t.to_parent
            elif t.from_ is thread:
                t.from_ = None
                t = t.from_parent
            else:
                raise AssertionError("bad transaction stack")
        if send_reply is not None:
            send_failed_reply(send_reply, BR_DEAD_REPLY)
        self.release_work(thread.todo)
        self.driver.stats.obj_deleted[Obj.THREAD] += 1
        return active

    def flush(self) -> None:
        """binder_deferred_flush: every thread returns to user space."""
        woke = 0
        for thread in self.threads.values():
            thread.looper_need_return = True
            if thread.looper & Looper.WAITING:
                thread.wake()
                woke += 1
        self.log.debug(Debug.OPEN_CLOSE, "binder_flush: %d woke %d threads", self.pid, woke)

    def node_release(self, node: Node, refs: int) -> int:
        """binder_node_release: the owner is gone; refs with death notifications are told."""
        d = self.driver
        self.release_work(node.async_todo)
        dequeue(node.work)
        if not node.refs and node.tmp_refs == 1:
            free_node(node)
            return refs
        node.proc = None
        node.local_strong_refs = 0
        node.local_weak_refs = 0
        d.dead_nodes[node] = None
        death = 0
        for ref in node.refs:
            refs += 1
            if ref.death is None:
                continue
            death += 1
            ref.death.type = WorkType.DEAD_BINDER
            ref.proc.todo.enqueue(ref.death)
            ref.proc.wakeup_proc()
        self.log.debug(Debug.DEAD_BINDER, "node %d now dead, refs %d, death %d", node.debug_id, refs, death)
        dec_node_tmpref(node)
        return refs

    def release(self) -> None:
        """binder_deferred_release: the last close of the file."""
        d = self.driver
        log = self.log
        d.procs.remove(self)
        if d.debugfs_procs.get(self.pid) is self:
            del d.debugfs_procs[self.pid]
        ctx = self.context
        if ctx.mgr_node is not None and ctx.mgr_node.proc is self:
            log.debug(Debug.DEAD_BINDER, "%s: %d context_mgr_node gone", "binder_deferred_release", self.pid)
            ctx.mgr_node = None
        self.is_dead = True
        self.is_frozen = self.sync_recv = self.async_recv = False
        threads = active = 0
        for thread in list(self.threads.values()):
            threads += 1
            active += self.thread_release(thread)
        nodes = incoming = 0
        for node in sorted(self.nodes.values(), key=lambda n: n.ptr):
            nodes += 1
            node.tmp_refs += 1
            del self.nodes[node.ptr]
            incoming = self.node_release(node, incoming)
        outgoing = 0
        for desc in sorted(self.refs_by_desc):
            ref = self.refs_by_desc.get(desc)
            if ref is None:
                continue
            outgoing += 1
            cleanup_ref(ref)
        self.release_work(self.todo)
        self.release_work(self.delivered_death)
        log.debug(Debug.OPEN_CLOSE, "%s: %d threads %d, nodes %d (ref %d), refs %d, active transactions %d",
                  "binder_deferred_release", self.pid, threads, nodes, incoming, outgoing, active)
        # binder_free_proc: the allocator's buffers go with the proc.
        for buf in self.alloc.allocated_buffers():
            if buf.transaction is not None:
                buf.transaction.buffer = None
                buf.transaction = None
        self.alloc.deferred_release()
        d.stats.obj_deleted[Obj.PROC] += 1
