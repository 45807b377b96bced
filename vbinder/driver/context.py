"""struct binder_context: one per device (binder, hwbinder, vndbinder), with its manager."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .node import Node


class Context:
    """A binder device's context: its name and its context manager node and uid."""

    __slots__ = ("name", "mgr_node", "mgr_uid")

    def __init__(self, name: str) -> None:
        self.name = name
        self.mgr_node: Node | None = None
        self.mgr_uid: int | None = None  # stays after the manager dies, as in the kernel
