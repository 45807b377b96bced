"""struct binder_proc: one per open device file: its threads, nodes, refs, todo and allocator,
how work finds a thread, and the teardown of a thread or of the whole proc (6.1).

The BC commands of a write buffer are :mod:`.write`'s, the BR commands of a read :mod:`.read`'s.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Final

from ..uapi import BR_DEAD_REPLY, ioc_nr
from . import locks
from .alloc import Alloc
from .errors import Waiter
from .locks import INNER_LOCK, INNER_UNLOCK, NODE_LOCK, NODE_UNLOCK, PROC_LOCK, PROC_UNLOCK, SPIN, spin
from .log import KERN_ERR, KERN_INFO, Debug, Log
from .node import cleanup_ref, dec_node_tmpref, free_node
from .stats import Obj, Stats
from .thread import Looper, Thread
from .trace import M_RETURN, TP_RETURN, Tracer
from .transaction import send_failed_reply
from .work import WorkList, WorkType, dequeue

if TYPE_CHECKING:
    from .context import Context
    from .driver import Driver
    from .node import Node, Ref
    from .profile import Profile

TID_RECHECK_INTERVAL: Final = 1.0  # seconds a tid may be idle before its task's start time is checked again


class Proc:
    """A binder process: what one open of a device file owns."""

    def __init__(self, driver: Driver, context: Context, pid: int, euid: int, secctx: bytes | None = None) -> None:
        self.driver: Driver = driver
        self.profile: Profile = driver.profile
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
        self.trace: Tracer = driver.trace
        self.alloc: Alloc = Alloc(pid, driver.log, driver.trace)
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
        log = self.log
        if log.debug_mask & SPIN:
            locks.inner(log, 4885, 4887)
        now = self.clock()
        if thread is not None and now - thread.last_seen > TID_RECHECK_INTERVAL:
            host = self.driver.host
            start = host.start_time(tid) if host is not None else None
            if start is not None and thread.start_time is not None and start != thread.start_time:
                self.thread_release(thread)
                thread = None
        if thread is None:
            if log.debug_mask & SPIN:
                locks.inner(log, 4892, 4894)
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
        if self.trace.mask & M_RETURN:
            self.trace.emit(TP_RETURN, (cmd,))
        nr = ioc_nr(cmd)
        if nr < len(self.stats.br):
            self.driver.stats.br[nr] += 1
            self.stats.br[nr] += 1
            thread.stats.br[nr] += 1

    # -- teardown --------------------------------------------------------------------------------

    def release_work(self, lst: WorkList) -> None:
        """binder_release_work."""
        log = self.log
        while (w := lst.pop()) is not None:
            if log.debug_mask & SPIN:
                locks.inner(log, 4788, 4791)
            w.cancel(self)
        if log.debug_mask & SPIN:
            locks.release_work_end(log)

    def thread_release(self, thread: Thread) -> int:
        """binder_thread_release: a thread exits; returns its active transactions."""
        log = self.log
        spinlocks = log.debug_mask & SPIN
        if spinlocks:
            spin(log, INNER_LOCK, 4938)
        self.tmp_ref += 1  # (the thread's, until it is freed at the end)
        self.threads.pop(thread.pid, None)
        thread.stop_waiting()
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
        if spinlocks:
            spin(log, INNER_UNLOCK, 5001)
        if send_reply is not None:
            send_failed_reply(send_reply, BR_DEAD_REPLY)
        self.release_work(thread.todo)
        self.tmp_ref -= 1
        if spinlocks:
            locks.thread_dec_tmpref(log, thread, last=True)
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
        if self.log.debug_mask & SPIN:
            locks.inner(self.log, 5728, 5738)
        self.log.debug(Debug.OPEN_CLOSE, "binder_flush: %d woke %d threads", self.pid, woke)

    def node_release(self, node: Node, refs: int) -> int:
        """binder_node_release: the owner is gone; refs with death notifications are told."""
        d = self.driver
        log = self.log
        spinlocks = log.debug_mask & SPIN
        self.release_work(node.async_todo)
        if spinlocks:
            spin(log, NODE_LOCK, 5769)
            spin(log, INNER_LOCK, 5770)
        dequeue(node.work)
        if not node.refs and node.tmp_refs == 1:
            if spinlocks:
                spin(log, INNER_UNLOCK, 5777)
                spin(log, NODE_UNLOCK, 5778)
            free_node(node)
            return refs
        node.proc = None
        node.local_strong_refs = 0
        node.local_weak_refs = 0
        if spinlocks:
            spin(log, INNER_UNLOCK, 5787)
        d.dead_nodes[node] = None
        death = 0
        for ref in node.refs:
            refs += 1
            if ref.death is None:
                if spinlocks:
                    locks.inner(log, 5801, 5803)
                continue
            if spinlocks:
                spin(log, INNER_LOCK, 5801)
            death += 1
            ref.death.type = WorkType.DEAD_BINDER
            ref.proc.todo.enqueue(ref.death)
            ref.proc.wakeup_proc()
            if spinlocks:
                spin(log, INNER_UNLOCK, 5814)
        log.debug(Debug.DEAD_BINDER, "node %d now dead, refs %d, death %d", node.debug_id, refs, death)
        if spinlocks:
            spin(log, NODE_UNLOCK, 5820)
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
        spinlocks = log.debug_mask & SPIN
        if spinlocks:
            spin(log, INNER_LOCK, 5845)
        self.tmp_ref += 1  # (until the end)
        self.is_dead = True
        self.is_frozen = self.sync_recv = self.async_recv = False
        threads = active = 0
        for thread in sorted(self.threads.values(), key=lambda th: th.pid):  # (rb_first: by pid)
            threads += 1
            if spinlocks:
                spin(log, INNER_UNLOCK, 5862)
            active += self.thread_release(thread)
            if spinlocks:
                spin(log, INNER_LOCK, 5865)
        nodes = incoming = 0
        for node in sorted(self.nodes.values(), key=lambda n: n.ptr):
            nodes += 1
            node.tmp_refs += 1
            del self.nodes[node.ptr]
            if spinlocks:
                spin(log, INNER_UNLOCK, 5882)
            incoming = self.node_release(node, incoming)
            if spinlocks:
                spin(log, INNER_LOCK, 5884)
        if spinlocks:
            spin(log, INNER_UNLOCK, 5886)
            spin(log, PROC_LOCK, 5889)
        outgoing = 0
        for desc in sorted(self.refs_by_desc):
            ref = self.refs_by_desc.get(desc)
            if ref is None:
                continue
            outgoing += 1
            cleanup_ref(ref)
            if spinlocks:
                spin(log, PROC_UNLOCK, 5896)
                spin(log, PROC_LOCK, 5898)
        if spinlocks:
            spin(log, PROC_UNLOCK, 5900)
        self.release_work(self.todo)
        self.release_work(self.delivered_death)
        if not self.profile.alloc_module:
            # 3.x: binder_deferred_release frees the buffers and pages itself, then says so.
            self.tmp_ref -= 1
            buffers, pages = self._free_buffers()
            log.debug(Debug.OPEN_CLOSE, "%s: %d threads %d, nodes %d (ref %d), refs %d, active transactions %d",
                      "binder_deferred_release", self.pid, threads, nodes, incoming, outgoing, active)
            if log.debug_mask & Debug.OPEN_CLOSE:
                log.printk(KERN_INFO, f"binder_release: {self.pid} threads {threads}, nodes {nodes} (ref {incoming}), "
                           f"refs {outgoing}, active transactions {active}, buffers {buffers}, pages {pages}")
        else:
            log.debug(Debug.OPEN_CLOSE, "%s: %d threads %d, nodes %d (ref %d), refs %d, active transactions %d",
                      "binder_deferred_release", self.pid, threads, nodes, incoming, outgoing, active)
            self.tmp_ref -= 1
            if spinlocks:
                locks.proc_dec_tmpref(log, self)
            self._free_buffers()  # binder_free_proc: the allocator's buffers go with the proc
        d.stats.obj_deleted[Obj.PROC] += 1

    def _free_buffers(self) -> tuple[int, int]:
        """The buffers still allocated and the pages of the area go: (buffers, pages) freed."""
        for buf in self.alloc.allocated_buffers():
            t = buf.transaction
            if t is not None:
                if not self.profile.alloc_module:
                    self.log.printk(KERN_ERR, f"binder: release proc {self.pid}, transaction {t.debug_id}, not freed")
                t.buffer = None
                buf.transaction = None
        return self.alloc.deferred_release()
