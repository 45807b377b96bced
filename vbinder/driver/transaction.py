"""Transactions: binder_transaction() and what completes or fails them (6.1).

A transaction is built by its sender's write phase: it gets a buffer in the target's mapped
area, its data copied and its objects translated (:mod:`.translate`), and is queued on a target
thread or the target proc (one-way calls to a node wait in the node's async_todo). A sync call
sits on the sender's transaction_stack until the reply pops it. A failure is a
:class:`.errors.TransactionError` raised where a check fails, handled in one place: what exists
of the transaction is undone, the sender reads the error's BR code (BR_FAILED_REPLY,
BR_DEAD_REPLY, ...), and failed_transaction_log gets a line with the source line of the check.
"""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING, Final

from .. import fdabi, uapi
from ..abi import UserMemory
from ..uapi import (
    BR_DEAD_REPLY,
    BR_FAILED_REPLY,
    BR_FROZEN_REPLY,
    BR_OK,
    BR_REPLY,
    BR_TRANSACTION,
    BR_TRANSACTION_COMPLETE,
    BR_TRANSACTION_SEC_CTX,
    TF_CLEAR_BUF,
    TF_ONE_WAY,
)
from . import locks
from .alloc import Buffer
from .errors import BinderError, TransactionError, failed_line
from .fds import FdFixup, apply_fd_fixups, free_txn_fixups
from .fmt import pk, pk_obj, u32, zd
from .locks import INNER_LOCK, INNER_UNLOCK, NODE_LOCK, NODE_UNLOCK, PROC_LOCK, PROC_UNLOCK, SPIN, spin
from .log import Debug
from .node import dec_node, dec_node_tmpref, get_ref, inc_node
from .stats import Obj
from .trace import (
    M_ALLOC_BUF,
    M_BUFFER_RELEASE,
    M_FAILED_BUFFER_RELEASE,
    M_NAMES,
    M_TRANSACTION,
    M_TRANSACTION_RECEIVED,
    M_TXN_LATENCY_FREE,
    TP_ALLOC_BUF,
    TP_FAILED_BUFFER_RELEASE,
    TP_TRANSACTION,
    TP_TRANSACTION_RECEIVED,
    TP_TXN_LATENCY_FREE,
    TP_UPDATE_BUFFER_RELEASE,
    begin_client_call,
    begin_served_call,
    end_named_call,
)
from .transaction_log import LogEntry
from .translate import align8, copy_buffer, free_buf, release_entire_buffer, trace_buffer, transaction_buffer_release
from .work import TransactionComplete, Work, WorkType, dequeue

if TYPE_CHECKING:
    from .driver import Driver
    from .node import Node
    from .process import Proc
    from .thread import Thread

TR: Final = uapi.TRANSACTION_DATA
U32: Final = uapi.U32
U64: Final = uapi.U64


class Transaction(Work):
    """struct binder_transaction (its ``work`` is the object itself)."""

    __slots__ = ("driver", "debug_id", "from_", "from_parent", "to_proc", "to_thread",
                 "to_parent", "need_reply", "buffer", "code", "flags", "priority",
                 "sender_euid", "start_time", "security_ctx", "name", "fd_fixups")

    def __init__(self, driver: Driver, debug_id: int) -> None:
        super().__init__(WorkType.TRANSACTION)
        self.driver = driver
        self.debug_id = debug_id
        self.from_: Thread | None = None
        self.from_parent: Transaction | None = None
        self.to_proc: Proc | None = None
        self.to_thread: Thread | None = None
        self.to_parent: Transaction | None = None
        self.need_reply = False
        self.buffer: Buffer | None = None
        self.code = 0
        self.flags = 0
        self.priority = 0
        self.sender_euid = 0
        self.start_time = 0.0
        self.security_ctx = 0
        self.name: str | None = None  # "IFoo::method" when the caller named the call (tracing)
        self.fd_fixups: list[FdFixup] = []  # the files it carries (binder_txn_fd_fixup)

    def deliver(self, thread: Thread, out: bytearray, segments: list[tuple[int, bytes]]) -> bool:
        """The BINDER_WORK_TRANSACTION case: BR_TRANSACTION (or _SEC_CTX) or BR_REPLY, and the
        buffer's bytes at its address in the reader's mapped area (and its files' fixup segment)."""
        proc = thread.proc
        log = proc.log
        if log.debug_mask & SPIN:
            spin(log, INNER_UNLOCK, 4460)
        buf = self.buffer
        assert buf is not None
        node = buf.target_node
        if node is not None:
            target_ptr, cookie, cmd = node.ptr, node.cookie, BR_TRANSACTION
        else:
            target_ptr, cookie, cmd = 0, 0, BR_REPLY
        fixups = b""
        if self.fd_fixups:
            ret, fixups = apply_fd_fixups(proc, thread, self)
            if ret:
                return self._fd_fixups_failed(thread, cmd, ret, out)
        t_from = self.from_
        sender_pid = t_from.proc.pid if t_from is not None else 0
        data_ptr = buf.user_data
        offsets_ptr = data_ptr + ((buf.data_size + 7) & ~7)
        trd = TR.pack(target_ptr, cookie, self.code, self.flags, sender_pid, self.sender_euid,
                      buf.data_size, buf.offsets_size, data_ptr, offsets_ptr)
        if self.security_ctx:
            cmd = BR_TRANSACTION_SEC_CTX
            trd += U64.pack(self.security_ctx)
        out += U32.pack(cmd) + trd
        tp = proc.trace
        if tp.mask & M_TRANSACTION_RECEIVED:
            tp.emit(TP_TRANSACTION_RECEIVED, (self.debug_id,))
        proc.stat_br(thread, cmd)
        if self.name is not None and tp.mask & M_NAMES:
            if cmd == BR_REPLY:
                end_named_call(tp, proc.pid, thread.marks, -1)
            else:
                begin_served_call(tp, proc.pid, thread.marks, self.debug_id, self.name)
        if log.debug_mask & Debug.TRANSACTION:
            log.debug(Debug.TRANSACTION, "%d:%d %s %d %d:%d, cmd %u size %d-%d ptr %016x-%016x",
                      proc.pid, thread.pid,
                      "BR_TRANSACTION" if cmd == BR_TRANSACTION else
                      "BR_TRANSACTION_SEC_CTX" if cmd == BR_TRANSACTION_SEC_CTX else "BR_REPLY",
                      self.debug_id, t_from.proc.pid if t_from else 0, t_from.pid if t_from else 0, cmd,
                      buf.data_size, buf.offsets_size, data_ptr, offsets_ptr)
        if t_from is not None and log.debug_mask & SPIN:
            locks.thread_dec_tmpref(log, t_from)
        buf.allow_user_free = True
        segments.append((buf.user_data, bytes(buf.data)))
        if fixups:
            segments.append((fdabi.FIXUPS_ADDR, fixups))
        if cmd != BR_REPLY and not (self.flags & TF_ONE_WAY):
            if log.debug_mask & SPIN:
                locks.inner(log, 4747, 4751)
            self.to_parent = thread.transaction_stack
            self.to_thread = thread
            thread.transaction_stack = self
        else:
            free_transaction(self)
        return True

    def _fd_fixups_failed(self, thread: Thread, cmd: int, ret: int, out: bytearray) -> bool:
        """The receiver's process could not take the files (binder_thread_read after a failed
        binder_apply_fd_fixups): the transaction fails to its sender; a reply's reader gets
        BR_FAILED_REPLY and its read ends, a call's reader goes on to its next work."""
        proc = thread.proc
        buf = self.buffer
        assert buf is not None
        buf.transaction = None
        cleanup_transaction(self, "fd fixups failed", BR_FAILED_REPLY)
        free_buf(proc, buf, thread, True)
        try:
            raise TransactionError(BR_FAILED_REPLY, ret)  # (its line is what 6.1 prints as __LINE__)
        except TransactionError as err:
            proc.log.debug(Debug.FAILED_TRANSACTION, "%d:%d %stransaction %d fd fixups failed %d/%d, line %d",
                           proc.pid, thread.pid,
                           "async " if self.flags & TF_ONE_WAY else ("reply " if cmd == BR_REPLY else ""),
                           self.debug_id, err.reply, err.param, failed_line(err))
        if cmd != BR_REPLY:
            return False
        out += U32.pack(BR_FAILED_REPLY)
        proc.stat_br(thread, BR_FAILED_REPLY)
        return True

    def cancel(self, proc: Proc) -> None:
        cleanup_transaction(self, "process died.", BR_DEAD_REPLY)

    def debug_print(self, out: list[str], proc: Proc | None, prefix: str, transaction_prefix: str) -> None:
        self.print_transaction(out, proc, transaction_prefix)

    def print_transaction(self, out: list[str], proc: Proc | None, prefix: str) -> None:
        """print_binder_transaction_ilocked (``proc``: whose lists are printed)."""
        buffer = self.buffer
        to_proc = self.to_proc
        frm = self.from_
        to_thread = self.to_thread
        line = (f"{prefix} {self.debug_id}: {pk_obj(self)} from {frm.proc.pid if frm else 0}:{frm.pid if frm else 0}"
                f" to {to_proc.pid if to_proc else 0}:{to_thread.pid if to_thread else 0}"
                f" code {u32(self.code):x} flags {u32(self.flags):x} pri {self.priority} r{int(self.need_reply)}")
        old = self.driver.profile.debugfs == "3.4"  # 3.4: the buffer whoever prints, its raw address
        if not old and proc is not to_proc:
            # Can only safely deref buffer if we are holding the correct proc inner lock.
            out.append(line + "\n")
            return
        if buffer is None:
            out.append(line + " buffer free\n")
            return
        node = buffer.target_node
        if node is not None:
            line += f" node {node.debug_id}"
        data = f"{buffer.user_data:016x}" if old else pk(buffer.user_data)
        out.append(f"{line} size {zd(buffer.data_size)}:{zd(buffer.offsets_size)} data {data}\n")


# -- binder_transaction -------------------------------------------------------------------------------


class Sending:
    """A call or reply its sender's write is building (binder_transaction's locals): what exists
    so far, which is what a failure undoes (:func:`_failed`).

    ``target_proc`` holds a tmp ref once found, ``target_node`` (a call's) a strong local ref and
    a tmp ref; ``t`` and ``tcomplete`` exist once the target is known, ``t.buffer`` once
    allocated; ``offsets_done`` is where in the offsets array the translation of objects got to
    (0 before it began): the objects before it hold references.
    """

    __slots__ = ("proc", "thread", "reply", "debug_id", "entry", "target_proc", "target_thread",
                 "target_node", "in_reply_to", "t", "tcomplete", "offsets_done", "name")

    def __init__(self, proc: Proc, thread: Thread, reply: bool, debug_id: int, entry: LogEntry) -> None:
        self.proc = proc
        self.thread = thread
        self.reply = reply
        self.debug_id = debug_id
        self.entry = entry
        self.target_proc: Proc | None = None
        self.target_thread: Thread | None = None
        self.target_node: Node | None = None
        self.in_reply_to: Transaction | None = None
        self.t: Transaction | None = None
        self.tcomplete: TransactionComplete | None = None
        self.offsets_done = 0
        self.name: str | None = None  # a named call's "IFoo::method" (docs/tracing.md)


def transaction(proc: Proc, thread: Thread, tr: tuple[int, ...], reply: bool, extra_buffers_size: int,
                mem: UserMemory) -> None:
    """binder_transaction: send a call or a reply described by ``tr`` (binder_transaction_data).

    It only routes: find the target (the caller a reply answers, or the node a call goes to),
    build the transaction (its buffer copied and translated), submit it as a reply, a sync call
    or a one-way call. A failure anywhere is a :class:`TransactionError`, handled in one place.
    """
    s = _start(proc, thread, tr, reply)
    oneway = bool(tr[3] & TF_ONE_WAY)
    if not reply and mem.name is not None and proc.trace.mask & M_NAMES:
        raw, mem.name = mem.name, None  # the first transaction of the write takes the name
        s.name = begin_client_call(proc.trace, proc.pid, thread.marks, s.debug_id, oneway, raw)
    try:
        if reply:
            _find_reply_target(s)
        else:
            _find_call_target(s, tr[0] & 0xFFFFFFFF, oneway)
        t = _build(s, tr, extra_buffers_size, mem)
        if reply:
            _submit_reply(s, t)
        elif oneway:
            _submit_oneway(s, t)
        else:
            _submit_call(s, t)
    except TransactionError as err:
        _failed(s, tr, err)
        if s.name is not None and oneway:
            end_named_call(proc.trace, proc.pid, thread.marks, 0)
        return
    _done(s)
    if s.name is not None and oneway:
        end_named_call(proc.trace, proc.pid, thread.marks, 0)  # a one-way call's slice ends once it is sent


def _start(proc: Proc, thread: Thread, tr: tuple[int, ...], reply: bool) -> Sending:
    """A debug id and a transaction_log entry for the new transaction."""
    d = proc.driver
    debug_id = d.next_id()
    e = d.transaction_log.add()
    e.debug_id = debug_id
    e.call_type = 2 if reply else int(bool(tr[3] & TF_ONE_WAY))
    e.from_proc = proc.pid
    e.from_thread = thread.pid
    e.target_handle = tr[0] & 0xFFFFFFFF
    e.data_size = tr[6]
    e.offsets_size = tr[7]
    e.context_name = proc.context.name
    if proc.log.debug_mask & SPIN:
        locks.inner(proc.log, 2951, 2953)
    thread.ee = (debug_id, BR_OK, 0)
    return Sending(proc, thread, reply, debug_id, e)


def _find_reply_target(s: Sending) -> None:
    """A reply goes to the thread whose call is on top of the sender's transaction stack."""
    proc, thread = s.proc, s.thread
    log = proc.log
    spinlocks = log.debug_mask & SPIN
    if spinlocks:
        spin(log, INNER_LOCK, 2956)
    in_reply_to = thread.transaction_stack
    if in_reply_to is None:
        if spinlocks:
            spin(log, INNER_UNLOCK, 2959)
        log.user_error("%d:%d got reply transaction with no transaction stack", proc.pid, thread.pid)
        raise TransactionError(BR_FAILED_REPLY, -errno.EPROTO)
    if in_reply_to.to_thread is not thread:
        log.user_error("%d:%d got reply transaction with bad transaction stack, transaction %d has target %d:%d",
                       proc.pid, thread.pid, in_reply_to.debug_id,
                       in_reply_to.to_proc.pid if in_reply_to.to_proc else 0,
                       in_reply_to.to_thread.pid if in_reply_to.to_thread else 0)
        if spinlocks:
            spin(log, INNER_UNLOCK, 2976)
        raise TransactionError(BR_FAILED_REPLY, -errno.EPROTO)
    thread.transaction_stack = in_reply_to.to_parent
    if spinlocks:
        spin(log, INNER_UNLOCK, 2984)
    s.in_reply_to = in_reply_to
    target_thread = get_txn_from(in_reply_to)
    if target_thread is not None and spinlocks:
        spin(log, INNER_LOCK, 1519)  # binder_get_txn_from_and_acq_inner
    if target_thread is None:
        log.debug(Debug.FAILED_TRANSACTION, "%d:%d reply target not found", thread.pid, proc.pid)
        raise TransactionError(BR_DEAD_REPLY)
    if target_thread.transaction_stack is not in_reply_to:
        log.user_error("%d:%d got reply transaction with bad target transaction stack %d, expected %d",
                       proc.pid, thread.pid,
                       target_thread.transaction_stack.debug_id if target_thread.transaction_stack else 0,
                       in_reply_to.debug_id)
        if spinlocks:
            spin(log, INNER_UNLOCK, 3002)
        s.in_reply_to = None
        raise TransactionError(BR_FAILED_REPLY, -errno.EPROTO)
    s.target_thread = target_thread
    target_proc = s.target_proc = target_thread.proc
    target_proc.tmp_ref += 1
    if spinlocks:
        spin(log, INNER_UNLOCK, 3012)
    _log_target(s)


def _find_call_target(s: Sending, handle: int, oneway: bool) -> None:
    """A call goes to the node behind ``handle`` (0: the context manager), to the thread of the
    target proc that waits in this thread's stack of calls, if any (else to any of its threads)."""
    proc, thread = s.proc, s.thread
    log = proc.log
    spinlocks = log.debug_mask & SPIN
    if handle:
        if spinlocks:
            spin(log, PROC_LOCK, 3024)
        ref = get_ref(proc, handle, True)
        if ref is None:
            log.user_error("%d:%d got transaction to invalid handle, %u", proc.pid, thread.pid, handle)
            node, error = None, BR_FAILED_REPLY
        else:
            node, error = _get_node_refs_for_txn(ref.node), BR_DEAD_REPLY
        if spinlocks:
            spin(log, PROC_UNLOCK, 3036)
    else:
        mgr = proc.context.mgr_node
        node, error = (_get_node_refs_for_txn(mgr) if mgr is not None else None), BR_DEAD_REPLY
    if node is not None:
        s.target_node, s.target_proc = node, node.proc
        if not handle and node.proc is not None and node.proc.pid == proc.pid:
            log.user_error("%d:%d got transaction to context manager from process owning it", proc.pid, thread.pid)
            raise TransactionError(BR_FAILED_REPLY, -errno.EINVAL)
    else:
        log.debug(Debug.FAILED_TRANSACTION, "%d:%d cannot find target node", thread.pid, proc.pid)
        raise TransactionError(error, -errno.EINVAL)
    s.entry.to_node = node.debug_id
    if proc is s.target_proc:
        log.debug(Debug.FAILED_TRANSACTION, "%d:%d self transactions not allowed", thread.pid, proc.pid)
        raise TransactionError(BR_FAILED_REPLY, -errno.EINVAL)
    if spinlocks:
        spin(log, INNER_LOCK, 3084)
    if not oneway:
        s.target_thread = _caller_in_target(s)
    if spinlocks:
        spin(log, INNER_UNLOCK, 3141)
    _log_target(s)


def _caller_in_target(s: Sending) -> Thread | None:
    """A sync call's checks of the sender's state, and the thread of the target proc that the
    sender's stack of calls waits on (a nested call goes back to it)."""
    proc, thread = s.proc, s.thread
    w = thread.todo.head()
    if w is not None and w.type == WorkType.TRANSACTION and proc.profile.todo_check:
        proc.log.user_error("%d:%d new transaction not allowed when there is a transaction on thread todo",
                            proc.pid, thread.pid)
        if proc.log.debug_mask & SPIN:
            spin(proc.log, INNER_UNLOCK, 3101)
        raise TransactionError(BR_FAILED_REPLY, -errno.EPROTO)
    tmp = thread.transaction_stack
    if tmp is None:
        return None
    if tmp.to_thread is not thread:
        proc.log.user_error("%d:%d got new transaction with bad transaction stack, transaction %d has target %d:%d",
                            proc.pid, thread.pid, tmp.debug_id,
                            tmp.to_proc.pid if tmp.to_proc else 0, tmp.to_thread.pid if tmp.to_thread else 0)
        if proc.log.debug_mask & SPIN:
            spin(proc.log, INNER_UNLOCK, 3120)
        raise TransactionError(BR_FAILED_REPLY, -errno.EPROTO)
    while tmp is not None:
        frm = tmp.from_
        if frm is not None and frm.proc is s.target_proc:
            return frm
        tmp = tmp.from_parent
    return None


def _log_target(s: Sending) -> None:
    target_proc = s.target_proc
    assert target_proc is not None
    if s.target_thread is not None:
        s.entry.to_thread = s.target_thread.pid
    s.entry.to_proc = target_proc.pid


def _get_node_refs_for_txn(node: Node) -> Node | None:
    """binder_get_node_refs_for_txn: a strong local ref and a tmp ref on a live node."""
    log = node.driver.log
    if log.debug_mask & SPIN:
        locks.node_inner_lock(log, node, 2874)
    proc = node.proc
    if proc is not None:
        inc_node(node, True, False, None)
        node.tmp_refs += 1
        proc.tmp_ref += 1
    if log.debug_mask & SPIN:
        locks.node_inner_unlock(log, node, 2883)
    return node if proc is not None else None


def _build(s: Sending, tr: tuple[int, ...], extra_buffers_size: int, mem: UserMemory) -> Transaction:
    """The transaction and its BR_TRANSACTION_COMPLETE, a buffer in the target's area, and the
    sender's data copied into it (:func:`.translate.copy_buffer`)."""
    proc, thread = s.proc, s.thread
    d = proc.driver
    log = proc.log
    target_proc, target_node = s.target_proc, s.target_node
    assert target_proc is not None
    code, flags, data_size, offsets_size = tr[2], tr[3], tr[6], tr[7]
    t = s.t = Transaction(d, s.debug_id)
    d.stats.obj_created[Obj.TRANSACTION] += 1
    s.tcomplete = TransactionComplete()
    d.stats.obj_created[Obj.TRANSACTION_COMPLETE] += 1
    if log.debug_mask & Debug.TRANSACTION:
        _log_transaction(s, tr, extra_buffers_size)
    t.from_ = thread if not s.reply and not (flags & TF_ONE_WAY) else None
    t.sender_euid = proc.euid
    t.to_proc = target_proc
    t.to_thread = s.target_thread
    t.code = code
    t.flags = flags
    t.start_time = log.clock()
    secctx = b""
    if target_node is not None and target_node.txn_security_ctx:
        if proc.secctx is None:
            # No LSM context for the sender: the call fails as on the oracle's 6.1 (whose
            # security_secid_to_secctx answers -EINVAL for it).
            log.debug(Debug.FAILED_TRANSACTION, "%d:%d failed to get security context", thread.pid, proc.pid)
            raise TransactionError(BR_FAILED_REPLY, -errno.EINVAL)
        secctx = proc.secctx
        extra_buffers_size += align8(len(secctx))
    tp = proc.trace
    t.name = s.name
    in_reply_to = s.in_reply_to
    if in_reply_to is not None and in_reply_to.name is not None and tp.mask & M_NAMES:
        t.name = in_reply_to.name  # the reply ends the server's slice; its delivery ends the client's
        end_named_call(tp, proc.pid, thread.marks, in_reply_to.debug_id)
    if tp.mask & M_TRANSACTION:
        tp.emit(TP_TRANSACTION, (t.debug_id, target_node.debug_id if target_node is not None else 0,
                                 target_proc.pid, s.target_thread.pid if s.target_thread is not None else 0,
                                 int(s.reply), code, flags))
    is_async = not s.reply and bool(flags & TF_ONE_WAY)
    buf = t.buffer = _alloc_buffer(s, data_size, offsets_size, extra_buffers_size, is_async)
    if secctx:
        buf_offset = align8(data_size) + align8(offsets_size) + align8(extra_buffers_size) - align8(len(secctx))
        t.security_ctx = buf.user_data + buf_offset
        target_proc.alloc.copy_to_buffer(buf, buf_offset, secctx)
    buf.debug_id = t.debug_id
    buf.transaction = t
    buf.target_node = target_node
    buf.clear_on_free = bool(flags & TF_CLEAR_BUF)
    if tp.mask & M_ALLOC_BUF:
        trace_buffer(tp, TP_ALLOC_BUF, buf)
    copy_buffer(s, t, tr, extra_buffers_size, align8(len(secctx)), mem)
    if buf.oneway_spam_suspect:
        s.tcomplete.type = WorkType.TRANSACTION_ONEWAY_SPAM_SUSPECT
    return t


def _log_transaction(s: Sending, tr: tuple[int, ...], extra_buffers_size: int) -> None:
    """The BC_TRANSACTION/BC_REPLY line of the TRANSACTION mask."""
    proc, thread, log = s.proc, s.thread, s.proc.log
    target_proc = s.target_proc
    assert target_proc is not None
    if s.reply:
        assert s.target_thread is not None
        log.debug(Debug.TRANSACTION, "%d:%d BC_REPLY %d -> %d:%d, data %016x-%016x size %d-%d-%d",
                  proc.pid, thread.pid, s.debug_id, target_proc.pid, s.target_thread.pid,
                  tr[8], tr[9], tr[6], tr[7], extra_buffers_size)
    else:
        assert s.target_node is not None
        log.debug(Debug.TRANSACTION, "%d:%d BC_TRANSACTION %d -> %d - node %d, data %016x-%016x "
                  "size %d-%d-%d", proc.pid, thread.pid, s.debug_id, target_proc.pid, s.target_node.debug_id,
                  tr[8], tr[9], tr[6], tr[7], extra_buffers_size)


def _alloc_buffer(s: Sending, data_size: int, offsets_size: int, extra_buffers_size: int, is_async: bool) -> Buffer:
    """binder_alloc_new_buf in the target's area; its failure fails the transaction."""
    target_proc = s.target_proc
    assert target_proc is not None
    try:
        return target_proc.alloc.new_buf(data_size, offsets_size, extra_buffers_size, is_async, s.proc.pid)
    except BinderError as err:
        ret = -err.errno
        why = {-errno.ESRCH: ": vma cleared, target dead or dying", -errno.ENOSPC: ": no space left",
               -errno.ENOMEM: ": memory allocation failed"}.get(ret, "")
        s.proc.log.debug(Debug.FAILED_TRANSACTION, "cannot allocate buffer%s", why)
        raise TransactionError(s.proc.profile.no_vma_error if ret == -errno.ESRCH else BR_FAILED_REPLY,
                               ret) from None


def _submit_reply(s: Sending, t: Transaction) -> None:
    """A reply: to the caller's thread, which takes it off its stack; the call is done."""
    thread, target_thread, in_reply_to = s.thread, s.target_thread, s.in_reply_to
    target_proc, tcomplete = s.target_proc, s.tcomplete
    assert target_thread is not None and in_reply_to is not None
    assert target_proc is not None and tcomplete is not None
    log = s.proc.log
    spinlocks = log.debug_mask & SPIN
    if spinlocks:
        locks.inner(log, 505, 507)  # binder_enqueue_thread_work
        spin(log, INNER_LOCK, 3605)
    thread.enqueue_work(tcomplete)
    if target_thread.is_dead:
        if spinlocks:
            spin(log, INNER_UNLOCK, 3608)
        s.proc.log.debug(Debug.FAILED_TRANSACTION, "%d:%d dead process or thread", s.proc.pid, thread.pid)
        raise TransactionError(BR_DEAD_REPLY)
    pop_transaction(target_thread, in_reply_to)
    target_thread.enqueue_work(t)
    target_proc.outstanding_txns += 1
    if spinlocks:
        spin(log, INNER_UNLOCK, 3615)
    target_thread.wake()
    free_transaction(in_reply_to)


def _submit_call(s: Sending, t: Transaction) -> None:
    """A sync call: on the sender's stack until its reply; BR_TRANSACTION_COMPLETE waits for it."""
    thread, target_proc, tcomplete = s.thread, s.target_proc, s.tcomplete
    assert target_proc is not None and tcomplete is not None
    log = s.proc.log
    if s.proc.profile.defer_tcomplete:
        thread.enqueue_deferred_work(tcomplete)
    else:
        thread.enqueue_work(tcomplete)  # 3.x: BR_TRANSACTION_COMPLETE at once, as for one-way calls
    t.need_reply = True
    t.from_parent = thread.transaction_stack
    thread.transaction_stack = t
    if log.debug_mask & SPIN:
        locks.inner(log, 3620, 3632)
    error = proc_transaction(t, target_proc, s.target_thread)
    if error:
        if log.debug_mask & SPIN:
            locks.inner(log, 3636, 3638)
        pop_transaction(thread, t)
        raise _not_delivered(s, error)


def _submit_oneway(s: Sending, t: Transaction) -> None:
    """A one-way call: BR_TRANSACTION_COMPLETE at once."""
    target_proc, tcomplete = s.target_proc, s.tcomplete
    assert target_proc is not None and tcomplete is not None
    if s.proc.log.debug_mask & SPIN:
        locks.inner(s.proc.log, 505, 507)  # binder_enqueue_thread_work
    s.thread.enqueue_work(tcomplete)
    error = proc_transaction(t, target_proc, None)
    if error:
        raise _not_delivered(s, error)


def _not_delivered(s: Sending, error: int) -> TransactionError:
    """binder_proc_transaction refused: the target is dead (BR_DEAD_REPLY) or frozen."""
    s.proc.log.debug(Debug.FAILED_TRANSACTION, "%d:%d %s process or thread", s.proc.pid, s.thread.pid,
                     "frozen" if error == BR_FROZEN_REPLY else "dead")
    return TransactionError(error)


def proc_transaction(t: Transaction, proc: Proc, thread: Thread | None) -> int:
    """binder_proc_transaction: queue ``t`` for ``proc`` (0, or BR_DEAD_REPLY/BR_FROZEN_REPLY)."""
    assert t.buffer is not None
    node: Node = t.buffer.target_node  # type: ignore[assignment]
    log = proc.log
    spinlocks = log.debug_mask & SPIN
    if spinlocks:
        spin(log, NODE_LOCK, 2775)
    oneway = bool(t.flags & TF_ONE_WAY)
    pending_async = False
    if oneway:
        if node.has_async_transaction:
            pending_async = True
        else:
            node.has_async_transaction = True
    if spinlocks:
        spin(log, INNER_LOCK, 2784)
    if proc.is_frozen:
        proc.sync_recv |= not oneway
        proc.async_recv |= oneway
    if (proc.is_frozen and not oneway) or proc.is_dead or (thread is not None and thread.is_dead):
        if spinlocks:
            spin(log, INNER_UNLOCK, 2792)
            spin(log, NODE_UNLOCK, 2793)
        return BR_FROZEN_REPLY if proc.is_frozen else BR_DEAD_REPLY
    if thread is None and not pending_async:
        thread = proc.select_thread()
    if thread is not None:
        thread.enqueue_work(t)
    elif not pending_async:
        proc.todo.enqueue(t)
    else:
        outdated = _find_outdated_transaction(t, node) if t.flags & uapi.TF_UPDATE_TXN and proc.is_frozen else None
        if outdated is not None:
            proc.log.debug(Debug.TRANSACTION, "txn %d supersedes %d", t.debug_id, outdated.debug_id)
            dequeue(outdated)
            proc.outstanding_txns -= 1
        node.async_todo.enqueue(t)
        if spinlocks:  # (the outdated one is freed after the locks are dropped)
            spin(log, INNER_UNLOCK, 2823)
            spin(log, NODE_UNLOCK, 2824)
        if outdated is not None:
            old = outdated.buffer
            assert old is not None
            outdated.buffer = None
            old.transaction = None
            if proc.trace.mask & M_BUFFER_RELEASE:
                trace_buffer(proc.trace, TP_UPDATE_BUFFER_RELEASE, old)
            release_entire_buffer(proc, old, True)
            proc.alloc.free_buf(old)
            free_txn_fixups(outdated)
            t.driver.stats.obj_deleted[Obj.TRANSACTION] += 1
    if not pending_async:
        proc.wakeup_thread(thread)
        if spinlocks:
            spin(log, INNER_UNLOCK, 2823)
            spin(log, NODE_UNLOCK, 2824)
    proc.outstanding_txns += 1
    return 0


def _can_update_transaction(t1: Transaction, t2: Transaction) -> bool:
    """binder_can_update_transaction."""
    both = uapi.TF_ONE_WAY | uapi.TF_UPDATE_TXN
    if (t1.flags & t2.flags & both) != both or t1.to_proc is None or t2.to_proc is None:
        return False
    b1, b2 = t1.buffer, t2.buffer
    if b1 is None or b2 is None or b1.target_node is None or b2.target_node is None:
        return False
    n1, n2 = b1.target_node, b2.target_node
    return (t1.to_proc.pid == t2.to_proc.pid and t1.code == t2.code and t1.flags == t2.flags
            and b1.pid == b2.pid and n1.ptr == n2.ptr and n1.cookie == n2.cookie)


def _find_outdated_transaction(t: Transaction, node: Node) -> Transaction | None:
    """binder_find_outdated_transaction_ilocked."""
    for w in node.async_todo:
        if isinstance(w, Transaction) and _can_update_transaction(w, t):
            return w
    return None


def _done(s: Sending) -> None:
    """The transaction is on its way: the refs taken while finding the target go."""
    target_proc = s.target_proc
    assert target_proc is not None
    log = s.proc.log
    if s.target_thread is not None and log.debug_mask & SPIN:
        locks.thread_dec_tmpref(log, s.target_thread)
    target_proc.tmp_ref -= 1
    if log.debug_mask & SPIN:
        locks.proc_dec_tmpref(log, target_proc)
    if s.target_node is not None:
        dec_node_tmpref(s.target_node)
    s.entry.debug_id_done = s.debug_id


def _failed(s: Sending, tr: tuple[int, ...], err: TransactionError) -> None:
    """binder_transaction's error path: undo what of the transaction exists, log the failure
    with the line that raised it, and tell the sender (for a reply, also the caller it answered)."""
    proc, thread = s.proc, s.thread
    d = proc.driver
    line = failed_line(err)
    _undo(s)
    target_proc, target_thread = s.target_proc, s.target_thread
    d.log.debug(Debug.FAILED_TRANSACTION, "%d:%d transaction %s to %d:%d failed %d/%d/%d, size %d-%d line %d",
                proc.pid, thread.pid, "reply" if s.reply else ("async" if tr[3] & TF_ONE_WAY else "call"),
                target_proc.pid if target_proc else 0, target_thread.pid if target_thread else 0,
                s.debug_id, err.reply, err.param, tr[6], tr[7], line)
    log = d.log
    spinlocks = log.debug_mask & SPIN
    if target_thread is not None and spinlocks:
        locks.thread_dec_tmpref(log, target_thread)
    if target_proc is not None:
        target_proc.tmp_ref -= 1
        if spinlocks:
            locks.proc_dec_tmpref(log, target_proc)
    e = s.entry
    e.return_error = err.reply
    e.return_error_param = err.param
    e.return_error_line = line
    fe = d.failed_transaction_log.add(e.copy())
    e.debug_id_done = fe.debug_id_done = s.debug_id
    in_reply_to = s.in_reply_to
    if in_reply_to is not None:
        set_txn_from_error(in_reply_to, s.debug_id, err.reply, err.param)
        thread.return_error.cmd = BR_TRANSACTION_COMPLETE
        if spinlocks:
            locks.inner(log, 505, 507)  # binder_enqueue_thread_work
        thread.enqueue_work(thread.return_error)
        send_failed_reply(in_reply_to, err.reply)
    else:
        if spinlocks:
            locks.inner(log, 3746, 3749)
        thread.ee = (s.debug_id, err.reply, err.param)
        thread.return_error.cmd = err.reply
        if spinlocks:
            locks.inner(log, 505, 507)  # binder_enqueue_thread_work
        thread.enqueue_work(thread.return_error)


def _undo(s: Sending) -> None:
    """Release what exists of a failed transaction: its buffer (and what its translated objects
    took), its counts, the target node's refs."""
    d = s.proc.driver
    t, target_proc, target_node = s.t, s.target_proc, s.target_node
    if t is not None:
        free_txn_fixups(t)  # the files its fd objects took
        buf = t.buffer
        if buf is not None:
            assert target_proc is not None and s.tcomplete is not None
            if s.tcomplete.queued and d.log.debug_mask & SPIN:
                locks.inner(d.log, 527, 529)  # binder_dequeue_work (not delivered: it was queued)
            dequeue(s.tcomplete)
            tp = target_proc.trace
            if tp.mask & M_FAILED_BUFFER_RELEASE:
                trace_buffer(tp, TP_FAILED_BUFFER_RELEASE, buf)
            transaction_buffer_release(target_proc, buf, s.offsets_done, True)
            if target_node is not None:
                dec_node_tmpref(target_node)
            target_node = None  # the buffer's release dropped its strong ref
            buf.transaction = None
            target_proc.alloc.free_buf(buf)
        d.stats.obj_deleted[Obj.TRANSACTION_COMPLETE] += 1
        if d.trace.mask & M_TXN_LATENCY_FREE:
            trace_latency_free(t)
        d.stats.obj_deleted[Obj.TRANSACTION] += 1
    if target_node is not None:
        dec_node(target_node, True, False)
        dec_node_tmpref(target_node)


# -- completion and failure ------------------------------------------------------------------------


def get_txn_from(t: Transaction) -> Thread | None:
    """binder_get_txn_from: the sender thread of a sync call, while it lives."""
    return t.from_


def pop_transaction(target_thread: Thread, t: Transaction) -> None:
    """binder_pop_transaction_ilocked."""
    assert target_thread.transaction_stack is t
    target_thread.transaction_stack = t.from_parent
    t.from_ = None


def free_transaction(t: Transaction) -> None:
    """binder_free_transaction."""
    log = t.driver.log
    if log.debug_mask & SPIN:
        locks.free_transaction(log, t)
    target_proc = t.to_proc
    if target_proc is not None:
        target_proc.outstanding_txns -= 1
        if target_proc.outstanding_txns < 0:
            target_proc.log.warn("%s: Unexpected outstanding_txns %d", "binder_free_transaction",
                                 target_proc.outstanding_txns)
        if not target_proc.outstanding_txns and target_proc.is_frozen:
            target_proc.wake_freeze_waiters()
        if t.buffer is not None:
            t.buffer.transaction = None
    if t.driver.trace.mask & M_TXN_LATENCY_FREE:
        trace_latency_free(t)
    free_txn_fixups(t)
    t.driver.stats.obj_deleted[Obj.TRANSACTION] += 1


def trace_latency_free(t: Transaction) -> None:
    """binder_txn_latency_free: the transaction's ends as they are when it goes."""
    frm = t.from_
    t.driver.trace.emit(TP_TXN_LATENCY_FREE, (
        t.debug_id, frm.proc.pid if frm is not None else 0, frm.pid if frm is not None else 0,
        t.to_proc.pid if t.to_proc is not None else 0, t.to_thread.pid if t.to_thread is not None else 0,
        t.code, t.flags))


def send_failed_reply(t: Transaction, error_code: int) -> None:
    """binder_send_failed_reply: the caller of ``t`` (or of its parents) gets ``error_code``."""
    assert not (t.flags & TF_ONE_WAY)
    log = t.driver.log
    while True:
        target_thread = get_txn_from(t)
        if target_thread is not None:
            if log.debug_mask & SPIN:
                spin(log, INNER_LOCK, 1519)  # binder_get_txn_from_and_acq_inner
            log.debug(Debug.FAILED_TRANSACTION, "send failed reply for transaction %d to %d:%d",
                      t.debug_id, target_thread.proc.pid, target_thread.pid)
            pop_transaction(target_thread, t)
            if target_thread.reply_error.cmd == BR_OK:
                target_thread.reply_error.cmd = error_code
                target_thread.enqueue_work(target_thread.reply_error)
                target_thread.wake()
            else:
                log.warn("Unexpected reply error: %u", target_thread.reply_error.cmd)
            if log.debug_mask & SPIN:
                spin(log, INNER_UNLOCK, 1644)
                locks.thread_dec_tmpref(log, target_thread)
            free_transaction(t)
            return
        nxt = t.from_parent
        log.debug(Debug.FAILED_TRANSACTION, "send failed reply for transaction %d, target dead",
                  t.debug_id)
        free_transaction(t)
        if nxt is None:
            log.debug(Debug.DEAD_BINDER, "reply failed, no target thread at root")
            return
        t = nxt
        log.debug(Debug.DEAD_BINDER, "reply failed, no target thread -- retry %d", t.debug_id)


def cleanup_transaction(t: Transaction, reason: str, error_code: int) -> None:
    """binder_cleanup_transaction."""
    if t.buffer is not None and t.buffer.target_node is not None and not (t.flags & TF_ONE_WAY):
        send_failed_reply(t, error_code)
    else:
        t.driver.log.debug(Debug.DEAD_TRANSACTION, "undelivered transaction %d, %s",
                                t.debug_id, reason)
        free_transaction(t)


def set_txn_from_error(t: Transaction, debug_id: int, command: int, param: int) -> None:
    """binder_set_txn_from_error: the original caller's extended error, if not set yet."""
    frm = get_txn_from(t)
    if frm is None:
        return
    log = t.driver.log
    if log.debug_mask & SPIN:
        spin(log, INNER_LOCK, 1519)  # binder_get_txn_from_and_acq_inner
    if frm.ee[1] == BR_OK:
        frm.ee = (debug_id, command, param)
    if log.debug_mask & SPIN:
        spin(log, INNER_UNLOCK, 2902)
        locks.thread_dec_tmpref(log, frm)
