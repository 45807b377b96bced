"""binder_thread_read: BR commands into a read buffer (6.1).

The thread takes work from its own todo list, then (when it may take the process's work) from
the proc's; each work item delivers itself (:meth:`.work.Work.deliver`). Where the kernel's
reader would sleep, :func:`thread_read` returns :data:`BLOCKED` instead, having taken nothing off
any queue, and the read runs again when its thread is woken: from where the kernel's reader
wakes up (binder_wait_for_work's check for work, with the ``wait_for_proc_work`` it went to sleep
with), not from the top, so that the checks made before the wait (the looper state's user
error) are made once per read, as in 6.1.
"""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING, Final

from .. import uapi
from ..uapi import BR_NOOP, BR_SPAWN_LOOPER
from . import locks
from .locks import INNER_LOCK, INNER_UNLOCK, SPIN, spin
from .log import Debug
from .thread import Looper
from .trace import M_WAIT_FOR_WORK, TP_WAIT_FOR_WORK

if TYPE_CHECKING:
    from .process import Proc
    from .thread import Thread

U32: Final = uapi.U32
_MIN_READ_SPACE: Final = uapi.TRANSACTION_DATA_SECCTX.size + 4  # sizeof(tr) + 4: room for a transaction
TASK_SIZE: Final = 0x0000_7FFF_FFFF_F000  # x86-64 user space ends here: copies beyond fault
BLOCKED: Final = 1  # thread_read's ret where the kernel's reader would sleep (never a kernel return)
# How a read went to sleep (binder_wait_for_work's do_proc_work), for the run after it wakes.
NOT_WAITED: Final = -1
WAITED_THREAD_WORK: Final = 0
WAITED_PROC_WORK: Final = 1


def thread_read(proc: Proc, thread: Thread, buffer: int, size: int, consumed: int, nonblock: bool,
                segments: list[tuple[int, bytes]], waited: int = NOT_WAITED) -> tuple[int, int]:
    """binder_thread_read: (ret, consumed); appends the copy-to-user segments.

    Where the kernel would sleep, ret is :data:`BLOCKED` and the thread's ``waiter`` is what to
    wait on; nothing was taken off any queue. ``waited`` is how the read went to sleep, when it
    is run again after a wait: :data:`WAITED_THREAD_WORK` or :data:`WAITED_PROC_WORK` (the
    thread's ``waiting`` says which, when :data:`BLOCKED` is returned).
    """
    log = proc.log
    if buffer + size > TASK_SIZE or consumed > size:
        return -errno.EFAULT, consumed  # put_user/copy_to_user outside user space
    out = bytearray()
    if consumed == 0:
        out += U32.pack(BR_NOOP)
    tp = proc.trace
    while True:  # retry:
        spinlocks = log.debug_mask & SPIN
        woken = waited != NOT_WAITED
        if not woken:
            wait_for_proc_work = thread.available_for_proc_work()
            if spinlocks:
                locks.inner(log, 4393, 4395)
                locks.inner(log, 420, 422)  # binder_worklist_empty, for the tracepoint's arguments
            if tp.mask & M_WAIT_FOR_WORK:
                tp.emit(TP_WAIT_FOR_WORK, (wait_for_proc_work, thread.transaction_stack is not None,
                                           bool(thread.todo)))
            if wait_for_proc_work and not (thread.looper & (Looper.REGISTERED | Looper.ENTERED)):
                log.user_error("%d:%d ERROR: Thread waiting for process work before calling "
                               "BC_REGISTER_LOOPER or BC_ENTER_LOOPER (state %x)",
                               proc.pid, thread.pid, thread.looper_state() | Looper.WAITING)
        else:  # woken in binder_wait_for_work: it checks for the work it waited for
            wait_for_proc_work = waited == WAITED_PROC_WORK
            waited = NOT_WAITED
            if spinlocks:
                spin(log, INNER_LOCK, 4307)
        if spinlocks:
            if nonblock:
                locks.inner(log, 562, 564)  # binder_has_work
            elif not woken:
                spin(log, INNER_LOCK, 4297)  # binder_wait_for_work
        if not thread.has_work(wait_for_proc_work):
            if nonblock:
                return -errno.EAGAIN, consumed
            if spinlocks:
                spin(log, INNER_UNLOCK, 4305)  # (and sleeps)
            thread.start_waiting(wait_for_proc_work)
            return BLOCKED, consumed
        if spinlocks and not nonblock:
            spin(log, INNER_UNLOCK, 4315)
        if _read_work(proc, thread, size, consumed, out, wait_for_proc_work, segments):
            break
    consumed += len(out)
    spinlocks = log.debug_mask & SPIN
    if spinlocks:
        spin(log, INNER_LOCK, 4761)
    if (proc.requested_threads == 0 and not proc.waiting_threads
            and proc.requested_threads_started < proc.max_threads
            and thread.looper & (Looper.REGISTERED | Looper.ENTERED)):
        proc.requested_threads += 1
        if spinlocks:
            spin(log, INNER_UNLOCK, 4769)
        log.debug(Debug.THREADS, "%d:%d BR_SPAWN_LOOPER", proc.pid, thread.pid)
        out[0:4] = U32.pack(BR_SPAWN_LOOPER)
        proc.stat_br(thread, BR_SPAWN_LOOPER)
    elif spinlocks:
        spin(log, INNER_UNLOCK, 4777)
    segments.insert(0, (buffer + consumed - len(out), bytes(out)))
    return 0, consumed


def _read_work(proc: Proc, thread: Thread, size: int, consumed: int, out: bytearray,
               wait_for_proc_work: bool, segments: list[tuple[int, bytes]]) -> bool:
    """The work loop of binder_thread_read: False when it read nothing to return with (only the
    BR_NOOP, and no reason to return): the kernel's "goto retry"."""
    log = proc.log
    while True:
        spinlocks = log.debug_mask & SPIN
        if spinlocks:
            spin(log, INNER_LOCK, 4435)
        if thread.todo:
            lst = thread.todo
        elif proc.todo and wait_for_proc_work:
            lst = proc.todo
        else:
            if spinlocks:
                spin(log, INNER_UNLOCK, 4442)
            return consumed + len(out) != 4 or thread.looper_need_return
        if size - (consumed + len(out)) < _MIN_READ_SPACE:
            if spinlocks:
                spin(log, INNER_UNLOCK, 4451)
            return True
        w = lst.pop()
        assert w is not None
        if not thread.todo:
            thread.process_todo = False
        if w.deliver(thread, out, segments):
            return True
