"""Work items and work lists: what a thread reads (binder_work and its users, 6.1).

binder.c switches on a work item's type in three places: binder_thread_read delivers it,
binder_release_work drops it when its thread or process goes, print_binder_work_ilocked prints
it in debugfs. Here each kind of item is a class with those three cases as methods
(:meth:`Work.deliver`, :meth:`Work.cancel`, :meth:`Work.debug_print`), as the Rust driver's
work items have. ``type`` keeps the kernel's enum value: some items change kind in place (a
death notification), and the kernel prints the number where it meets a type it does not know.
The other kinds live beside what they belong to: :class:`.node.NodeWork`,
:class:`.transaction.Transaction`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from typing import TYPE_CHECKING, Final

from .. import uapi
from ..uapi import (
    BR_CLEAR_DEATH_NOTIFICATION_DONE,
    BR_DEAD_BINDER,
    BR_OK,
    BR_ONEWAY_SPAM_SUSPECT,
    BR_TRANSACTION_COMPLETE,
)
from .fmt import u32
from .locks import INNER_UNLOCK, SPIN, spin
from .log import Debug
from .stats import Obj
from .trace import M_NAMES, end_named_call

if TYPE_CHECKING:
    from .process import Proc
    from .thread import Thread

U32: Final = uapi.U32
U64: Final = uapi.U64


class WorkType:
    """enum binder_work_type (6.1)."""

    TRANSACTION: Final = 1
    TRANSACTION_COMPLETE: Final = 2
    TRANSACTION_ONEWAY_SPAM_SUSPECT: Final = 3
    RETURN_ERROR: Final = 4
    NODE: Final = 5
    DEAD_BINDER: Final = 6
    DEAD_BINDER_AND_CLEAR: Final = 7
    CLEAR_DEATH_NOTIFICATION: Final = 8


class Work:
    """struct binder_work: one item on a todo list; ``queue`` is the list it is on, if any.

    A plain ``Work`` is an item of a type the switches do not know: the kernel's default cases.
    """

    __slots__ = ("type", "queue")

    def __init__(self, type_: int) -> None:
        self.type = type_
        self.queue: WorkList | None = None

    @property
    def queued(self) -> bool:
        return self.queue is not None

    def deliver(self, thread: Thread, out: bytearray, segments: list[tuple[int, bytes]]) -> bool:
        """Its case of binder_thread_read: append its BR command to ``out`` (and the buffers it
        hands over to ``segments``); True when the read ends after it."""
        proc = thread.proc
        if proc.log.debug_mask & SPIN:
            spin(proc.log, INNER_UNLOCK, 4625)
        proc.log.err("%d:%d: bad work type %d", proc.pid, thread.pid, self.type)
        return False

    def cancel(self, proc: Proc) -> None:
        """Its case of binder_release_work: ``proc`` (or the thread that had it) goes first."""
        proc.log.err("unexpected work type, %d, not freed", self.type)

    def debug_print(self, out: list[str], proc: Proc | None, prefix: str, transaction_prefix: str) -> None:
        """Its case of print_binder_work_ilocked (``proc``: whose lists are printed)."""
        out.append(f"{prefix}unknown work: type {self.type}\n")


class ReturnError(Work):
    """struct binder_error: a thread's return_error / reply_error (cmd BR_OK when idle)."""

    __slots__ = ("cmd",)

    def __init__(self, cmd: int) -> None:
        super().__init__(WorkType.RETURN_ERROR)
        self.cmd = cmd

    def deliver(self, thread: Thread, out: bytearray, segments: list[tuple[int, bytes]]) -> bool:
        proc = thread.proc
        if proc.log.debug_mask & SPIN:
            spin(proc.log, INNER_UNLOCK, 4468)
        cmd = self.cmd
        out += U32.pack(cmd)
        self.cmd = BR_OK
        proc.stat_br(thread, cmd)
        if thread.marks and proc.trace.mask & M_NAMES:
            end_named_call(proc.trace, proc.pid, thread.marks, -1)  # a named call failed
        return False

    def cancel(self, proc: Proc) -> None:
        proc.log.debug(Debug.DEAD_TRANSACTION, "undelivered TRANSACTION_ERROR: %u", self.cmd)

    def debug_print(self, out: list[str], proc: Proc | None, prefix: str, transaction_prefix: str) -> None:
        if proc is not None and proc.profile.debugfs == "3.4":
            return  # 3.4's return errors were fields of the thread, not work
        out.append(f"{prefix}transaction error: {u32(self.cmd)}\n")


class TransactionComplete(Work):
    """The sender's BR_TRANSACTION_COMPLETE of a call or reply (type TRANSACTION_COMPLETE), or
    the BR_ONEWAY_SPAM_SUSPECT of a suspect one-way call (TRANSACTION_ONEWAY_SPAM_SUSPECT), which
    6.1's debugfs does not know."""

    __slots__ = ()

    def __init__(self) -> None:
        super().__init__(WorkType.TRANSACTION_COMPLETE)

    def deliver(self, thread: Thread, out: bytearray, segments: list[tuple[int, bytes]]) -> bool:
        proc = thread.proc
        if proc.oneway_spam_detection_enabled and self.type == WorkType.TRANSACTION_ONEWAY_SPAM_SUSPECT:
            cmd = BR_ONEWAY_SPAM_SUSPECT
        else:
            cmd = BR_TRANSACTION_COMPLETE
        log = proc.log
        if log.debug_mask & SPIN:
            spin(log, INNER_UNLOCK, 4484)
        proc.driver.stats.obj_deleted[Obj.TRANSACTION_COMPLETE] += 1
        out += U32.pack(cmd)
        proc.stat_br(thread, cmd)
        if log.debug_mask & Debug.TRANSACTION_COMPLETE:
            log.debug(Debug.TRANSACTION_COMPLETE, "%d:%d BR_TRANSACTION_COMPLETE", proc.pid, thread.pid)
        return False

    def cancel(self, proc: Proc) -> None:
        proc.log.debug(Debug.DEAD_TRANSACTION, "undelivered TRANSACTION_COMPLETE")
        proc.driver.stats.obj_deleted[Obj.TRANSACTION_COMPLETE] += 1

    def debug_print(self, out: list[str], proc: Proc | None, prefix: str, transaction_prefix: str) -> None:
        if self.type == WorkType.TRANSACTION_COMPLETE:
            out.append(f"{prefix}transaction complete\n")
        else:
            super().debug_print(out, proc, prefix, transaction_prefix)


class Death(Work):
    """struct binder_ref_death: a death notification on a ref.

    Its type says what it is about to tell: DEAD_BINDER (the node died), DEAD_BINDER_AND_CLEAR
    (died, and cleared before the owner of the ref acknowledged it), CLEAR_DEATH_NOTIFICATION
    (cleared: BR_CLEAR_DEATH_NOTIFICATION_DONE).
    """

    __slots__ = ("cookie",)

    def __init__(self, cookie: int) -> None:
        super().__init__(WorkType.DEAD_BINDER)
        self.cookie = cookie

    def deliver(self, thread: Thread, out: bytearray, segments: list[tuple[int, bytes]]) -> bool:
        proc = thread.proc
        cleared = self.type == WorkType.CLEAR_DEATH_NOTIFICATION
        cmd = BR_CLEAR_DEATH_NOTIFICATION_DONE if cleared else BR_DEAD_BINDER
        proc.log.debug(Debug.DEATH_NOTIFICATION, "%d:%d %s %016x", proc.pid, thread.pid,
                       "BR_CLEAR_DEATH_NOTIFICATION_DONE" if cleared else "BR_DEAD_BINDER", self.cookie)
        if cleared:
            if proc.log.debug_mask & SPIN:
                spin(proc.log, INNER_UNLOCK, 4605)
            proc.driver.stats.obj_deleted[Obj.DEATH] += 1
        else:
            proc.delivered_death.enqueue(self)
            if proc.log.debug_mask & SPIN:
                spin(proc.log, INNER_UNLOCK, 4611)
        out += U32.pack(cmd) + U64.pack(self.cookie)
        proc.stat_br(thread, cmd)
        return not cleared  # DEAD_BINDER notifications can cause transactions

    def cancel(self, proc: Proc) -> None:
        if self.type == WorkType.DEAD_BINDER:
            super().cancel(proc)  # not in 6.1's cases: "unexpected work type"
            return
        proc.log.debug(Debug.DEAD_TRANSACTION, "undelivered death notification, %016x", self.cookie)
        proc.driver.stats.obj_deleted[Obj.DEATH] += 1

    def debug_print(self, out: list[str], proc: Proc | None, prefix: str, transaction_prefix: str) -> None:
        if self.type == WorkType.DEAD_BINDER:
            out.append(f"{prefix}has dead binder\n")
        elif self.type == WorkType.DEAD_BINDER_AND_CLEAR:
            out.append(f"{prefix}has cleared dead binder\n")
        else:
            out.append(f"{prefix}has cleared death notification\n")


class WorkList:
    """A todo list (struct list_head of binder_work)."""

    __slots__ = ("items",)

    def __init__(self) -> None:
        self.items: deque[Work] = deque()

    def __bool__(self) -> bool:
        return bool(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Iterator[Work]:
        return iter(self.items)

    def head(self) -> Work | None:
        return self.items[0] if self.items else None

    def enqueue(self, w: Work) -> None:
        """binder_enqueue_work_ilocked (the item must not be on a list)."""
        w.queue = self
        self.items.append(w)

    def pop(self) -> Work | None:
        """binder_dequeue_work_head_ilocked."""
        if not self.items:
            return None
        w = self.items.popleft()
        w.queue = None
        return w


def dequeue(w: Work) -> None:
    """binder_dequeue_work_ilocked: take ``w`` off whatever list it is on."""
    q = w.queue
    if q is not None:
        q.items.remove(w)
        w.queue = None
