"""Kernel profiles: which binder driver vbinder serves (``vbinder mount --kernel NAME``).

There is one driver core. A :class:`Profile` is the small, explicit set of switches where the
drivers differ, which the core consults at those places:

- ``6.1`` (the default): Linux 6.1's binder.c and binder_alloc.c, as the oracle runs them.
- ``3.4`` (also ``3.x``): the staging driver of the Android common kernels the seeds quote
  (``drivers/staging/android/binder.c`` of android-3.4 to 3.10, before its messages took a
  ``pr_fmt`` prefix), with the 64-bit protocol (version 8) that vbinder's clients speak: the
  messages and debugfs files of that time, its single ``debug_mask`` (no ``binder_alloc``
  module, ``proc_no_lock``), its allocator (each ``struct binder_buffer`` of 80 bytes inside the
  mapped area, ``free_async_space`` charged with it, pages freed as soon as no buffer uses them,
  the first page taken at mmap), and the behaviours the seeds show: a target without its area
  answers BR_FAILED_REPLY, BR_TRANSACTION_COMPLETE is queued at once, and BC_FREE_BUFFER moves a
  node's next one-way call onto the freeing thread's own todo.

docs/profiles.md lists every switch and what the 3.4 profile does not model.
"""

from __future__ import annotations

from typing import Final

from ..uapi import BR_DEAD_REPLY, BR_FAILED_REPLY
from .texts_3_4 import TEXTS_3_4, Text

# sizeof(struct binder_buffer) of a 64-bit 3.x kernel: list_head 16, rb_node 24, the bit
# fields 4 (+4 padding), transaction 8, target_node 8, data_size 8, offsets_size 8.
BUFFER_HEADER_3_4: Final = 80

# binder.c's debug_mask bits of 3.4 (a single mask: the allocator was part of binder.c).
DEBUG_BITS_3_4: Final = (
    "USER_ERROR", "FAILED_TRANSACTION", "DEAD_TRANSACTION", "OPEN_CLOSE", "DEAD_BINDER",
    "DEATH_NOTIFICATION", "READ_WRITE", "USER_REFS", "THREADS", "TRANSACTION", "TRANSACTION_COMPLETE",
    "FREE_BUFFER", "INTERNAL_REFS", "BUFFER_ALLOC", "PRIORITY_CAP", "BUFFER_ALLOC_ASYNC",
)


class Profile:
    """The switches of one driver version (read-only once made)."""

    __slots__ = ("name", "title", "devices", "ratelimit", "texts", "alloc_module", "buffer_header",
                 "defer_tcomplete", "async_to_thread", "todo_check", "no_vma_error", "newer_uapi",
                 "debugfs", "debug_bits")

    def __init__(self, name: str, title: str, *, devices: tuple[str, ...], ratelimit: bool,
                 texts: dict[str, Text] | None, alloc_module: bool, buffer_header: int,
                 defer_tcomplete: bool, async_to_thread: bool, todo_check: bool, no_vma_error: int,
                 newer_uapi: bool, debugfs: str, debug_bits: tuple[str, ...]) -> None:
        self.name = name
        self.title = title
        # The devices a mount has unless --devices says otherwise.
        self.devices = devices
        # binder_debug, binder_user_error and binder_alloc_debug are pr_info_ratelimited (6.1),
        # or plain printks (3.x).
        self.ratelimit = ratelimit
        # The text of each log line, by 6.1's format (None: 6.1's own, after "binder: ").
        self.texts = texts
        # binder_alloc is a module of its own (6.1: its own debug_mask parameter, its own lines
        # at release), or part of binder.c (3.x: binder.c's one mask has the allocator's bits,
        # BUFFER_ALLOC 1 << 13 and BUFFER_ALLOC_ASYNC 1 << 15, and binder_release frees the
        # buffers and pages and counts them in its line).
        self.alloc_module = alloc_module
        # sizeof(struct binder_buffer) when the buffers' headers live in the mapped area (3.x),
        # 0 when they are kernel memory (6.1). With headers in the area the allocator also frees
        # pages as soon as no buffer uses them (no lru) and takes the first page at mmap.
        self.buffer_header = buffer_header
        # A sync call's BR_TRANSACTION_COMPLETE waits for its reply (6.1) or is queued at once.
        self.defer_tcomplete = defer_tcomplete
        # BC_FREE_BUFFER of a one-way call's buffer moves the node's next one-way call onto the
        # freeing thread's todo (3.x), not the proc's (6.1).
        self.async_to_thread = async_to_thread
        # 6.1 refuses a sync call from a thread with a transaction at the head of its todo.
        self.todo_check = todo_check
        # What a call to a proc whose area is gone gets: BR_DEAD_REPLY (6.1), BR_FAILED_REPLY (3.x).
        self.no_vma_error = no_vma_error
        # The ioctls, commands and object types newer than 3.4 (extended errors, freezing, node
        # info, scatter-gather buffers, fd arrays, security contexts, ...).
        self.newer_uapi = newer_uapi
        # Which debugfs texts: "6.1" or "3.4".
        self.debugfs = debugfs
        # debug_mask's bits by number, as the driver names them (vbinder param).
        self.debug_bits = debug_bits


LINUX_6_1: Final = Profile(
    "6.1", "Linux 6.1 (android14-6.1): drivers/android/binder.c and binder_alloc.c",
    devices=("binder", "hwbinder", "vndbinder"), ratelimit=True, texts=None, alloc_module=True,
    buffer_header=0, defer_tcomplete=True, async_to_thread=False, todo_check=True,
    no_vma_error=BR_DEAD_REPLY, newer_uapi=True, debugfs="6.1",
    debug_bits=("USER_ERROR", "FAILED_TRANSACTION", "DEAD_TRANSACTION", "OPEN_CLOSE", "DEAD_BINDER",
                "DEATH_NOTIFICATION", "READ_WRITE", "USER_REFS", "THREADS", "TRANSACTION",
                "TRANSACTION_COMPLETE", "FREE_BUFFER", "INTERNAL_REFS", "PRIORITY_CAP", "SPINLOCKS"))

ANDROID_3_4: Final = Profile(
    "3.4", "Android common kernels 3.4 to 3.10: drivers/staging/android/binder.c (64-bit protocol)",
    devices=("binder",), ratelimit=False, texts=TEXTS_3_4, alloc_module=False,
    buffer_header=BUFFER_HEADER_3_4, defer_tcomplete=False, async_to_thread=True, todo_check=False,
    no_vma_error=BR_FAILED_REPLY, newer_uapi=False, debugfs="3.4", debug_bits=DEBUG_BITS_3_4)

PROFILES: Final = {"6.1": LINUX_6_1, "3.4": ANDROID_3_4}
ALIASES: Final = {"3.x": "3.4"}
DEFAULT: Final = "6.1"


def profile(name: str) -> Profile:
    """The profile called ``name`` (or one of its aliases); KeyError if there is none."""
    return PROFILES[ALIASES.get(name, name)]
