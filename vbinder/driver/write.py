"""binder_thread_write: the BC commands of a write buffer (6.1), one function per command.

:func:`thread_write` reads each command's code and arguments through a :class:`WriteCursor`
and calls the command's function; a read past the write buffer or outside the caller's memory
(the kernel's get_user/copy_from_user failing) ends the loop with EFAULT in one place.
"""

from __future__ import annotations

import errno
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
    BR_OK,
    ioc_nr,
)
from . import locks
from .errors import BinderError
from .fmt import pk_obj
from .locks import INNER_LOCK, INNER_UNLOCK, NODE_LOCK, NODE_UNLOCK, PROC_LOCK, PROC_UNLOCK, SPIN, spin
from .log import KERN_INFO, Debug
from .node import dec_node_nilocked, dec_node_tmpref, get_node, get_ref, inc_ref_for_node, update_ref_for_handle
from .stats import Obj
from .thread import Looper
from .trace import M_COMMAND, M_NAMES, TP_COMMAND, end_named_call
from .transaction import transaction
from .translate import free_buf
from .work import Death, WorkType, dequeue

if TYPE_CHECKING:
    from .node import Ref
    from .process import Proc
    from .thread import Thread

TR: Final = uapi.TRANSACTION_DATA
PTR_COOKIE: Final = uapi.PTR_COOKIE
HANDLE_COOKIE: Final = uapi.HANDLE_COOKIE
_TR_SIZE: Final = TR.size
_TR_SG_SIZE: Final = TR.size + 8  # binder_transaction_data_sg: and buffers_size
_REFCOUNT_NAMES: Final = {BC_INCREFS: "IncRefs", BC_ACQUIRE: "Acquire", BC_RELEASE: "Release", BC_DECREFS: "DecRefs"}


class Fault(Exception):
    """A read of the write buffer failed (EFAULT): past its end, or outside the caller's memory."""


class WriteCursor:
    """The write buffer of a BINDER_WRITE_READ, read from ``ptr`` on as binder_thread_write's
    get_user/copy_from_user read it; each read advances ``ptr`` or raises :class:`Fault`."""

    __slots__ = ("data", "mem", "buffer", "size", "ptr")

    def __init__(self, mem: UserMemory, buffer: int, size: int, ptr: int) -> None:
        self.data = mem.read(buffer, size)  # None: read piece by piece, faulting where get_user would
        self.mem = mem
        self.buffer = buffer
        self.size = size
        self.ptr = ptr

    def take(self, n: int) -> bytes:
        """The next ``n`` bytes."""
        ptr = self.ptr
        if ptr + n > self.size:
            raise Fault
        data = self.data
        raw = data[ptr:ptr + n] if data is not None else self.mem.read(self.buffer + ptr, n)
        if raw is None:
            raise Fault
        self.ptr = ptr + n
        return raw

    def u32(self) -> int:
        return int.from_bytes(self.take(4), "little")

    def u64(self) -> int:
        return int.from_bytes(self.take(8), "little")


def thread_write(proc: Proc, thread: Thread, buffer: int, size: int, consumed: int,
                 mem: UserMemory) -> tuple[int, int]:
    """binder_thread_write: (ret, consumed), consumed being where the last whole command ended."""
    cur = WriteCursor(mem, buffer, size, consumed)
    stats = proc.driver.stats
    try:
        while cur.ptr < size and thread.return_error.cmd == BR_OK:
            consumed = cur.ptr
            cmd = cur.u32()
            if proc.trace.mask & M_COMMAND:
                proc.trace.emit(TP_COMMAND, (cmd,))
            nr = ioc_nr(cmd)
            if nr < len(proc.stats.bc):
                stats.bc[nr] += 1
                proc.stats.bc[nr] += 1
                thread.stats.bc[nr] += 1
            ret = _command(proc, thread, cmd, cur, mem)
            if ret:
                return ret, consumed
    except Fault:
        return -errno.EFAULT, consumed
    return 0, cur.ptr


def _command(proc: Proc, thread: Thread, cmd: int, cur: WriteCursor, mem: UserMemory) -> int:
    """One command, its arguments read from ``cur``: 0, or the -errno that ends the write."""
    if cmd == BC_TRANSACTION or cmd == BC_REPLY:
        transaction_command(proc, thread, cur.take(_TR_SIZE), cmd == BC_REPLY, mem)
    elif cmd == BC_FREE_BUFFER:
        free_buffer(proc, thread, cur.u64())
    elif (cmd == BC_TRANSACTION_SG or cmd == BC_REPLY_SG) and proc.profile.newer_uapi:
        transaction_command(proc, thread, cur.take(_TR_SG_SIZE), cmd == BC_REPLY_SG, mem)
    elif cmd == BC_INCREFS or cmd == BC_ACQUIRE or cmd == BC_RELEASE or cmd == BC_DECREFS:
        return refcount(proc, thread, cmd, cur.u32())
    elif cmd == BC_INCREFS_DONE or cmd == BC_ACQUIRE_DONE:
        refcount_done(proc, thread, cmd, cur.take(PTR_COOKIE.size))
    elif cmd == BC_REGISTER_LOOPER:
        thread.register_looper()
    elif cmd == BC_ENTER_LOOPER:
        thread.enter_looper()
    elif cmd == BC_EXIT_LOOPER:
        thread.exit_looper()
    elif cmd == BC_REQUEST_DEATH_NOTIFICATION or cmd == BC_CLEAR_DEATH_NOTIFICATION:
        death_notification(proc, thread, cmd, cur.take(HANDLE_COOKIE.size))
    elif cmd == BC_DEAD_BINDER_DONE:
        dead_binder_done(proc, thread, cur.u64())
    elif cmd == BC_ATTEMPT_ACQUIRE or cmd == BC_ACQUIRE_RESULT:
        return not_supported(proc, cmd)
    else:
        proc.log.err("%d:%d unknown command %u", proc.pid, thread.pid, cmd)
        return -errno.EINVAL
    return 0


def transaction_command(proc: Proc, thread: Thread, tr: bytes, reply: bool, mem: UserMemory) -> None:
    """BC_TRANSACTION, BC_REPLY (``tr``: binder_transaction_data) and their _SG forms (``tr``:
    binder_transaction_data_sg); a failure reaches the sender as a BR code."""
    extra_buffers_size = int.from_bytes(tr[_TR_SIZE:], "little") if len(tr) > _TR_SIZE else 0
    transaction(proc, thread, TR.unpack_from(tr), reply, extra_buffers_size, mem)


def free_buffer(proc: Proc, thread: Thread, data_ptr: int) -> None:
    """BC_FREE_BUFFER: the receiver is done with a delivered buffer."""
    log = proc.log
    try:
        buf = proc.alloc.prepare_to_free(data_ptr)
    except BinderError:
        log.user_error("%d:%d BC_FREE_BUFFER u%016x matched unreturned or currently freeing buffer",
                       proc.pid, thread.pid, data_ptr)
        return
    if buf is None:
        log.user_error("%d:%d BC_FREE_BUFFER u%016x no match", proc.pid, thread.pid, data_ptr)
        return
    if log.debug_mask & Debug.FREE_BUFFER:
        log.debug(Debug.FREE_BUFFER, "%d:%d BC_FREE_BUFFER u%016x found buffer %d for %s transaction",
                  proc.pid, thread.pid, data_ptr, buf.debug_id,
                  "active" if buf.transaction is not None else "finished")
    if thread.marks and buf.async_transaction and proc.trace.mask & M_NAMES:
        end_named_call(proc.trace, proc.pid, thread.marks, buf.debug_id)  # a named one-way call ends
    free_buf(proc, buf, thread)


def refcount(proc: Proc, thread: Thread, cmd: int, target: int) -> int:
    """BC_INCREFS, BC_ACQUIRE, BC_RELEASE, BC_DECREFS on the handle ``target``."""
    log = proc.log
    strong = cmd == BC_ACQUIRE or cmd == BC_RELEASE
    increment = cmd == BC_INCREFS or cmd == BC_ACQUIRE
    ret = -1
    ref: Ref | None = None
    if increment and not target:
        mgr = proc.context.mgr_node
        if mgr is not None:
            if mgr.proc is proc:
                log.user_error("%d:%d context manager tried to acquire desc 0", proc.pid, thread.pid)
                return -errno.EINVAL
            ret, ref = inc_ref_for_node(proc, mgr, strong, None)
    if ret:
        ret, ref = update_ref_for_handle(proc, target, increment, strong)
    if not ret and ref is not None and ref.desc != target:
        log.user_error("%d:%d tried to acquire reference to desc %d, got %d instead",
                       proc.pid, thread.pid, target, ref.desc)
    name = _REFCOUNT_NAMES[cmd]
    if ret:
        log.user_error("%d:%d %s %d refcount change on invalid ref %d ret %d",
                       proc.pid, thread.pid, name, int(strong), target, ret)
    elif ref is not None and log.debug_mask & Debug.USER_REFS:
        if proc.profile.texts is not None:  # 3.x named the node too
            log.printk(KERN_INFO, f"binder: {proc.pid}:{thread.pid} {name} ref {ref.debug_id} desc {ref.desc} "
                       f"s {ref.strong} w {ref.weak} for node {ref.node.debug_id}")
        else:
            log.debug(Debug.USER_REFS, "%d:%d %s ref %d desc %d s %d w %d", proc.pid, thread.pid,
                      name, ref.debug_id, ref.desc, ref.strong, ref.weak)
    return 0


def refcount_done(proc: Proc, thread: Thread, cmd: int, ptr_cookie: bytes) -> None:
    """BC_INCREFS_DONE, BC_ACQUIRE_DONE: the owner took the reference BR_INCREFS/BR_ACQUIRE asked for."""
    log = proc.log
    node_ptr, cookie = PTR_COOKIE.unpack(ptr_cookie)
    acquire = cmd == BC_ACQUIRE_DONE
    name = "BC_ACQUIRE_DONE" if acquire else "BC_INCREFS_DONE"
    node = get_node(proc, node_ptr)
    if node is None:
        log.user_error("%d:%d %s u%016x no match", proc.pid, thread.pid, name, node_ptr)
        return
    if cookie != node.cookie:
        log.user_error("%d:%d %s u%016x node %d cookie mismatch %016x != %016x", proc.pid,
                       thread.pid, name, node_ptr, node.debug_id, cookie, node.cookie)
        dec_node_tmpref(node)
        return
    spinlocks = log.debug_mask & SPIN
    if spinlocks:
        locks.node_inner_lock(log, node, 3928)
    if not (node.pending_strong_ref if acquire else node.pending_weak_ref):
        log.user_error("%d:%d %s node %d has no pending %s request", proc.pid, thread.pid, name,
                       node.debug_id, "acquire" if acquire else "increfs")
        if spinlocks:
            locks.node_inner_unlock(log, node, 3934 if acquire else 3944)
    else:
        if acquire:
            node.pending_strong_ref = False
        else:
            node.pending_weak_ref = False
        dec_node_nilocked(node, acquire, False)
        log.debug(Debug.USER_REFS, "%d:%d %s node %d ls %d lw %d tr %d", proc.pid, thread.pid, name,
                  node.debug_id, node.local_strong_refs, node.local_weak_refs, node.tmp_refs)
        if spinlocks:
            locks.node_inner_unlock(log, node, 3959)
    dec_node_tmpref(node)


def not_supported(proc: Proc, cmd: int) -> int:
    """BC_ATTEMPT_ACQUIRE, BC_ACQUIRE_RESULT: never implemented by the driver."""
    proc.log.err("%s not supported", "BC_ATTEMPT_ACQUIRE" if cmd == BC_ATTEMPT_ACQUIRE else "BC_ACQUIRE_RESULT")
    return -errno.EINVAL


def death_notification(proc: Proc, thread: Thread, cmd: int, handle_cookie: bytes) -> None:
    """BC_REQUEST_DEATH_NOTIFICATION, BC_CLEAR_DEATH_NOTIFICATION (a handle and a cookie)."""
    log = proc.log
    target, cookie = HANDLE_COOKIE.unpack(handle_cookie)
    request = cmd == BC_REQUEST_DEATH_NOTIFICATION
    name = "BC_REQUEST_DEATH_NOTIFICATION" if request else "BC_CLEAR_DEATH_NOTIFICATION"
    spinlocks = log.debug_mask & SPIN
    if spinlocks:
        spin(log, PROC_LOCK, 4097)
    ref = get_ref(proc, target, False)
    if ref is None:
        log.user_error("%d:%d %s invalid ref %d", proc.pid, thread.pid, name, target)
        if spinlocks:
            spin(log, PROC_UNLOCK, 4106)
        return
    log.debug(Debug.DEATH_NOTIFICATION, "%d:%d %s %016x ref %d desc %d s %d w %d for node %d",
              proc.pid, thread.pid, name, cookie, ref.debug_id, ref.desc, ref.strong, ref.weak,
              ref.node.debug_id)
    if spinlocks:
        spin(log, NODE_LOCK, 4121)
    unlock = 4185  # the line of the node's unlock (the proc's is the next)
    if request:
        if ref.death is not None:
            log.user_error("%d:%d BC_REQUEST_DEATH_NOTIFICATION death notification already set",
                           proc.pid, thread.pid)
            unlock = 4126
        else:
            proc.driver.stats.obj_created[Obj.DEATH] += 1
            death = ref.death = Death(cookie)
            if ref.node.proc is None:  # already dead: tell at once
                if spinlocks:
                    spin(log, INNER_LOCK, 4138)
                death.type = WorkType.DEAD_BINDER
                proc.todo.enqueue(death)
                proc.wakeup_proc()
                if spinlocks:
                    spin(log, INNER_UNLOCK, 4142)
    else:
        active = ref.death
        if active is None:
            log.user_error("%d:%d BC_CLEAR_DEATH_NOTIFICATION death notification not active", proc.pid, thread.pid)
            unlock = 4148
        elif active.cookie != cookie:
            log.user_error("%d:%d BC_CLEAR_DEATH_NOTIFICATION death notification cookie mismatch %016x != %016x",
                           proc.pid, thread.pid, active.cookie, cookie)
            unlock = 4158
        else:
            ref.death = None
            if spinlocks:
                spin(log, INNER_LOCK, 4163)
            if not active.queued:
                active.type = WorkType.CLEAR_DEATH_NOTIFICATION
                _queue_clear(proc, thread, active)
            else:
                active.type = WorkType.DEAD_BINDER_AND_CLEAR
            if spinlocks:
                spin(log, INNER_UNLOCK, 4183)
    if spinlocks:
        spin(log, NODE_UNLOCK, unlock)
        spin(log, PROC_UNLOCK, unlock + 1)


def dead_binder_done(proc: Proc, thread: Thread, cookie: int) -> None:
    """BC_DEAD_BINDER_DONE: the owner of a ref handled its BR_DEAD_BINDER."""
    log = proc.log
    if log.debug_mask & SPIN:
        spin(log, INNER_LOCK, 4197)
    death = next((w for w in proc.delivered_death if isinstance(w, Death) and w.cookie == cookie), None)
    if log.debug_mask & Debug.DEAD_BINDER:
        log.debug(Debug.DEAD_BINDER, "%d:%d BC_DEAD_BINDER_DONE %016x found %s", proc.pid, thread.pid,
                  cookie, pk_obj(death))
    if death is None:
        log.user_error("%d:%d BC_DEAD_BINDER_DONE %016x not found", proc.pid, thread.pid, cookie)
        if log.debug_mask & SPIN:
            spin(log, INNER_UNLOCK, 4217)
        return
    dequeue(death)
    if death.type == WorkType.DEAD_BINDER_AND_CLEAR:  # cleared meanwhile: now say so
        death.type = WorkType.CLEAR_DEATH_NOTIFICATION
        _queue_clear(proc, thread, death)
    if log.debug_mask & SPIN:
        spin(log, INNER_UNLOCK, 4235)


def _queue_clear(proc: Proc, thread: Thread, death: Death) -> None:
    """BR_CLEAR_DEATH_NOTIFICATION_DONE goes to a looper thread itself, else to the proc."""
    if thread.looper & (Looper.REGISTERED | Looper.ENTERED):
        thread.enqueue_work(death)
    else:
        proc.todo.enqueue(death)
        proc.wakeup_proc()
