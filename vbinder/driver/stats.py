"""struct binder_stats: BC/BR counters by _IOC_NR, and object created/deleted counts."""

from __future__ import annotations

from typing import Final

from ..uapi import BC_STAT_NAMES, BR_STAT_NAMES


class Obj:
    """enum binder_stat_types."""

    PROC: Final = 0
    THREAD: Final = 1
    NODE: Final = 2
    REF: Final = 3
    DEATH: Final = 4
    TRANSACTION: Final = 5
    TRANSACTION_COMPLETE: Final = 6


OBJ_NAMES = ("proc", "thread", "node", "ref", "death", "transaction", "transaction_complete")


class Stats:
    """Counters of one scope (global, a proc or a thread)."""

    __slots__ = ("bc", "br", "obj_created", "obj_deleted")

    def __init__(self) -> None:
        self.bc = [0] * len(BC_STAT_NAMES)
        self.br = [0] * len(BR_STAT_NAMES)
        self.obj_created = [0] * len(OBJ_NAMES)
        self.obj_deleted = [0] * len(OBJ_NAMES)

    def active(self, kind: int) -> int:
        return self.obj_created[kind] - self.obj_deleted[kind]
