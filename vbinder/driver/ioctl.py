"""binder_ioctl: every ioctl on a device file, split into a write phase and a read phase.

``start`` runs an ioctl as far as it goes without waiting: all of it, or (BINDER_WRITE_READ with
``read_size`` > 0) its write phase, returning a :class:`Pending` read phase that ``resume`` runs,
maybe several times, until it produces its result (DESIGN.md, "Phases").
"""

from __future__ import annotations

import errno
from typing import Final

from .. import abi, fdabi, uapi
from ..abi import UserMemory
from ..uapi import BR_OK
from . import locks
from .errors import BinderError, Waiter, WouldBlock
from .locks import NODE_LOCK, NODE_UNLOCK, PROC_LOCK, PROC_UNLOCK, SPIN, spin
from .log import Debug
from .node import dec_node_tmpref, get_ref, new_node
from .process import Proc
from .read import BLOCKED, NOT_WAITED, WAITED_PROC_WORK, WAITED_THREAD_WORK, thread_read
from .thread import Looper, Thread
from .trace import (
    M_IOCTL,
    M_IOCTL_DONE,
    M_NAMES,
    M_READ_DONE,
    M_WRITE_DONE,
    TP_IOCTL,
    TP_IOCTL_DONE,
    TP_READ_DONE,
    TP_WRITE_DONE,
)
from .write import thread_write

WR: Final = uapi.WRITE_READ
FEATURES: Final = fdabi.FEATURE_CHAINED  # the extensions of the core itself (the host adds its own)
# The vma flags and page protection 6.1's binder_mmap and binder_vma_close print
# (include/linux/mm.h; x86's protection_map). A mapping of the device (opened read-write) starts
# with VM_MAY{READ,WRITE,EXEC}, the bits of its prot, VM_SHARED|VM_MAYSHARE for MAP_SHARED, and
# VM_ACCOUNT when private and writable; binder_mmap adds VM_DONTCOPY|VM_MIXEDMAP and drops
# VM_MAYWRITE, and mmap_region adds VM_SOFTDIRTY after it. libbinder's PROT_READ, MAP_PRIVATE
# mapping prints vma 71 pagep 8000000000000025, then vma 18020051 at close; the oracle printed
# f9/180200d9 for MAP_SHARED, 75/18020055 and pagep 25 for PROT_EXEC, fb with pagep
# 8000000000000027 for a shared writable mapping, 100073 for a private writable one.
_VM_READ: Final = 0x1
_VM_WRITE: Final = 0x2
_VM_EXEC: Final = 0x4
_VM_SHARED_MAYSHARE: Final = 0x8 | 0x80
_VM_MAY_RWX: Final = 0x10 | 0x20 | 0x40
_VM_MAYWRITE: Final = 0x20
_VM_ACCOUNT: Final = 0x100000
_VM_BINDER_MMAP: Final = 0x20000 | 0x10000000 | 0x08000000  # VM_DONTCOPY | VM_MIXEDMAP | VM_SOFTDIRTY
_VM_DONTCOPY: Final = 0x20000
_VM_NORESERVE: Final = 0x200000  # mmap's MAP_NORESERVE (libbinder's mapping has it)
_VM_INSERTPAGE_3X: Final = 0x2000000  # 3.x only: "the vma has had vm_insert_page() done on it"
_MAP_SHARED: Final = 0x1
_MAP_NORESERVE: Final = 0x4000
_PROT_EXEC: Final = 0x4
_PAGE_USER_PRESENT: Final = 0x25  # _PAGE_PRESENT | _PAGE_USER | _PAGE_ACCESSED
_PAGE_RW: Final = 0x2
_PAGE_NX: Final = 1 << 63


def _vm_flags(prot: int, flags: int) -> int:
    """The vma's flags when binder_mmap sees it (calc_vm_prot_bits, calc_vm_flag_bits, do_mmap)."""
    vm = _VM_MAY_RWX
    vm |= _VM_READ if prot & abi.PROT_READ else 0
    vm |= _VM_WRITE if prot & abi.PROT_WRITE else 0
    vm |= _VM_EXEC if prot & _PROT_EXEC else 0
    if flags & _MAP_SHARED:
        vm |= _VM_SHARED_MAYSHARE
    elif prot & abi.PROT_WRITE:
        vm |= _VM_ACCOUNT
    return vm


def _page_prot(prot: int, flags: int) -> int:
    """vma->vm_page_prot (vm_get_page_prot): writable only when shared, NX unless PROT_EXEC."""
    pagep = _PAGE_USER_PRESENT
    pagep |= _PAGE_RW if prot & abi.PROT_WRITE and flags & _MAP_SHARED else 0
    pagep |= 0 if prot & _PROT_EXEC else _PAGE_NX
    return pagep


# The ioctls newer than 3.4 (which answered them -EINVAL, as any unknown ioctl).
_NEWER_IOCTLS: Final = frozenset((
    uapi.BINDER_SET_CONTEXT_MGR_EXT, uapi.BINDER_GET_NODE_DEBUG_INFO, uapi.BINDER_GET_NODE_INFO_FOR_REF,
    uapi.BINDER_FREEZE, uapi.BINDER_GET_FROZEN_INFO, uapi.BINDER_ENABLE_ONEWAY_SPAM_DETECTION,
    uapi.BINDER_GET_EXTENDED_ERROR))


# The ioctl outcomes are plain classes, not dataclasses: a compiled dataclass keeps the
# interpreted __init__ that the dataclasses module generates, and these are made on every call.


class Done:
    """A finished ioctl: its return value, the argument copied back, the writes to user memory."""

    __slots__ = ("ret", "arg", "segments")

    def __init__(self, ret: int, arg: bytes = b"", segments: list[tuple[int, bytes]] | None = None) -> None:
        self.ret = ret
        self.arg = arg
        self.segments: list[tuple[int, bytes]] = segments if segments is not None else []


class Pending:
    """The read phase of a BINDER_WRITE_READ, still to run (``waited``: how it went to sleep, once
    it has: it goes on from there when woken)."""

    __slots__ = ("thread", "bwr", "interrupted", "waited", "tail", "chain")

    def __init__(self, thread: Thread, bwr: list[int], tail: bytes = b"") -> None:
        self.thread = thread
        self.bwr = bwr  # write_size, write_consumed, write_buffer, read_size, read_consumed, read_buffer
        self.interrupted = False  # a signal ended its wait: for traces, the kernel's ioctl returned -EINTR
        self.waited = NOT_WAITED
        self.tail = tail  # what VBINDER_WRITE_READ_FDS copies back after the struct
        self.chain = False  # the client reads next: a lone BR_TRANSACTION_COMPLETE chains that read


class FreezePending:
    """BINDER_FREEZE waiting for the frozen procs' transactions to drain (until ``deadline``)."""

    __slots__ = ("thread", "procs", "deadline")

    def __init__(self, thread: Thread, procs: list[Proc], deadline: float) -> None:
        self.thread = thread
        self.procs = procs
        self.deadline = deadline


class Held:
    """An ioctl that arrived while stop_on_user_error held calls: it runs when the hold ends."""

    __slots__ = ("tid", "cmd", "arg", "mem")

    def __init__(self, tid: int, cmd: int, arg: bytes, mem: UserMemory) -> None:
        self.tid = tid
        self.cmd = cmd
        self.arg = arg
        self.mem = mem


def held(proc: Proc) -> bool:
    """wait_event_interruptible(binder_user_error_wait, binder_stop_on_user_error < 2) would wait."""
    return proc.log.stop_on_user_error >= 2


def _finish(proc: Proc, thread: Thread | None, tid: int, cmd: int, ret: int, arg: bytes = b"",
            segments: list[tuple[int, bytes]] | None = None) -> Done:
    """The end of binder_ioctl: clear looper_need_return, log a failed ioctl."""
    if thread is not None:
        thread.looper_need_return = False
    if ret and ret != -errno.EINTR:
        # The user pointer of the argument is never seen by the daemon: printed as 0.
        proc.log.info("%d:%d ioctl %x %x returned %d", proc.pid, tid, cmd, 0, ret)
    if proc.trace.mask & M_IOCTL_DONE and not _vbinder_cmd(cmd):
        proc.trace.emit(TP_IOCTL_DONE, (ret,))
    return Done(ret, arg, segments or [])


def _vbinder_cmd(cmd: int) -> bool:
    """vbinder's own ioctls (type 'v': ABI version, mapping, trace names) are no binder_ioctl."""
    return (cmd >> 8) & 0xFF == 0x76


def start(proc: Proc, tid: int, cmd: int, arg: bytes, mem: UserMemory) -> Done | Pending | FreezePending:
    """Run ``cmd`` up to its read phase."""
    tp = proc.trace
    tp.task(tid, proc.pid)
    if tp.mask & M_IOCTL:
        if not _vbinder_cmd(cmd):
            tp.emit(TP_IOCTL, (cmd, 0))  # the argument's user pointer is never seen by the daemon
        elif cmd == fdabi.VBINDER_WRITE_READ_FDS or cmd == abi.VBINDER_WRITE_READ_CHAINED:
            tp.emit(TP_IOCTL, (uapi.BINDER_WRITE_READ, 0))  # they stand for a BINDER_WRITE_READ
    if uapi.ioc_size(cmd) != len(arg):
        return _finish(proc, None, tid, cmd, -errno.EINVAL)
    if cmd == abi.VBINDER_ABI_VERSION:
        return Done(0, uapi.U32.pack(abi.ABI_VERSION))
    if cmd == abi.VBINDER_TRACE_NAMES:
        return Done(0, uapi.U32.pack(1 if tp.mask & M_NAMES else 0))
    if cmd == abi.VBINDER_MMAP:
        return _mmap(proc, tid, arg)
    if cmd == abi.VBINDER_MUNMAP:
        return _munmap(proc, tid, arg)
    thread = proc.get_thread(tid)
    if cmd == uapi.BINDER_WRITE_READ:
        return _write_read(proc, thread, arg, mem)
    if cmd == abi.VBINDER_WRITE_READ_CHAINED:
        outcome = _write_read(proc, thread, arg, mem)
        if isinstance(outcome, Pending):
            outcome.chain = True
        return outcome
    host = proc.driver.host
    if cmd == fdabi.VBINDER_FEATURES:
        return Done(0, fdabi.FEATURES.pack(FEATURES | (host.features() if host is not None else 0)))
    if host is not None and host.features() & fdabi.FEATURE_FDS:
        if cmd == fdabi.VBINDER_WRITE_READ_FDS:
            return _write_read_fds(proc, thread, arg, mem)
        if cmd == fdabi.VBINDER_FD_CHANNEL:
            answer = host.fd_channel(proc)
            return Done(answer) if isinstance(answer, int) else Done(0, answer)
    if cmd == fdabi.VBINDER_SLOT and host is not None and host.features() & fdabi.FEATURE_SLOT:
        region = host.slot(proc)
        return Done(region) if region < 0 else Done(0, fdabi.SLOT_ARG.pack(region))
    if cmd == uapi.BINDER_THREAD_EXIT:
        proc.log.debug(Debug.THREADS, "%d:%d exit", proc.pid, thread.pid)
        proc.thread_release(thread)
        return _finish(proc, None, tid, cmd, 0)
    if cmd in _NEWER_IOCTLS and not proc.profile.newer_uapi:
        return _finish(proc, thread, tid, cmd, -errno.EINVAL)  # unknown to 3.x's binder_ioctl
    if cmd == uapi.BINDER_FREEZE:
        frozen = _freeze(proc, thread, arg)
        if isinstance(frozen, FreezePending):
            return frozen
        return _finish(proc, thread, tid, cmd, frozen)
    ret, out = _ioctl(proc, thread, cmd, arg)
    return _finish(proc, thread, tid, cmd, ret, out if ret == 0 else b"")


def _ioctl(proc: Proc, thread: Thread, cmd: int, arg: bytes) -> tuple[int, bytes]:
    """The ioctls that finish at once: (ret, the argument copied back)."""
    if cmd == uapi.BINDER_SET_MAX_THREADS:
        if proc.log.debug_mask & SPIN:
            locks.inner(proc.log, 5369, 5371)
        proc.max_threads = uapi.U32.unpack(arg)[0]
    elif cmd == uapi.BINDER_SET_CONTEXT_MGR_EXT:
        return set_ctx_mgr(proc, thread, uapi.FLAT_BINDER_OBJECT.unpack(arg)), b""
    elif cmd == uapi.BINDER_SET_CONTEXT_MGR:
        return set_ctx_mgr(proc, thread, None), b""
    elif cmd == uapi.BINDER_VERSION:
        return 0, uapi.VERSION.pack(uapi.BINDER_CURRENT_PROTOCOL_VERSION)
    elif cmd == uapi.BINDER_GET_NODE_INFO_FOR_REF:
        return _node_info_for_ref(proc, arg)
    elif cmd == uapi.BINDER_GET_NODE_DEBUG_INFO:
        return 0, _node_debug_info(proc, arg)
    elif cmd == uapi.BINDER_ENABLE_ONEWAY_SPAM_DETECTION:
        if proc.log.debug_mask & SPIN:
            locks.inner(proc.log, 5533, 5535)
        proc.oneway_spam_detection_enabled = bool(uapi.U32.unpack(arg)[0])
    elif cmd == uapi.BINDER_GET_FROZEN_INFO:
        return _frozen_info(proc, arg)
    elif cmd == uapi.BINDER_GET_EXTENDED_ERROR:
        if proc.log.debug_mask & SPIN:
            locks.inner(proc.log, 5319, 5322)
        out = uapi.EXTENDED_ERROR.pack(*thread.ee)
        thread.ee = (0, BR_OK, 0)
        return 0, out
    else:
        return -errno.EINVAL, b""
    return 0, b""


def _freeze(proc: Proc, thread: Thread, arg: bytes) -> int | FreezePending:
    """BINDER_FREEZE (binder_ioctl_freeze): freezing waits for the procs' transactions to drain,
    for at most the timeout (a FreezePending while it may wait)."""
    pid, enable, timeout_ms = uapi.FREEZE_INFO.unpack(arg)
    procs = proc.driver.procs_of(pid)
    if not procs:
        return -errno.EINVAL
    log = proc.log
    spinlocks = log.debug_mask & SPIN
    if spinlocks:
        for _p in procs:
            locks.inner(log, 5486, 5488)  # a tmp ref on each target
    if not enable:
        for p in procs:
            if spinlocks:
                locks.inner(log, 5242, 5246)
            p.sync_recv = p.async_recv = p.is_frozen = False
            if spinlocks:
                locks.proc_dec_tmpref(log, p)
        return 0
    for p in procs:
        p.sync_recv = p.async_recv = False
        p.is_frozen = True
    pending = FreezePending(thread, procs, proc.clock() + timeout_ms / 1000)
    if timeout_ms > 0:
        return pending
    return _freeze_done(pending)


def _write_read(proc: Proc, thread: Thread, arg: bytes, mem: UserMemory) -> Done | Pending:
    """binder_ioctl_write_read, up to the read phase."""
    bwr = list(WR.unpack(arg))
    write_size, _wc, write_buffer, read_size, _rc, read_buffer = bwr
    if proc.log.debug_mask & Debug.READ_WRITE:  # (every per-call log line is guarded: no work when off)
        proc.log.debug(Debug.READ_WRITE, "%d:%d write %d at %016x, read %d at %016x",
                       proc.pid, thread.pid, write_size, write_buffer, read_size, read_buffer)
    if write_size > 0:
        ret, bwr[1] = thread_write(proc, thread, write_buffer, write_size, bwr[1], mem)
        if proc.trace.mask & M_WRITE_DONE:
            proc.trace.emit(TP_WRITE_DONE, (ret,))
        if ret < 0:
            bwr[4] = 0
            return _finish(proc, thread, thread.pid, uapi.BINDER_WRITE_READ, ret, WR.pack(*bwr))
    if read_size > 0:
        thread.last_read = (read_buffer, read_size)
        return Pending(thread, bwr)
    return _write_read_done(proc, thread, bwr, [])


def _write_read_fds(proc: Proc, thread: Thread, arg: bytes, mem: UserMemory) -> Done | Pending:
    """VBINDER_WRITE_READ_FDS (docs/abi-fds.md): a BINDER_WRITE_READ whose transactions take the
    fds the thread staged for request ``seq``; what they did not take goes at the end of the write
    phase. It prints and counts as the BINDER_WRITE_READ it stands for."""
    host = proc.driver.host
    assert host is not None
    tail = arg[WR.size:]
    seq = uapi.U32.unpack_from(tail)[0]
    host.begin_fds(proc, thread.pid, seq)
    try:
        outcome = _write_read(proc, thread, arg[:WR.size], mem)
    finally:
        host.end_fds(proc, thread.pid)
    if isinstance(outcome, Pending):
        outcome.tail = tail
        outcome.chain = bool(uapi.U32.unpack_from(tail, 4)[0] & fdabi.WR_CHAIN)
    else:
        outcome.arg += tail
    return outcome


def _write_read_done(proc: Proc, thread: Thread, bwr: list[int], segments: list[tuple[int, bytes]],
                     tail: bytes = b"") -> Done:
    if proc.log.debug_mask & Debug.READ_WRITE:
        proc.log.debug(Debug.READ_WRITE, "%d:%d wrote %d of %d, read return %d of %d", proc.pid, thread.pid,
                       bwr[1], bwr[0], bwr[4], bwr[3])
    return _finish(proc, thread, thread.pid, uapi.BINDER_WRITE_READ, 0, WR.pack(*bwr) + tail, segments)


def resume(proc: Proc, pending: Pending | FreezePending, nonblock: bool) -> Done | WouldBlock:
    """Run (again) the read phase of ``pending``: its result, or WouldBlock while there is nothing to read."""
    proc.trace.task(pending.thread.pid, proc.pid)
    if isinstance(pending, FreezePending):
        return _freeze_wait(proc, pending)
    thread = pending.thread
    bwr = pending.bwr
    if pending.interrupted:
        # The kernel's ioctl returned -EINTR and the caller issued it again (the read phase here
        # simply continues): as a trace shows it, a new binder_ioctl that waits for work anew.
        pending.interrupted = False
        if proc.trace.mask & M_IOCTL:
            proc.trace.emit(TP_IOCTL, (uapi.BINDER_WRITE_READ, 0))
        if proc.log.debug_mask & SPIN:
            locks.inner(proc.log, 4885, 4887)  # its binder_get_thread
    thread.stop_waiting()
    if thread.is_dead or thread.proc is not proc:
        # BINDER_THREAD_EXIT ran meanwhile (by another thread sharing the tid): a fresh thread reads.
        thread = pending.thread = proc.get_thread(thread.pid)
        pending.waited = NOT_WAITED
    segments: list[tuple[int, bytes]] = []
    ret, bwr[4] = thread_read(proc, thread, bwr[5], bwr[3], bwr[4], nonblock, segments, pending.waited)
    if ret == BLOCKED:
        assert thread.waiter is not None
        pending.waited = WAITED_PROC_WORK if thread.waiting else WAITED_THREAD_WORK
        return WouldBlock(thread.waiter)
    if proc.trace.mask & M_READ_DONE:
        proc.trace.emit(TP_READ_DONE, (ret,))
    pending.waited = NOT_WAITED
    if proc.log.debug_mask & SPIN:
        locks.inner(proc.log, 5088, 5091)
    if proc.todo:
        proc.wakeup_proc()
    if ret < 0:
        return _finish(proc, thread, thread.pid, uapi.BINDER_WRITE_READ, ret, WR.pack(*bwr) + pending.tail,
                       segments)
    return _write_read_done(proc, thread, bwr, segments, pending.tail)


def interrupt(proc: Proc, pending: Pending | FreezePending | Held) -> None:
    """The waiting read was interrupted: the thread leaves the waiting threads; the read stays.

    The kernel's read returns -EINTR there and the client issues the ioctl again: the read
    that goes on is a new one, from the top."""
    if not isinstance(pending, Pending):
        return
    log = proc.log
    if log.debug_mask & SPIN and pending.waited != NOT_WAITED and not pending.interrupted:
        # binder_wait_for_work wakes with a signal pending: -EINTR, back through binder_ioctl_write_read
        locks.inner(log, 4307, 4315)
        locks.inner(log, 5088, 5091)
    pending.waited = NOT_WAITED
    pending.thread.stop_waiting()
    if proc.todo:
        proc.wakeup_proc()
    tp = proc.trace
    if not pending.interrupted and tp.mask & (M_READ_DONE | M_IOCTL_DONE):
        # binder_wait_for_work returned -EINTR: binder_thread_read and binder_ioctl end with it.
        tp.task(pending.thread.pid, proc.pid)
        if tp.mask & M_READ_DONE:
            tp.emit(TP_READ_DONE, (-errno.EINTR,))
        if tp.mask & M_IOCTL_DONE:
            tp.emit(TP_IOCTL_DONE, (-errno.EINTR,))
    pending.interrupted = True


def cancel(proc: Proc, pending: Pending | FreezePending | Held) -> None:
    """The read phase is dropped (a new request replaced it)."""
    interrupt(proc, pending)
    if not isinstance(pending, Held):
        pending.thread.looper_need_return = False


def hold(proc: Proc, pending: Pending) -> Held:
    """A fast-path read that must wait for the hold: as the BINDER_WRITE_READ it stands for."""
    bwr = pending.bwr
    return Held(pending.thread.pid, uapi.BINDER_WRITE_READ, WR.pack(*bwr), UserMemory([]))


def fast_path(proc: Proc, tid: int) -> Pending | None:
    """A read-only BINDER_WRITE_READ reusing the thread's last read buffer (None: ENOMSG)."""
    thread = proc.threads.get(tid)
    if thread is None or thread.last_read is None:
        return None
    read_buffer, read_size = thread.last_read
    if proc.log.debug_mask & SPIN:
        locks.inner(proc.log, 4885, 4887)  # binder_ioctl's binder_get_thread
    tp = proc.trace
    tp.task(tid, proc.pid)
    if tp.mask & M_IOCTL:
        tp.emit(TP_IOCTL, (uapi.BINDER_WRITE_READ, 0))
    return Pending(thread, [0, 0, 0, read_size, 0, read_buffer])


def poll(proc: Proc, tid: int) -> bool:
    """binder_poll: the thread (now a poll thread) would find work."""
    thread = proc.get_thread(tid)
    thread.looper |= Looper.POLL
    if proc.log.debug_mask & SPIN:
        locks.inner(proc.log, 5031, 5035)
        locks.inner(proc.log, 562, 564)  # binder_has_work
    return thread.has_work(thread.available_for_proc_work())


def flush(proc: Proc, mm_gone: bool = False) -> None:
    """binder_flush; when the opener's memory is gone (it exits), binder_vma_close first."""
    proc.trace.deferred(proc.pid)  # binder_defer_work: the kernel flushes in a kworker
    if mm_gone and proc.alloc.mapped:
        _vma_close(proc)
    proc.flush()


def release(proc: Proc) -> None:
    """binder_release: unmap (binder_vma_close, if still mapped) and release the proc."""
    proc.trace.deferred(proc.pid)
    if proc.alloc.mapped:
        _vma_close(proc)
    proc.release()


# -- ioctls -----------------------------------------------------------------------------------------


def set_ctx_mgr(proc: Proc, thread: Thread, fbo: tuple[int, int, int, int] | None) -> int:
    """binder_ioctl_set_ctx_mgr."""
    ctx = proc.context
    if ctx.mgr_node is not None:
        proc.log.err("BINDER_SET_CONTEXT_MGR already set")
        return -errno.EBUSY
    if ctx.mgr_uid is not None:
        if ctx.mgr_uid != proc.euid:
            proc.log.err("BINDER_SET_CONTEXT_MGR bad uid %d != %d", proc.euid, ctx.mgr_uid)
            return -errno.EPERM
    else:
        ctx.mgr_uid = proc.euid
    _type, flags, ptr, cookie = fbo if fbo is not None else (0, 0, 0, 0)
    node = new_node(proc, ptr, cookie, flags, thread.pid)
    log = proc.log
    if log.debug_mask & SPIN:
        spin(log, NODE_LOCK, 5146)
    node.local_weak_refs += 1
    node.local_strong_refs += 1
    node.has_strong_ref = True
    node.has_weak_ref = True
    ctx.mgr_node = node
    if log.debug_mask & SPIN:
        spin(log, NODE_UNLOCK, 5152)
    dec_node_tmpref(node)
    return 0


def _freeze_wait(proc: Proc, pending: FreezePending) -> Done | WouldBlock:
    """The wait of binder_ioctl_freeze: until no transaction is outstanding, or the timeout."""
    draining = [p for p in pending.procs if p.outstanding_txns and not p.is_dead]
    if draining and proc.clock() < pending.deadline:
        waiter = Waiter()
        for p in draining:
            p.freeze_waiters.append(waiter)
        return WouldBlock(waiter, pending.deadline)
    return _finish(proc, pending.thread, pending.thread.pid, uapi.BINDER_FREEZE, _freeze_done(pending))


def _freeze_done(pending: FreezePending) -> int:
    """The end of binder_ioctl_freeze for each proc, in order: -EAGAIN while transactions remain."""
    ret = 0
    log = pending.thread.proc.log
    spinlocks = log.debug_mask & SPIN
    for p in pending.procs:
        if spinlocks and ret == 0:  # (6.1 freezes one proc, waits and checks it, then the next)
            locks.inner(log, 5255, 5259)
            locks.inner(log, 5269, 5272)
        if ret == 0 and p.txns_pending():
            ret = -errno.EAGAIN
            if spinlocks:
                locks.inner(log, 5276, 5278)
        if ret:
            p.is_frozen = False
        if spinlocks:
            locks.proc_dec_tmpref(log, p)
    return ret


def _frozen_info(proc: Proc, arg: bytes) -> tuple[int, bytes]:
    """binder_ioctl_get_freezer_info."""
    pid = uapi.FROZEN_STATUS_INFO.unpack(arg)[0]
    procs = proc.driver.procs_of(pid)
    if not procs:
        return -errno.EINVAL, b""
    sync_recv = async_recv = 0
    for p in procs:
        if proc.log.debug_mask & SPIN:
            locks.inner(proc.log, 5298, 5303)
        sync_recv |= int(p.sync_recv) | (int(p.txns_pending()) << 1)
        async_recv |= int(p.async_recv)
    return 0, uapi.FROZEN_STATUS_INFO.pack(pid, sync_recv, async_recv)


def _node_info_for_ref(proc: Proc, arg: bytes) -> tuple[int, bytes]:
    handle, strong, weak, r1, r2, r3 = uapi.NODE_INFO_FOR_REF.unpack(arg)
    if strong or weak or r1 or r2 or r3:
        proc.log.user_error("%d BINDER_GET_NODE_INFO_FOR_REF: only handle may be non-zero.", proc.pid)
        return -errno.EINVAL, b""
    mgr = proc.context.mgr_node
    if mgr is None or mgr.proc is not proc:
        return -errno.EPERM, b""
    log = proc.log
    spinlocks = log.debug_mask & SPIN
    if spinlocks:
        spin(log, PROC_LOCK, 1253)  # binder_get_node_from_ref
    ref = get_ref(proc, handle, True)
    if ref is None:
        if spinlocks:
            spin(log, PROC_UNLOCK, 1270)
        return -errno.EINVAL, b""
    node = ref.node
    if spinlocks:
        locks.inc_node_tmpref(log, node)
        spin(log, PROC_UNLOCK, 1265)
        locks.dec_node_tmpref(log, node)  # binder_put_node (nothing to free: the ref holds it)
    return 0, uapi.NODE_INFO_FOR_REF.pack(handle, node.local_strong_refs + node.internal_strong_refs,
                                          node.local_weak_refs, 0, 0, 0)


def _node_debug_info(proc: Proc, arg: bytes) -> bytes:
    ptr = uapi.NODE_DEBUG_INFO.unpack(arg)[0]
    if proc.log.debug_mask & SPIN:
        locks.inner(proc.log, 5203, 5215)
    for node_ptr in sorted(proc.nodes):
        if node_ptr > ptr:
            node = proc.nodes[node_ptr]
            return uapi.NODE_DEBUG_INFO.pack(node.ptr, node.cookie, int(node.has_strong_ref),
                                             int(node.has_weak_ref))
    return uapi.NODE_DEBUG_INFO.pack(0, 0, 0, 0)


def _mmap(proc: Proc, tid: int, arg: bytes) -> Done:
    """VBINDER_MMAP: binder_mmap's checks, then the allocator's mmap handler.

    It stands for mmap(2), not an ioctl: a failure prints no ``ioctl ... returned`` line.
    """
    addr, size, prot, flags = abi.VBINDER_MMAP_ARG.unpack(arg)
    host = proc.driver.host
    tgid = host.tgid(tid) if host is not None else proc.pid
    if tgid != proc.pid:
        return Done(-errno.EINVAL)
    size = (size + abi.PAGE_SIZE - 1) & ~(abi.PAGE_SIZE - 1)
    if size == 0:
        return Done(-errno.EINVAL)
    if addr == 0:
        addr = proc.driver.pick_mmap_address(size)
    if addr % abi.PAGE_SIZE or addr < abi.MMAP_BASE or addr + size > abi.MMAP_END:
        return Done(-errno.EINVAL)
    vm_flags = _vm_flags(prot, flags)
    if flags & _MAP_NORESERVE:
        vm_flags |= _VM_NORESERVE
    proc.log.debug(Debug.OPEN_CLOSE, "%s: %d %x-%x (%d K) vma %x pagep %x", "binder_mmap", proc.pid,
                   addr, addr + size, size // 1024, vm_flags, _page_prot(prot, flags))
    if prot & abi.PROT_WRITE:
        proc.log.err("%s: %d %x-%x %s failed %d", "binder_mmap", proc.pid, addr, addr + size,
                     "bad vm_flags", -errno.EPERM)
        return Done(-errno.EPERM)
    try:
        proc.alloc.mmap(addr, size)
    except BinderError as e:
        return Done(-e.errno)
    if proc.profile.newer_uapi:
        proc.vm_flags = (vm_flags | _VM_BINDER_MMAP) & ~_VM_MAYWRITE
    else:  # 3.x's binder_mmap added VM_DONTCOPY only; its vm_insert_page of page 0 set VM_INSERTPAGE
        proc.vm_flags = (vm_flags | _VM_DONTCOPY | _VM_INSERTPAGE_3X) & ~_VM_MAYWRITE
    proc.page_prot = _page_prot(prot, flags)
    proc.mmap_range = (addr, addr + size)
    return Done(0, abi.VBINDER_MMAP_ARG.pack(addr, size, prot, flags))


def _vma_close(proc: Proc) -> None:
    start, end = proc.mmap_range
    proc.log.debug(Debug.OPEN_CLOSE, "%d close vm area %x-%x (%d K) vma %x pagep %x", proc.pid, start, end,
                   (end - start) // 1024, proc.vm_flags, proc.page_prot)
    proc.alloc.vma_close()


def _munmap(proc: Proc, tid: int, arg: bytes) -> Done:
    """VBINDER_MUNMAP: binder_vma_close."""
    addr, size = abi.VBINDER_MUNMAP_ARG.unpack(arg)
    size = (size + abi.PAGE_SIZE - 1) & ~(abi.PAGE_SIZE - 1)
    start, end = proc.mmap_range
    if not proc.alloc.mapped or start != addr or end - start != size:
        return Done(-errno.EINVAL)
    _vma_close(proc)
    return Done(0)
