"""Work items and work lists: what a thread reads (binder_work and its users, 6.1)."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from typing import Final


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
    """struct binder_work: one item on a todo list; ``queue`` is the list it is on, if any."""

    __slots__ = ("type", "queue")

    def __init__(self, type_: int) -> None:
        self.type = type_
        self.queue: WorkList | None = None

    @property
    def queued(self) -> bool:
        return self.queue is not None


class ReturnError(Work):
    """struct binder_error: a thread's return_error / reply_error (cmd BR_OK when idle)."""

    __slots__ = ("cmd",)

    def __init__(self, cmd: int) -> None:
        super().__init__(WorkType.RETURN_ERROR)
        self.cmd = cmd


class Death(Work):
    """struct binder_ref_death: a death notification on a ref."""

    __slots__ = ("cookie",)

    def __init__(self, cookie: int) -> None:
        super().__init__(WorkType.DEAD_BINDER)
        self.cookie = cookie


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

