"""struct binder_thread: one per tid that used a proc, with its todo and transaction stack."""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from ..uapi import BR_OK
from .errors import Waiter
from .locks import INNER_LOCK, INNER_UNLOCK, SPIN, spin
from .log import Debug
from .stats import Stats
from .work import ReturnError, Work, WorkList

if TYPE_CHECKING:
    from .process import Proc
    from .transaction import Transaction


class Looper:
    """BINDER_LOOPER_STATE_* bits (plain ints: IntFlag's operators are slow per call)."""

    REGISTERED: Final = 0x01
    ENTERED: Final = 0x02
    EXITED: Final = 0x04
    INVALID: Final = 0x08
    WAITING: Final = 0x10
    POLL: Final = 0x20


NEED_RETURN_3X: Final = 0x20  # 3.x's BINDER_LOOPER_STATE_NEED_RETURN


class Thread:
    """A binder thread of a proc."""

    __slots__ = ("proc", "pid", "todo", "process_todo", "looper", "looper_need_return",
                 "transaction_stack", "return_error", "reply_error", "ee", "tmp_ref",
                 "is_dead", "stats", "waiter", "waiting", "last_read", "start_time", "last_seen", "marks")

    def __init__(self, proc: Proc, pid: int) -> None:
        self.proc = proc
        self.pid = pid
        self.todo = WorkList()
        self.process_todo = False
        self.looper = 0
        self.looper_need_return = True  # so that the first read returns at once
        self.transaction_stack: Transaction | None = None
        self.return_error = ReturnError(BR_OK)
        self.reply_error = ReturnError(BR_OK)
        self.ee = (0, BR_OK, 0)  # extended error: id, command, param
        self.tmp_ref = 0
        self.is_dead = False
        self.stats = Stats()
        self.waiter: Waiter | None = None  # set while a read of this thread waits
        self.waiting = False  # on proc.waiting_threads
        self.last_read: tuple[int, int] | None = None  # (read_buffer, read_size), for the fast path
        self.start_time: int | None = None  # of the host task with this tid (DESIGN.md, Identity)
        self.last_seen = 0.0
        self.marks: list[int] = []  # named calls open on this thread (trace names): transaction ids

    # -- work ----------------------------------------------------------------------------------

    def available_for_proc_work(self) -> bool:
        """binder_available_for_proc_work_ilocked."""
        return self.transaction_stack is None and not self.todo

    def has_work(self, do_proc_work: bool) -> bool:
        """binder_has_work_ilocked."""
        return (self.process_todo or self.looper_need_return
                or (do_proc_work and bool(self.proc.todo)))

    def wake(self) -> None:
        """wake_up_interruptible(&thread->wait)."""
        w = self.waiter
        if w is not None:
            self.waiter = None
            w.wake()

    def enqueue_work(self, w: Work) -> None:
        """binder_enqueue_thread_work_ilocked: queue and let the thread process its todo."""
        self.todo.enqueue(w)
        self.process_todo = True

    def enqueue_deferred_work(self, w: Work) -> None:
        """binder_enqueue_deferred_thread_work_ilocked: queue without waking the todo."""
        self.todo.enqueue(w)

    # -- the looper state ----------------------------------------------------------------------

    def looper_state(self) -> int:
        """``thread->looper`` as the profile's driver prints it: 3.x kept need_return in it, as
        BINDER_LOOPER_STATE_NEED_RETURN (0x20), and had no POLL bit."""
        if self.proc.profile.texts is None:
            return self.looper
        return (self.looper & ~Looper.POLL) | (NEED_RETURN_3X if self.looper_need_return else 0)

    def register_looper(self) -> None:
        """BC_REGISTER_LOOPER: a thread the driver asked for (BR_SPAWN_LOOPER) joins the pool."""
        proc = self.proc
        log = proc.log
        log.debug(Debug.THREADS, "%d:%d BC_REGISTER_LOOPER", proc.pid, self.pid)
        if log.debug_mask & SPIN:
            spin(log, INNER_LOCK, 4030)
        if self.looper & Looper.ENTERED:
            self.looper |= Looper.INVALID
            log.user_error("%d:%d ERROR: BC_REGISTER_LOOPER called after BC_ENTER_LOOPER", proc.pid, self.pid)
        elif proc.requested_threads == 0:
            self.looper |= Looper.INVALID
            log.user_error("%d:%d ERROR: BC_REGISTER_LOOPER called without request", proc.pid, self.pid)
        else:
            proc.requested_threads -= 1
            proc.requested_threads_started += 1
        self.looper |= Looper.REGISTERED
        if log.debug_mask & SPIN:
            spin(log, INNER_UNLOCK, 4044)

    def enter_looper(self) -> None:
        """BC_ENTER_LOOPER: the application's own thread joins the pool."""
        proc = self.proc
        log = proc.log
        log.debug(Debug.THREADS, "%d:%d BC_ENTER_LOOPER", proc.pid, self.pid)
        if self.looper & Looper.REGISTERED:
            self.looper |= Looper.INVALID
            log.user_error("%d:%d ERROR: BC_ENTER_LOOPER called after BC_REGISTER_LOOPER", proc.pid, self.pid)
        self.looper |= Looper.ENTERED

    def exit_looper(self) -> None:
        """BC_EXIT_LOOPER: the thread leaves the pool."""
        self.proc.log.debug(Debug.THREADS, "%d:%d BC_EXIT_LOOPER", self.proc.pid, self.pid)
        self.looper |= Looper.EXITED

    def start_waiting(self, for_proc_work: bool) -> None:
        """binder_wait_for_work, as far as it goes without sleeping: the thread waits (on the
        proc's waiting threads, most recently idle first, when it waits for the proc's work)
        until its new ``waiter`` is woken."""
        self.looper |= Looper.WAITING
        if for_proc_work and not self.waiting:
            self.proc.waiting_threads.appendleft(self)
            self.waiting = True
        self.waiter = Waiter()

    def stop_waiting(self) -> None:
        """A waiting read ends (woken, interrupted or cancelled): list_del_init(waiting_thread_node)."""
        if self.waiting:
            self.proc.waiting_threads.remove(self)
            self.waiting = False
        self.waiter = None
        self.looper &= ~Looper.WAITING
