"""Transactions: binder_transaction() and what completes or fails them (6.1).

A transaction is built by its sender's write phase: it gets a buffer in the target's mapped
area, its objects translated (nodes become handles and back), and is queued on a target thread
or the target proc (one-way calls to a node wait in the node's async_todo). A sync call sits on
the sender's transaction_stack until the reply pops it; errors reach the sender as a return
error work item (BR_FAILED_REPLY, BR_DEAD_REPLY, ...) and a line in failed_transaction_log.
"""

from __future__ import annotations

import errno
import sys
from typing import TYPE_CHECKING, Final

from .. import uapi
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
from .alloc import Buffer
from .errors import BinderError
from .fmt import pk, pk_obj, u32, zd
from .log import Debug
from .node import (
    dec_node,
    dec_node_tmpref,
    get_node,
    get_ref,
    inc_node,
    inc_ref_for_node,
    new_node,
    update_ref_for_handle,
)
from .stats import Obj
from .work import TransactionComplete, Work, WorkType, dequeue

if TYPE_CHECKING:
    from .binder import Driver
    from .node import Node
    from .process import Proc
    from .thread import Thread

TR: Final = uapi.TRANSACTION_DATA
FBO: Final = uapi.FLAT_BINDER_OBJECT
U32: Final = uapi.U32
U64: Final = uapi.U64
_OBJECT_SIZES = {
    uapi.BINDER_TYPE_BINDER: 24, uapi.BINDER_TYPE_WEAK_BINDER: 24,
    uapi.BINDER_TYPE_HANDLE: 24, uapi.BINDER_TYPE_WEAK_HANDLE: 24,
    uapi.BINDER_TYPE_FD: 24, uapi.BINDER_TYPE_PTR: 40, uapi.BINDER_TYPE_FDA: 32,
}
_OBJECT_NAMES = {v: k for k, v in uapi.OBJECT_TYPES.items()}


def _line() -> int:
    """The source line of the caller: what 6.1 prints as ``__LINE__`` of a failed check."""
    return sys._getframe(1).f_lineno


def _align8(n: int) -> int:
    return (n + 7) & ~7


class Transaction(Work):
    """struct binder_transaction (its ``work`` is the object itself)."""

    __slots__ = ("driver", "debug_id", "from_", "from_parent", "to_proc", "to_thread",
                 "to_parent", "need_reply", "buffer", "code", "flags", "priority",
                 "sender_euid", "start_time", "security_ctx")

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

    def deliver(self, thread: Thread, out: bytearray, segments: list[tuple[int, bytes]]) -> bool:
        """The BINDER_WORK_TRANSACTION case: BR_TRANSACTION (or _SEC_CTX) or BR_REPLY, and the
        buffer's bytes at its address in the reader's mapped area."""
        proc = thread.proc
        buf = self.buffer
        assert buf is not None
        node = buf.target_node
        if node is not None:
            target_ptr, cookie, cmd = node.ptr, node.cookie, BR_TRANSACTION
        else:
            target_ptr, cookie, cmd = 0, 0, BR_REPLY
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
        proc.stat_br(thread, cmd)
        log = proc.log
        if log.debug_mask & Debug.TRANSACTION:
            log.debug(Debug.TRANSACTION, "%d:%d %s %d %d:%d, cmd %u size %d-%d ptr %016x-%016x",
                      proc.pid, thread.pid,
                      "BR_TRANSACTION" if cmd == BR_TRANSACTION else
                      "BR_TRANSACTION_SEC_CTX" if cmd == BR_TRANSACTION_SEC_CTX else "BR_REPLY",
                      self.debug_id, t_from.proc.pid if t_from else 0, t_from.pid if t_from else 0, cmd,
                      buf.data_size, buf.offsets_size, data_ptr, offsets_ptr)
        buf.allow_user_free = True
        segments.append((buf.user_data, bytes(buf.data)))
        if cmd != BR_REPLY and not (self.flags & TF_ONE_WAY):
            self.to_parent = thread.transaction_stack
            self.to_thread = thread
            thread.transaction_stack = self
        else:
            free_transaction(self)
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
        if proc is not to_proc:
            # Can only safely deref buffer if we are holding the correct proc inner lock.
            out.append(line + "\n")
            return
        if buffer is None:
            out.append(line + " buffer free\n")
            return
        node = buffer.target_node
        if node is not None:
            line += f" node {node.debug_id}"
        out.append(f"{line} size {zd(buffer.data_size)}:{zd(buffer.offsets_size)} data {pk(buffer.user_data)}\n")


class LogEntry:
    """struct binder_transaction_log_entry."""

    __slots__ = ("debug_id", "debug_id_done", "call_type", "from_proc", "from_thread", "target_handle",
                 "to_proc", "to_thread", "to_node", "data_size", "offsets_size", "return_error_line",
                 "return_error", "return_error_param", "context_name")

    def __init__(self) -> None:
        self.debug_id = self.debug_id_done = self.call_type = 0
        self.from_proc = self.from_thread = self.target_handle = 0
        self.to_proc = self.to_thread = self.to_node = 0
        self.data_size = self.offsets_size = 0
        self.return_error_line = self.return_error = self.return_error_param = 0
        self.context_name = ""

    def copy(self) -> LogEntry:
        e = LogEntry()
        e.debug_id, e.debug_id_done, e.call_type = self.debug_id, self.debug_id_done, self.call_type
        e.from_proc, e.from_thread, e.target_handle = self.from_proc, self.from_thread, self.target_handle
        e.to_proc, e.to_thread, e.to_node = self.to_proc, self.to_thread, self.to_node
        e.data_size, e.offsets_size = self.data_size, self.offsets_size
        e.return_error_line, e.return_error = self.return_error_line, self.return_error
        e.return_error_param, e.context_name = self.return_error_param, self.context_name
        return e


class TransactionLog:
    """struct binder_transaction_log: a ring of 32 entries."""

    SIZE = 32

    def __init__(self) -> None:
        self.entries: list[LogEntry | None] = [None] * self.SIZE
        self.cur = -1
        self.full = False

    def add(self, e: LogEntry | None = None) -> LogEntry:
        self.cur += 1
        if self.cur >= self.SIZE:
            self.full = True
        e = e or LogEntry()
        self.entries[self.cur % self.SIZE] = e
        return e

    def ordered(self) -> list[LogEntry]:
        if self.cur < 0:
            return []
        count = self.SIZE if self.full else self.cur + 1
        start = self.cur + 1 - count
        return [e for i in range(start, start + count) if (e := self.entries[i % self.SIZE]) is not None]


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
    t.driver.stats.obj_deleted[Obj.TRANSACTION] += 1


def send_failed_reply(t: Transaction, error_code: int) -> None:
    """binder_send_failed_reply: the caller of ``t`` (or of its parents) gets ``error_code``."""
    assert not (t.flags & TF_ONE_WAY)
    log = t.driver.log
    while True:
        target_thread = get_txn_from(t)
        if target_thread is not None:
            log.debug(Debug.FAILED_TRANSACTION, "send failed reply for transaction %d to %d:%d",
                      t.debug_id, target_thread.proc.pid, target_thread.pid)
            pop_transaction(target_thread, t)
            if target_thread.reply_error.cmd == BR_OK:
                target_thread.reply_error.cmd = error_code
                target_thread.enqueue_work(target_thread.reply_error)
                target_thread.wake()
            else:
                log.warn("Unexpected reply error: %u", target_thread.reply_error.cmd)
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


def get_object(proc: Proc, buffer: Buffer, offset: int, src: bytes | None) -> tuple[int, bytes]:
    """binder_get_object: (object size or 0, object bytes) at ``offset`` of the buffer (or ``src``)."""
    data_size = buffer.data_size
    read_size = min(40, data_size - offset)
    if offset > data_size or read_size < 4 or offset % 4:
        return 0, b""
    obj = src[offset:offset + read_size] if src is not None else proc.alloc.copy_from_buffer(
        buffer, offset, read_size)
    if len(obj) < read_size:
        return 0, b""
    size = _OBJECT_SIZES.get(int.from_bytes(obj[:4], "little"), 0)
    if not size or offset > data_size - size or data_size < size:
        return 0, b""
    return size, obj[:size]


def transaction_buffer_release(proc: Proc, buffer: Buffer, off_end_offset: int) -> None:
    """binder_transaction_buffer_release: drop what the buffer's objects hold."""
    log = proc.log
    debug_id = buffer.debug_id
    if log.debug_mask & Debug.TRANSACTION:
        log.debug(Debug.TRANSACTION, "%d buffer release %d, size %d-%d, failed at %x",
                  proc.pid, buffer.debug_id, buffer.data_size, buffer.offsets_size, off_end_offset)
    if buffer.target_node is not None:
        dec_node(buffer.target_node, True, False)
    off_start = _align8(buffer.data_size)
    for boff in range(off_start, off_end_offset, 8):
        object_offset = int.from_bytes(proc.alloc.copy_from_buffer(buffer, boff, 8), "little")
        size, obj = get_object(proc, buffer, object_offset, None)
        if size == 0:
            log.err("transaction release %d bad object at offset %d, size %d",
                    debug_id, object_offset, buffer.data_size)
            continue
        otype, _flags, value, _cookie = FBO.unpack_from(obj) if size >= 24 else (0, 0, 0, 0)
        if otype in (uapi.BINDER_TYPE_BINDER, uapi.BINDER_TYPE_WEAK_BINDER):
            node = get_node(proc, value)
            if node is None:
                log.err("transaction release %d bad node %016x", debug_id, value)
                continue
            log.debug(Debug.TRANSACTION, "        node %d u%016x", node.debug_id, node.ptr)
            dec_node(node, otype == uapi.BINDER_TYPE_BINDER, False)
            dec_node_tmpref(node)
        elif otype in (uapi.BINDER_TYPE_HANDLE, uapi.BINDER_TYPE_WEAK_HANDLE):
            handle = value & 0xFFFFFFFF
            ret, ref = update_ref_for_handle(proc, handle, False, otype == uapi.BINDER_TYPE_HANDLE)
            if ret or ref is None:
                log.err("transaction release %d bad handle %d, ret = %d", debug_id, handle, ret)
                continue
            log.debug(Debug.TRANSACTION, "        ref %d desc %d", ref.debug_id, ref.desc)
        elif otype in (uapi.BINDER_TYPE_FD, uapi.BINDER_TYPE_PTR, uapi.BINDER_TYPE_FDA):
            pass  # fds are not carried yet; PTR holds nothing
        else:
            log.err("transaction release %d bad object type %x", debug_id, otype)


def release_entire_buffer(proc: Proc, buffer: Buffer) -> None:
    """binder_release_entire_buffer."""
    transaction_buffer_release(proc, buffer, _align8(buffer.data_size) + buffer.offsets_size)


def free_buf(proc: Proc, buffer: Buffer) -> None:
    """binder_free_buf: release the buffer; a freed one-way buffer lets the node's next one run."""
    if buffer.transaction is not None:
        buffer.transaction.buffer = None
        buffer.transaction = None
    node = buffer.target_node
    if buffer.async_transaction and node is not None:
        assert node.has_async_transaction
        w = node.async_todo.pop()
        if w is None:
            node.has_async_transaction = False
        else:
            proc.todo.enqueue(w)
            proc.wakeup_proc()
    release_entire_buffer(proc, buffer)
    proc.alloc.free_buf(buffer)


# -- object translation ----------------------------------------------------------------------------


def translate_binder(obj: list[int], t: Transaction, thread: Thread) -> int:
    """binder_translate_binder: a sender's own object becomes a handle in the target."""
    proc = thread.proc
    target_proc = t.to_proc
    assert target_proc is not None
    otype, flags, ptr, cookie = obj
    node = get_node(proc, ptr)
    if node is None:
        node = new_node(proc, ptr, cookie, flags, thread.pid)
    try:
        if cookie != node.cookie:
            proc.log.user_error("%d:%d sending u%016x node %d, cookie mismatch %016x != %016x",
                                proc.pid, thread.pid, ptr, node.debug_id, cookie, node.cookie)
            return -errno.EINVAL
        ret, ref = inc_ref_for_node(target_proc, node, otype == uapi.BINDER_TYPE_BINDER, thread)
        if ret:
            return ret
        assert ref is not None
        obj[0] = uapi.BINDER_TYPE_HANDLE if otype == uapi.BINDER_TYPE_BINDER else uapi.BINDER_TYPE_WEAK_HANDLE
        obj[2] = ref.desc
        obj[3] = 0
        proc.log.debug(Debug.TRANSACTION, "        node %d u%016x -> ref %d desc %d",
                       node.debug_id, node.ptr, ref.debug_id, ref.desc)
        return 0
    finally:
        dec_node_tmpref(node)


def translate_handle(obj: list[int], t: Transaction, thread: Thread) -> int:
    """binder_translate_handle: a handle becomes the target's own object or its own handle."""
    proc = thread.proc
    target_proc = t.to_proc
    otype, _flags, handle, _cookie = obj
    handle &= 0xFFFFFFFF
    src = get_ref(proc, handle, otype == uapi.BINDER_TYPE_HANDLE)
    if src is None:
        proc.log.user_error("%d:%d got transaction with invalid handle, %d", proc.pid, thread.pid, handle)
        return -errno.EINVAL
    node = src.node
    node.tmp_refs += 1
    try:
        if node.proc is target_proc:
            strong = otype == uapi.BINDER_TYPE_HANDLE
            obj[0] = uapi.BINDER_TYPE_BINDER if strong else uapi.BINDER_TYPE_WEAK_BINDER
            obj[2] = node.ptr
            obj[3] = node.cookie
            inc_node(node, strong, False, None)
            proc.log.debug(Debug.TRANSACTION, "        ref %d desc %d -> node %d u%016x",
                           src.debug_id, src.desc, node.debug_id, node.ptr)
        else:
            assert target_proc is not None
            ret, dest = inc_ref_for_node(target_proc, node, otype == uapi.BINDER_TYPE_HANDLE, None)
            if ret:
                return ret
            assert dest is not None
            obj[2] = dest.desc
            obj[3] = 0
            proc.log.debug(Debug.TRANSACTION, "        ref %d desc %d -> ref %d desc %d (node %d)",
                           src.debug_id, src.desc, dest.debug_id, dest.desc, node.debug_id)
        return 0
    finally:
        dec_node_tmpref(node)


# -- binder_transaction -------------------------------------------------------------------------------


def _get_node_refs_for_txn(node: Node) -> Node | None:
    """binder_get_node_refs_for_txn: a strong local ref and a tmp ref on a live node."""
    if node.proc is None:
        return None
    inc_node(node, True, False, None)
    node.tmp_refs += 1
    node.proc.tmp_ref += 1
    return node


def proc_transaction(t: Transaction, proc: Proc, thread: Thread | None) -> int:
    """binder_proc_transaction: queue ``t`` for ``proc`` (0, or BR_DEAD_REPLY/BR_FROZEN_REPLY)."""
    assert t.buffer is not None
    node: Node = t.buffer.target_node  # type: ignore[assignment]
    oneway = bool(t.flags & TF_ONE_WAY)
    pending_async = False
    if oneway:
        if node.has_async_transaction:
            pending_async = True
        else:
            node.has_async_transaction = True
    if proc.is_frozen:
        proc.sync_recv |= not oneway
        proc.async_recv |= oneway
    if (proc.is_frozen and not oneway) or proc.is_dead or (thread is not None and thread.is_dead):
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
        if outdated is not None:
            old = outdated.buffer
            assert old is not None
            outdated.buffer = None
            old.transaction = None
            release_entire_buffer(proc, old)
            proc.alloc.free_buf(old)
            t.driver.stats.obj_deleted[Obj.TRANSACTION] += 1
    if not pending_async:
        proc.wakeup_thread(thread)
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


def transaction(proc: Proc, thread: Thread, tr: tuple[int, ...], reply: bool, extra_buffers_size: int,
                mem: UserMemory) -> None:
    """binder_transaction: send a call or a reply described by ``tr`` (binder_transaction_data)."""
    d = proc.driver
    log = proc.log
    (target_handle_raw, _cookie, code, flags, _spid, _seuid, data_size, offsets_size,
     data_ptr, offsets_ptr) = tr
    target_handle = target_handle_raw & 0xFFFFFFFF
    t_debug_id = d.next_id()
    e = d.transaction_log.add()
    e.debug_id = t_debug_id
    e.call_type = 2 if reply else int(bool(flags & TF_ONE_WAY))
    e.from_proc = proc.pid
    e.from_thread = thread.pid
    e.target_handle = target_handle
    e.data_size = data_size
    e.offsets_size = offsets_size
    e.context_name = proc.context.name
    thread.ee = (t_debug_id, BR_OK, 0)

    return_error = 0
    return_error_param = 0
    return_error_line = 0
    target_proc: Proc | None = None
    target_thread: Thread | None = None
    target_node: Node | None = None
    in_reply_to: Transaction | None = None
    t: Transaction | None = None
    tcomplete: TransactionComplete | None = None
    buffer_offset = 0
    stage = "before_t"  # how far we got: which cleanup the error path needs

    def fail() -> None:
        nonlocal target_node
        if stage in ("dead_proc", "buffer"):
            assert t is not None and t.buffer is not None and target_proc is not None
            if stage == "dead_proc":
                assert tcomplete is not None
                dequeue(tcomplete)
            transaction_buffer_release(target_proc, t.buffer, buffer_offset)
            if target_node is not None:
                dec_node_tmpref(target_node)
            target_node = None
            t.buffer.transaction = None
            target_proc.alloc.free_buf(t.buffer)
        if stage in ("dead_proc", "buffer", "t"):
            d.stats.obj_deleted[Obj.TRANSACTION_COMPLETE] += 1
            d.stats.obj_deleted[Obj.TRANSACTION] += 1
        if target_node is not None:
            dec_node(target_node, True, False)
            dec_node_tmpref(target_node)
        log.debug(Debug.FAILED_TRANSACTION,
                  "%d:%d transaction %s to %d:%d failed %d/%d/%d, size %d-%d line %d",
                  proc.pid, thread.pid, "reply" if reply else ("async" if flags & TF_ONE_WAY else "call"),
                  target_proc.pid if target_proc else 0, target_thread.pid if target_thread else 0,
                  t_debug_id, return_error, return_error_param, data_size, offsets_size,
                  return_error_line)
        if target_proc is not None:
            target_proc.tmp_ref -= 1
        e.return_error = return_error
        e.return_error_param = return_error_param
        e.return_error_line = return_error_line
        fe = d.failed_transaction_log.add(e.copy())
        e.debug_id_done = t_debug_id
        fe.debug_id_done = t_debug_id
        if in_reply_to is not None:
            set_txn_from_error(in_reply_to, t_debug_id, return_error, return_error_param)
            thread.return_error.cmd = BR_TRANSACTION_COMPLETE
            thread.enqueue_work(thread.return_error)
            send_failed_reply(in_reply_to, return_error)
        else:
            thread.ee = (t_debug_id, return_error, return_error_param)
            thread.return_error.cmd = return_error
            thread.enqueue_work(thread.return_error)

    if reply:
        in_reply_to = thread.transaction_stack
        if in_reply_to is None:
            log.user_error("%d:%d got reply transaction with no transaction stack", proc.pid, thread.pid)
            return_error, return_error_param, return_error_line = BR_FAILED_REPLY, -errno.EPROTO, _line()
            return fail()
        if in_reply_to.to_thread is not thread:
            log.user_error("%d:%d got reply transaction with bad transaction stack, transaction %d has target %d:%d",
                           proc.pid, thread.pid, in_reply_to.debug_id,
                           in_reply_to.to_proc.pid if in_reply_to.to_proc else 0,
                           in_reply_to.to_thread.pid if in_reply_to.to_thread else 0)
            return_error, return_error_param, return_error_line = BR_FAILED_REPLY, -errno.EPROTO, _line()
            in_reply_to = None
            return fail()
        thread.transaction_stack = in_reply_to.to_parent
        target_thread = get_txn_from(in_reply_to)
        if target_thread is None:
            log.debug(Debug.FAILED_TRANSACTION, "%d:%d reply target not found", thread.pid, proc.pid)
            return_error, return_error_line = BR_DEAD_REPLY, _line()
            return fail()
        if target_thread.transaction_stack is not in_reply_to:
            log.user_error("%d:%d got reply transaction with bad target transaction stack %d, expected %d",
                           proc.pid, thread.pid,
                           target_thread.transaction_stack.debug_id if target_thread.transaction_stack else 0,
                           in_reply_to.debug_id)
            return_error, return_error_param, return_error_line = BR_FAILED_REPLY, -errno.EPROTO, _line()
            in_reply_to = None
            target_thread = None
            return fail()
        target_proc = target_thread.proc
        target_proc.tmp_ref += 1
    else:
        if target_handle:
            ref = get_ref(proc, target_handle, True)
            if ref is not None:
                target_node = _get_node_refs_for_txn(ref.node)
                if target_node is None:
                    return_error = BR_DEAD_REPLY
                else:
                    target_proc = target_node.proc
            else:
                log.user_error("%d:%d got transaction to invalid handle, %u", proc.pid, thread.pid, target_handle)
                return_error = BR_FAILED_REPLY
        else:
            mgr = proc.context.mgr_node
            if mgr is not None:
                target_node = _get_node_refs_for_txn(mgr)
                if target_node is None:
                    return_error = BR_DEAD_REPLY
                else:
                    target_proc = target_node.proc
            else:
                return_error = BR_DEAD_REPLY
            if target_node is not None and target_proc is not None and target_proc.pid == proc.pid:
                log.user_error("%d:%d got transaction to context manager from process owning it",
                               proc.pid, thread.pid)
                return_error, return_error_param, return_error_line = BR_FAILED_REPLY, -errno.EINVAL, _line()
                return fail()
        if target_node is None:
            log.debug(Debug.FAILED_TRANSACTION, "%d:%d cannot find target node", thread.pid, proc.pid)
            return_error_param, return_error_line = -errno.EINVAL, _line()
            return fail()
        assert target_proc is not None
        e.to_node = target_node.debug_id
        if proc is target_proc:
            log.debug(Debug.FAILED_TRANSACTION, "%d:%d self transactions not allowed", thread.pid, proc.pid)
            return_error, return_error_param, return_error_line = BR_FAILED_REPLY, -errno.EINVAL, _line()
            return fail()
        w = thread.todo.head()
        if not (flags & TF_ONE_WAY) and w is not None and w.type == WorkType.TRANSACTION:
            log.user_error("%d:%d new transaction not allowed when there is a transaction on thread todo",
                           proc.pid, thread.pid)
            return_error, return_error_param, return_error_line = BR_FAILED_REPLY, -errno.EPROTO, _line()
            return fail()
        if not (flags & TF_ONE_WAY) and thread.transaction_stack is not None:
            tmp: Transaction | None = thread.transaction_stack
            assert tmp is not None
            if tmp.to_thread is not thread:
                log.user_error("%d:%d got new transaction with bad transaction stack, transaction %d has target %d:%d",
                               proc.pid, thread.pid, tmp.debug_id,
                               tmp.to_proc.pid if tmp.to_proc else 0,
                               tmp.to_thread.pid if tmp.to_thread else 0)
                return_error, return_error_param, return_error_line = BR_FAILED_REPLY, -errno.EPROTO, _line()
                return fail()
            while tmp is not None:
                frm = tmp.from_
                if frm is not None and frm.proc is target_proc:
                    target_thread = frm
                    break
                tmp = tmp.from_parent
    if target_thread is not None:
        e.to_thread = target_thread.pid
    assert target_proc is not None
    e.to_proc = target_proc.pid

    t = Transaction(d, t_debug_id)
    d.stats.obj_created[Obj.TRANSACTION] += 1
    tcomplete = TransactionComplete()
    d.stats.obj_created[Obj.TRANSACTION_COMPLETE] += 1
    stage = "t"
    if log.debug_mask & Debug.TRANSACTION:
        if reply:
            assert target_thread is not None
            log.debug(Debug.TRANSACTION, "%d:%d BC_REPLY %d -> %d:%d, data %016x-%016x size %d-%d-%d",
                      proc.pid, thread.pid, t.debug_id, target_proc.pid, target_thread.pid,
                      data_ptr, offsets_ptr, data_size, offsets_size, extra_buffers_size)
        else:
            assert target_node is not None
            log.debug(Debug.TRANSACTION, "%d:%d BC_TRANSACTION %d -> %d - node %d, data %016x-%016x "
                      "size %d-%d-%d", proc.pid, thread.pid, t.debug_id, target_proc.pid, target_node.debug_id,
                      data_ptr, offsets_ptr, data_size, offsets_size, extra_buffers_size)
    t.from_ = thread if not reply and not (flags & TF_ONE_WAY) else None
    t.sender_euid = proc.euid
    t.to_proc = target_proc
    t.to_thread = target_thread
    t.code = code
    t.flags = flags
    t.priority = 0
    t.start_time = d.log.clock()
    secctx = b""
    if target_node is not None and target_node.txn_security_ctx:
        if proc.secctx is None:
            # No LSM context for the sender: the call fails as on the oracle's 6.1 (whose
            # security_secid_to_secctx answers -EINVAL for it).
            log.debug(Debug.FAILED_TRANSACTION, "%d:%d failed to get security context", thread.pid, proc.pid)
            return_error, return_error_param, return_error_line = BR_FAILED_REPLY, -errno.EINVAL, _line()
            return fail()
        secctx = proc.secctx
        extra_buffers_size += _align8(len(secctx))

    try:
        buf = target_proc.alloc.new_buf(data_size, offsets_size, extra_buffers_size,
                                        not reply and bool(flags & TF_ONE_WAY), proc.pid)
    except BinderError as err:
        ret = -err.errno
        s = {-errno.ESRCH: ": vma cleared, target dead or dying", -errno.ENOSPC: ": no space left",
             -errno.ENOMEM: ": memory allocation failed"}.get(ret, "")
        log.debug(Debug.FAILED_TRANSACTION, "cannot allocate buffer%s", s)
        return_error_param = ret
        return_error = BR_DEAD_REPLY if ret == -errno.ESRCH else BR_FAILED_REPLY
        return_error_line = _line()
        return fail()
    t.buffer = buf
    stage = "buffer"
    if secctx:
        buf_offset = _align8(data_size) + _align8(offsets_size) + _align8(extra_buffers_size) - _align8(len(secctx))
        t.security_ctx = buf.user_data + buf_offset
        target_proc.alloc.copy_to_buffer(buf, buf_offset, secctx)
    buf.debug_id = t.debug_id
    buf.transaction = t
    buf.target_node = target_node
    buf.clear_on_free = bool(flags & TF_CLEAR_BUF)

    off_start = _align8(data_size)
    offsets = mem.read(offsets_ptr, offsets_size)
    if offsets is None:
        log.user_error("%d:%d got transaction with invalid offsets ptr", proc.pid, thread.pid)
        return_error, return_error_param, return_error_line = BR_FAILED_REPLY, -errno.EFAULT, _line()
        return fail()
    target_proc.alloc.copy_to_buffer(buf, off_start, offsets)
    if offsets_size % 8:
        log.user_error("%d:%d got transaction with invalid offsets size, %d", proc.pid, thread.pid, offsets_size)
        return_error, return_error_param, return_error_line = BR_FAILED_REPLY, -errno.EINVAL, _line()
        return fail()
    if extra_buffers_size % 8:
        log.user_error("%d:%d got transaction with unaligned buffers size, %d",
                       proc.pid, thread.pid, extra_buffers_size)
        return_error, return_error_param, return_error_line = BR_FAILED_REPLY, -errno.EINVAL, _line()
        return fail()
    off_end = off_start + offsets_size
    sg_buf_offset = _align8(off_end)
    sg_buf_end_offset = sg_buf_offset + extra_buffers_size - _align8(len(secctx))
    sg_copies: list[tuple[int, int, int]] = []  # binder_sg_copy: (offset, sender address, length)
    fixups: list[tuple[int, int, int]] = []  # binder_ptr_fixup, by offset: (offset, fixup data, skip)
    last_fixup_obj_off = 0
    last_fixup_min_off = 0
    user_offset = 0
    off_min = 0
    buffer_offset = off_start
    while buffer_offset < off_end:
        object_offset = int.from_bytes(offsets[buffer_offset - off_start:buffer_offset - off_start + 8], "little")
        copy_size = object_offset - user_offset
        if copy_size:
            chunk = None
            if user_offset <= object_offset <= data_size:
                chunk = mem.read(data_ptr + user_offset, copy_size)
            if chunk is None:
                log.user_error("%d:%d got transaction with invalid data ptr", proc.pid, thread.pid)
                return_error, return_error_param, return_error_line = BR_FAILED_REPLY, -errno.EFAULT, _line()
                return fail()
            target_proc.alloc.copy_to_buffer(buf, user_offset, chunk)
        object_size = 0
        raw = b""
        if object_offset <= data_size:
            src = mem.read(data_ptr + object_offset, min(40, data_size - object_offset))
            if src is not None:
                object_size, raw = _get_user_object(src, object_offset, data_size)
        if object_size == 0 or object_offset < off_min:
            log.user_error("%d:%d got transaction with invalid offset (%d, min %d max %d) or object.",
                           proc.pid, thread.pid, object_offset, off_min, data_size)
            return_error, return_error_param, return_error_line = BR_FAILED_REPLY, -errno.EINVAL, _line()
            return fail()
        user_offset = object_offset + object_size
        off_min = object_offset + object_size
        otype = int.from_bytes(raw[:4], "little")
        if otype in (uapi.BINDER_TYPE_BINDER, uapi.BINDER_TYPE_WEAK_BINDER,
                     uapi.BINDER_TYPE_HANDLE, uapi.BINDER_TYPE_WEAK_HANDLE):
            obj = list(FBO.unpack(raw))
            if otype in (uapi.BINDER_TYPE_BINDER, uapi.BINDER_TYPE_WEAK_BINDER):
                ret = translate_binder(obj, t, thread)
                what = "binder"
            else:
                ret = translate_handle(obj, t, thread)
                what = "handle"
            if ret < 0:
                log.debug(Debug.FAILED_TRANSACTION, "%d:%d translate %s failed", thread.pid, proc.pid, what)
                return_error, return_error_param, return_error_line = BR_FAILED_REPLY, ret, _line()
                return fail()
            target_proc.alloc.copy_to_buffer(buf, object_offset, FBO.pack(*obj))
        elif otype == uapi.BINDER_TYPE_PTR:
            bp = list(uapi.BUFFER_OBJECT.unpack(raw))  # type, flags, buffer, length, parent, parent_offset
            if bp[3] > sg_buf_end_offset - sg_buf_offset:
                log.user_error("%d:%d got transaction with too large buffer", proc.pid, thread.pid)
                return_error, return_error_param, return_error_line = BR_FAILED_REPLY, -errno.EINVAL, _line()
                return fail()
            sg_copies.append((sg_buf_offset, bp[2], bp[3]))
            bp[2] = buf.user_data + sg_buf_offset
            sg_buf_offset += _align8(bp[3])
            num_valid = (buffer_offset - off_start) // 8
            ret = _fixup_parent(fixups, t, thread, bp, off_start, num_valid, last_fixup_obj_off, last_fixup_min_off)
            if ret < 0:
                log.debug(Debug.FAILED_TRANSACTION, "%d:%d failed to fixup parent", thread.pid, proc.pid)
                return_error, return_error_param, return_error_line = BR_FAILED_REPLY, ret, _line()
                return fail()
            target_proc.alloc.copy_to_buffer(buf, object_offset, uapi.BUFFER_OBJECT.pack(*bp))
            last_fixup_obj_off = object_offset
            last_fixup_min_off = 0
        elif otype in (uapi.BINDER_TYPE_FD, uapi.BINDER_TYPE_FDA):
            # binder_translate_fd: first, the target must accept fds (-EPERM, as 6.1).
            allows = bool(in_reply_to.flags & uapi.TF_ACCEPT_FDS) if in_reply_to is not None else \
                bool(target_node is not None and target_node.accept_fds)
            if not allows:
                fd = uapi.FD_OBJECT.unpack(raw[:24])[2] & 0xFFFFFFFF if otype == uapi.BINDER_TYPE_FD else 0
                log.user_error("%d:%d got %s with fd, %d, but target does not allow fds", proc.pid, thread.pid,
                               "reply" if in_reply_to is not None else "transaction", fd)
                log.debug(Debug.FAILED_TRANSACTION, "%d:%d translate fd failed", thread.pid, proc.pid)
                return_error, return_error_param, return_error_line = BR_FAILED_REPLY, -errno.EPERM, _line()
                return fail()
            # Not carried yet (file descriptors need a way to move real fds between
            # processes): refused, naming the object.
            log.user_error("%d:%d got transaction with unsupported object %s at offset %d",
                           proc.pid, thread.pid, _OBJECT_NAMES[otype], object_offset)
            return_error, return_error_param, return_error_line = BR_FAILED_REPLY, -errno.EOPNOTSUPP, _line()
            return fail()
        else:
            log.user_error("%d:%d got transaction with invalid object type, %x", proc.pid, thread.pid, otype)
            return_error, return_error_param, return_error_line = BR_FAILED_REPLY, -errno.EINVAL, _line()
            return fail()
        buffer_offset += 8
    rest = mem.read(data_ptr + user_offset, data_size - user_offset) if data_size >= user_offset else None
    if rest is None:
        log.user_error("%d:%d got transaction with invalid data ptr", proc.pid, thread.pid)
        return_error, return_error_param, return_error_line = BR_FAILED_REPLY, -errno.EFAULT, _line()
        return fail()
    target_proc.alloc.copy_to_buffer(buf, user_offset, rest)
    if not _do_deferred_txn_copies(target_proc, buf, sg_copies, fixups, mem):
        log.user_error("%d:%d got transaction with invalid offsets ptr", proc.pid, thread.pid)
        return_error, return_error_param, return_error_line = BR_FAILED_REPLY, -errno.EFAULT, _line()
        return fail()
    if buf.oneway_spam_suspect:
        tcomplete.type = WorkType.TRANSACTION_ONEWAY_SPAM_SUSPECT

    if reply:
        assert target_thread is not None and in_reply_to is not None
        thread.enqueue_work(tcomplete)
        if target_thread.is_dead:
            return_error = BR_DEAD_REPLY
            log.debug(Debug.FAILED_TRANSACTION, "%d:%d dead process or thread", proc.pid, thread.pid)
            return_error_line = _line()
            stage = "dead_proc"
            return fail()
        pop_transaction(target_thread, in_reply_to)
        target_thread.enqueue_work(t)
        target_proc.outstanding_txns += 1
        target_thread.wake()
        free_transaction(in_reply_to)
    elif not (flags & TF_ONE_WAY):
        thread.enqueue_deferred_work(tcomplete)
        t.need_reply = True
        t.from_parent = thread.transaction_stack
        thread.transaction_stack = t
        return_error = proc_transaction(t, target_proc, target_thread)
        if return_error:
            pop_transaction(thread, t)
            log.debug(Debug.FAILED_TRANSACTION, "%d:%d %s process or thread", proc.pid, thread.pid,
                      "frozen" if return_error == BR_FROZEN_REPLY else "dead")
            return_error_line = _line()
            stage = "dead_proc"
            return fail()
    else:
        thread.enqueue_work(tcomplete)
        return_error = proc_transaction(t, target_proc, None)
        if return_error:
            log.debug(Debug.FAILED_TRANSACTION, "%d:%d %s process or thread", proc.pid, thread.pid,
                      "frozen" if return_error == BR_FROZEN_REPLY else "dead")
            return_error_line = _line()
            stage = "dead_proc"
            return fail()
    target_proc.tmp_ref -= 1
    if target_node is not None:
        dec_node_tmpref(target_node)
    e.debug_id_done = t_debug_id
    return None


def _get_user_object(src: bytes, object_offset: int, data_size: int) -> tuple[int, bytes]:
    """binder_get_object on the sender's memory (``src`` is read at ``object_offset``)."""
    read_size = len(src)
    if object_offset > data_size or read_size < 4 or object_offset % 4:
        return 0, b""
    size = _OBJECT_SIZES.get(int.from_bytes(src[:4], "little"), 0)
    if not size or object_offset > data_size - size or data_size < size:
        return 0, b""
    return size, src[:size]


def _validate_ptr(proc: Proc, buf: Buffer, index: int, start_offset: int,
                  num_valid: int) -> tuple[list[int], int] | None:
    """binder_validate_ptr: the PTR object at ``index`` of the offsets array, and its offset."""
    if index >= num_valid:
        return None
    object_offset = int.from_bytes(proc.alloc.copy_from_buffer(buf, start_offset + 8 * index, 8), "little")
    size, raw = get_object(proc, buf, object_offset, None)
    if not size or int.from_bytes(raw[:4], "little") != uapi.BINDER_TYPE_PTR:
        return None
    return list(uapi.BUFFER_OBJECT.unpack(raw)), object_offset


def _validate_fixup(proc: Proc, buf: Buffer, objects_start: int, buffer_obj_offset: int, fixup_offset: int,
                    last_obj_offset: int, last_min_offset: int) -> bool:
    """binder_validate_fixup: fixups must go to the last buffer or its ancestors, in order."""
    if not last_obj_offset:
        return False
    while last_obj_offset != buffer_obj_offset:
        size, raw = get_object(proc, buf, last_obj_offset, None)
        if size != uapi.BUFFER_OBJECT.size:
            return False
        last_bbo = uapi.BUFFER_OBJECT.unpack(raw)
        if not last_bbo[1] & uapi.BINDER_BUFFER_FLAG_HAS_PARENT:
            return False
        last_min_offset = last_bbo[5] + 8
        last_obj_offset = int.from_bytes(
            proc.alloc.copy_from_buffer(buf, objects_start + 8 * last_bbo[4], 8), "little")
    return fixup_offset >= last_min_offset


def _add_fixup(fixups: list[tuple[int, int, int]], offset: int, fixup: int, skip: int) -> None:
    """binder_add_fixup: keep the list sorted by offset (a new equal offset goes first)."""
    i = len(fixups)
    while i > 0 and fixups[i - 1][0] >= offset:
        i -= 1
    fixups.insert(i, (offset, fixup, skip))


def _fixup_parent(fixups: list[tuple[int, int, int]], t: Transaction, thread: Thread, bp: list[int],
                  off_start: int, num_valid: int, last_fixup_obj_off: int, last_fixup_min_off: int) -> int:
    """binder_fixup_parent: the parent buffer's pointer to this one is patched on copy."""
    if not bp[1] & uapi.BINDER_BUFFER_FLAG_HAS_PARENT:
        return 0
    proc = thread.proc
    target_proc = t.to_proc
    buf = t.buffer
    assert target_proc is not None and buf is not None
    found = _validate_ptr(target_proc, buf, bp[4], off_start, num_valid)
    if found is None:
        proc.log.user_error("%d:%d got transaction with invalid parent offset or type", proc.pid, thread.pid)
        return -errno.EINVAL
    parent, parent_offset = found
    if not _validate_fixup(target_proc, buf, off_start, parent_offset, bp[5], last_fixup_obj_off,
                           last_fixup_min_off):
        proc.log.user_error("%d:%d got transaction with out-of-order buffer fixup", proc.pid, thread.pid)
        return -errno.EINVAL
    if parent[3] < 8 or bp[5] > parent[3] - 8:
        proc.log.user_error("%d:%d got transaction with invalid parent offset", proc.pid, thread.pid)
        return -errno.EINVAL
    _add_fixup(fixups, bp[5] + parent[2] - buf.user_data, bp[2], 0)
    return 0


def _do_deferred_txn_copies(proc: Proc, buf: Buffer, sg_copies: list[tuple[int, int, int]],
                            fixups: list[tuple[int, int, int]], mem: UserMemory) -> bool:
    """binder_do_deferred_txn_copies: copy the SG buffers, writing the pointer fixups in between."""
    ok = True
    pf = 0
    for offset0, uaddr, length in sg_copies:
        copied = 0
        while copied < length:
            left = length - copied
            offset = offset0 + copied
            copy_size = min(left, fixups[pf][0] - offset) if pf < len(fixups) else left
            if ok and copy_size:
                chunk = mem.read(uaddr + copied, copy_size)
                if chunk is None:
                    ok = False
                else:
                    proc.alloc.copy_to_buffer(buf, offset, chunk)
            copied += copy_size
            if copy_size != left:
                f_offset, f_data, f_skip = fixups[pf]
                if f_skip:
                    copied += f_skip
                else:
                    if ok:
                        proc.alloc.copy_to_buffer(buf, f_offset, uapi.U64.pack(f_data))
                    copied += 8
                pf += 1
    return ok


def set_txn_from_error(t: Transaction, debug_id: int, command: int, param: int) -> None:
    """binder_set_txn_from_error: the original caller's extended error, if not set yet."""
    frm = get_txn_from(t)
    if frm is not None and frm.ee[1] == BR_OK:
        frm.ee = (debug_id, command, param)
