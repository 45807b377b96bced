"""The allocator of one process's mapped area: a port of Linux 6.1's ``binder_alloc.c``.

The area is cut into buffers that tile it in address order (a doubly linked list, as
``alloc->buffers``); a buffer's size is implicit (the next buffer's start minus its own, the end of
the area for the last). Free buffers sit in a red-black tree by size, a port of ``lib/rbtree.c``,
because the best-fit walk stops at the first exact match on its path, so which of several
equal-sized free buffers it picks depends on the tree's shape. Allocated buffers are found by
address in a dict. Each page of the area is free (never installed), active (installed, in use) or
on the lru (installed, unused), and moves between those states exactly where 6.1's
``binder_update_page_range`` moves it. Only allocated buffers have bytes (``Buffer.data``).

Log lines are 6.1's. Their pointers print as 6.1 prints them on a device, hashed (``%p`` and
``%pK``, :func:`.fmt.pk`): a user address (``%pK`` of ``buffer->user_data``, a page) hashes the
address, a ``struct binder_buffer`` (``%p``) hashes its address tagged as a kernel object, so that
the two never print the same value. Where 6.1 would hit ``BUG_ON``, this raises ``AssertionError``.
"""

from __future__ import annotations

import errno
from collections.abc import Iterator
from typing import TYPE_CHECKING, Final

from ..abi import MMAP_MAX_USED, PAGE_SIZE
from .errors import BinderError
from .fmt import pk, size_t, zd
from .log import KERN_ERR, KERN_INFO, AllocDebug, Log
from .texts_3_4 import NULL_PTR
from .trace import (
    M_PAGES,
    M_UPDATE_PAGE_RANGE,
    TP_ALLOC_LRU_END,
    TP_ALLOC_LRU_START,
    TP_ALLOC_PAGE_END,
    TP_ALLOC_PAGE_START,
    TP_FREE_LRU_END,
    TP_FREE_LRU_START,
    TP_UPDATE_PAGE_RANGE,
    Tracer,
)

if TYPE_CHECKING:
    from .node import Node
    from .transaction import Transaction

PAGE_MASK: Final = ~(PAGE_SIZE - 1)
_KERNEL_OBJECT: Final = 0xFFFF_8000_0000_0000  # %p of a struct hashes its address tagged as a kernel one
_PTR: Final = 8  # sizeof(void *)

# Page states (binder_alloc_print_pages' three counts).
PAGE_FREE: Final = 0  # page_ptr == NULL
PAGE_ACTIVE: Final = 1  # installed, not on the lru
PAGE_LRU: Final = 2  # installed, on binder_alloc_lru


def _align(x: int) -> int:
    """ALIGN(x, sizeof(void *)) in size_t arithmetic (wraps at 2**64)."""
    return size_t((x + _PTR - 1) & ~(_PTR - 1))


def _page_align(x: int) -> int:
    """PAGE_ALIGN(x)."""
    return (x + PAGE_SIZE - 1) & PAGE_MASK


class Buffer:
    """struct binder_buffer: one buffer of the area, free or allocated."""

    __slots__ = (
        "user_data", "data_size", "offsets_size", "extra_buffers_size",
        "free", "allow_user_free", "async_transaction", "oneway_spam_suspect", "clear_on_free",
        "debug_id", "pid", "transaction", "target_node", "data",
        "_prev", "_next", "_rb_parent", "_rb_left", "_rb_right", "_rb_black",
    )

    def __init__(self, user_data: int, free: bool = True) -> None:
        self.user_data = user_data
        self.data_size = 0
        self.offsets_size = 0
        self.extra_buffers_size = 0
        self.free = free
        self.allow_user_free = False
        self.async_transaction = False
        self.oneway_spam_suspect = False
        self.clear_on_free = False
        self.debug_id = 0
        self.pid = 0
        self.transaction: Transaction | None = None
        self.target_node: Node | None = None
        self.data = bytearray()
        # alloc->buffers links (address order)
        self._prev: Buffer | None = None
        self._next: Buffer | None = None
        # free_buffers rb_node
        self._rb_parent: Buffer | None = None
        self._rb_left: Buffer | None = None
        self._rb_right: Buffer | None = None
        self._rb_black = False

    def __repr__(self) -> str:
        state = "free" if self.free else f"{self.data_size}:{self.offsets_size}:{self.extra_buffers_size}"
        return f"<Buffer {self.debug_id} at {self.user_data:#x} {state}>"


# ---------------------------------------------------------------------------------------------
# lib/rbtree.c (rb_insert_color, rb_erase), for the free tree. A node's color: _rb_black.


class _RbRoot:
    """struct rb_root."""

    __slots__ = ("rb_node",)

    def __init__(self) -> None:
        self.rb_node: Buffer | None = None


def _rb_change_child(old: Buffer, new: Buffer | None, parent: Buffer | None, root: _RbRoot) -> None:
    """__rb_change_child()."""
    if parent is not None:
        if parent._rb_left is old:
            parent._rb_left = new
        else:
            parent._rb_right = new
    else:
        root.rb_node = new


def _rb_rotate_set_parents(old: Buffer, new: Buffer, root: _RbRoot, black: bool) -> None:
    """__rb_rotate_set_parents(): new takes old's parent and color; old gets new and ``black``."""
    parent = old._rb_parent
    new._rb_parent = parent
    new._rb_black = old._rb_black
    old._rb_parent = new
    old._rb_black = black
    _rb_change_child(old, new, parent, root)


def _rb_insert_color(node: Buffer, root: _RbRoot) -> None:
    """rb_insert_color() (__rb_insert): rebalance after linking red ``node``. Each round fixes
    the red parent on its side of the grandparent, or flips colors and goes two levels up."""
    parent = node._rb_parent
    while True:
        if parent is None:
            node._rb_parent = None
            node._rb_black = True
            return
        if parent._rb_black:
            return
        gparent = parent._rb_parent
        assert gparent is not None
        if parent is not gparent._rb_right:  # parent == gparent->rb_left
            up = _rb_insert_fix_left(node, parent, gparent, root)
        else:
            up = _rb_insert_fix_right(node, parent, gparent, root)
        if up is None:
            return
        node = up
        parent = node._rb_parent


def _rb_insert_fix_left(node: Buffer, parent: Buffer, gparent: Buffer, root: _RbRoot) -> Buffer | None:
    """__rb_insert with the parent on the grandparent's left: the grandparent, to go on from
    (case 1), or None when done."""
    tmp = gparent._rb_right
    if tmp is not None and not tmp._rb_black:
        # Case 1: color flips.
        tmp._rb_parent, tmp._rb_black = gparent, True
        parent._rb_parent, parent._rb_black = gparent, True
        gparent._rb_black = False
        return gparent
    tmp = parent._rb_right
    if node is tmp:
        # Case 2: left rotate at parent.
        tmp = node._rb_left
        parent._rb_right = tmp
        node._rb_left = parent
        if tmp is not None:
            tmp._rb_parent, tmp._rb_black = parent, True
        parent._rb_parent, parent._rb_black = node, False
        parent = node
        tmp = node._rb_right
    # Case 3: right rotate at gparent.
    gparent._rb_left = tmp
    parent._rb_right = gparent
    if tmp is not None:
        tmp._rb_parent, tmp._rb_black = gparent, True
    _rb_rotate_set_parents(gparent, parent, root, False)
    return None


def _rb_insert_fix_right(node: Buffer, parent: Buffer, gparent: Buffer, root: _RbRoot) -> Buffer | None:
    """__rb_insert with the parent on the grandparent's right (the mirror of the left case)."""
    tmp = gparent._rb_left
    if tmp is not None and not tmp._rb_black:
        # Case 1: color flips.
        tmp._rb_parent, tmp._rb_black = gparent, True
        parent._rb_parent, parent._rb_black = gparent, True
        gparent._rb_black = False
        return gparent
    tmp = parent._rb_left
    if node is tmp:
        # Case 2: right rotate at parent.
        tmp = node._rb_right
        parent._rb_left = tmp
        node._rb_right = parent
        if tmp is not None:
            tmp._rb_parent, tmp._rb_black = parent, True
        parent._rb_parent, parent._rb_black = node, False
        parent = node
        tmp = node._rb_left
    # Case 3: left rotate at gparent.
    gparent._rb_right = tmp
    parent._rb_left = gparent
    if tmp is not None:
        tmp._rb_parent, tmp._rb_black = gparent, True
    _rb_rotate_set_parents(gparent, parent, root, False)
    return None


def _rb_erase_color(parent: Buffer, root: _RbRoot) -> None:
    """____rb_erase_color(): rebalance after erasing a black leaf under ``parent``. Each round
    fixes the side of ``parent`` that lost a black node, or moves one level up."""
    node: Buffer | None = None
    while True:
        if node is not parent._rb_right:  # node == parent->rb_left
            up = _rb_erase_fix_left(parent, root)
        else:
            up = _rb_erase_fix_right(parent, root)
        if up is None:
            return
        node, parent = parent, up


def _rb_erase_fix_left(parent: Buffer, root: _RbRoot) -> Buffer | None:
    """____rb_erase_color with the short side on the left: the parent's parent, to go on from
    (case 2 with a black parent), or None when done."""
    sibling = parent._rb_right
    assert sibling is not None
    if not sibling._rb_black:
        # Case 1: left rotate at parent.
        tmp1 = sibling._rb_left
        assert tmp1 is not None
        parent._rb_right = tmp1
        sibling._rb_left = parent
        tmp1._rb_parent, tmp1._rb_black = parent, True
        _rb_rotate_set_parents(parent, sibling, root, False)
        sibling = tmp1
    tmp1 = sibling._rb_right
    if tmp1 is None or tmp1._rb_black:
        tmp2 = sibling._rb_left
        if tmp2 is None or tmp2._rb_black:
            # Case 2: sibling color flip.
            sibling._rb_parent, sibling._rb_black = parent, False
            if not parent._rb_black:
                parent._rb_black = True
                return None
            return parent._rb_parent
        # Case 3: right rotate at sibling.
        tmp1 = tmp2._rb_right
        sibling._rb_left = tmp1
        tmp2._rb_right = sibling
        parent._rb_right = tmp2
        if tmp1 is not None:
            tmp1._rb_parent, tmp1._rb_black = sibling, True
        tmp1 = sibling
        sibling = tmp2
    # Case 4: left rotate at parent + color flips.
    tmp2 = sibling._rb_left
    parent._rb_right = tmp2
    sibling._rb_left = parent
    tmp1._rb_parent, tmp1._rb_black = sibling, True
    if tmp2 is not None:
        tmp2._rb_parent = parent
    _rb_rotate_set_parents(parent, sibling, root, True)
    return None


def _rb_erase_fix_right(parent: Buffer, root: _RbRoot) -> Buffer | None:
    """____rb_erase_color with the short side on the right (the mirror of the left case)."""
    sibling = parent._rb_left
    assert sibling is not None
    if not sibling._rb_black:
        # Case 1: right rotate at parent.
        tmp1 = sibling._rb_right
        assert tmp1 is not None
        parent._rb_left = tmp1
        sibling._rb_right = parent
        tmp1._rb_parent, tmp1._rb_black = parent, True
        _rb_rotate_set_parents(parent, sibling, root, False)
        sibling = tmp1
    tmp1 = sibling._rb_left
    if tmp1 is None or tmp1._rb_black:
        tmp2 = sibling._rb_right
        if tmp2 is None or tmp2._rb_black:
            # Case 2: sibling color flip.
            sibling._rb_parent, sibling._rb_black = parent, False
            if not parent._rb_black:
                parent._rb_black = True
                return None
            return parent._rb_parent
        # Case 3: left rotate at sibling.
        tmp1 = tmp2._rb_left
        sibling._rb_right = tmp1
        tmp2._rb_left = sibling
        parent._rb_left = tmp2
        if tmp1 is not None:
            tmp1._rb_parent, tmp1._rb_black = sibling, True
        tmp1 = sibling
        sibling = tmp2
    # Case 4: right rotate at parent + color flips.
    tmp2 = sibling._rb_right
    parent._rb_left = tmp2
    sibling._rb_right = parent
    tmp1._rb_parent, tmp1._rb_black = sibling, True
    if tmp2 is not None:
        tmp2._rb_parent = parent
    _rb_rotate_set_parents(parent, sibling, root, True)
    return None


def _rb_erase(node: Buffer, root: _RbRoot) -> None:
    """rb_erase() (__rb_erase_augmented without callbacks, then ____rb_erase_color)."""
    child = node._rb_right
    tmp = node._rb_left
    rebalance: Buffer | None
    if tmp is None:
        # Case 1: at most one child (the right one).
        parent = node._rb_parent
        _rb_change_child(node, child, parent, root)
        if child is not None:
            child._rb_parent, child._rb_black = parent, node._rb_black
            rebalance = None
        else:
            rebalance = parent if node._rb_black else None
    elif child is None:
        # Still case 1, the child is the left one.
        parent = node._rb_parent
        tmp._rb_parent, tmp._rb_black = parent, node._rb_black
        _rb_change_child(node, tmp, parent, root)
        rebalance = None
    else:
        successor = child
        tmp = child._rb_left
        if tmp is None:
            # Case 2: the successor is the right child.
            parent = successor
            child2 = successor._rb_right
        else:
            # Case 3: the successor is leftmost under the right child.
            while True:
                parent = successor
                successor = tmp
                tmp = tmp._rb_left
                if tmp is None:
                    break
            child2 = successor._rb_right
            parent._rb_left = child2
            successor._rb_right = child
            child._rb_parent = successor
        tmp = node._rb_left
        assert tmp is not None
        successor._rb_left = tmp
        tmp._rb_parent = successor
        _rb_change_child(node, successor, node._rb_parent, root)
        if child2 is not None:
            child2._rb_parent, child2._rb_black = parent, True
            rebalance = None
        else:
            rebalance = parent if successor._rb_black else None
        successor._rb_parent, successor._rb_black = node._rb_parent, node._rb_black
    node._rb_parent = node._rb_left = node._rb_right = None
    if rebalance is not None:
        _rb_erase_color(rebalance, root)


# ---------------------------------------------------------------------------------------------


class Alloc:
    """struct binder_alloc: the buffers and pages of one process's mapped area."""

    def __init__(self, pid: int, log: Log, trace: Tracer | None = None) -> None:
        self.pid = pid  # alloc->pid: the opener's thread-group leader
        self.log = log
        self.trace = trace if trace is not None else Tracer(log.clock)
        # sizeof(struct binder_buffer) when each buffer's header sits in the area before its data
        # (the 3.x allocator, docs/profiles.md); 0 for 6.1's.
        self.header = log.profile.buffer_header
        self.vm_start = 0  # alloc->buffer
        self.buffer_size = 0
        self.free_async_space = 0
        self.pages_high = 0
        self.oneway_spam_detected = False
        self._vma = False  # alloc->vma != NULL
        self._first: Buffer | None = None  # alloc->buffers, in address order
        self._free = _RbRoot()  # alloc->free_buffers, by size
        self._allocated: dict[int, Buffer] = {}  # alloc->allocated_buffers, by user address
        self._pages = bytearray()  # alloc->pages[]: PAGE_FREE / PAGE_ACTIVE / PAGE_LRU

    # ---- helpers ------------------------------------------------------------------------------

    def _uptr(self, addr: int) -> str:
        """``%pK`` of a user address (a buffer's user_data, a page). 3.x printed its pointers raw
        (kernel addresses of the area, which vbinder prints as the area's user addresses)."""
        return f"{addr:016x}" if self.header else pk(addr)

    def _kptr(self, buffer: Buffer) -> str:
        """``%p`` of a ``struct binder_buffer``: a kernel object, never the same value as a user
        address. 3.x's is the buffer's header in the area."""
        if self.header:
            return f"{buffer.user_data - self.header:016x}"
        return pk(buffer.user_data ^ _KERNEL_OBJECT)

    @property
    def mapped(self) -> bool:
        """Whether the area is there (alloc->vma set): new buffers can be allocated."""
        return self._vma

    def _buffer_size(self, buffer: Buffer) -> int:
        """binder_alloc_buffer_size(): the next buffer's start (or the area's end) minus this one's."""
        nxt = buffer._next
        if nxt is None:
            return self.vm_start + self.buffer_size - buffer.user_data
        return nxt.user_data - self.header - buffer.user_data

    def _buffers(self) -> Iterator[Buffer]:
        """alloc->buffers in address order."""
        b = self._first
        while b is not None:
            yield b
            b = b._next

    def _insert_free_buffer(self, new_buffer: Buffer) -> None:
        """binder_insert_free_buffer(): into the free tree by size, equal sizes to the right."""
        new_buffer_size = self._buffer_size(new_buffer)
        if self.log.alloc_debug_mask & AllocDebug.BUFFER_ALLOC:  # (per-call log lines are guarded: no work when off)
            self.log.alloc_debug(AllocDebug.BUFFER_ALLOC, "%d: add free buffer, size %d, at %s",
                                 self.pid, new_buffer_size, self._kptr(new_buffer))
        parent: Buffer | None = None
        n = self._free.rb_node
        left = False
        while n is not None:
            parent = n
            if new_buffer_size < self._buffer_size(n):
                n = n._rb_left
                left = True
            else:
                n = n._rb_right
                left = False
        # rb_link_node
        new_buffer._rb_parent = parent
        new_buffer._rb_black = False
        new_buffer._rb_left = new_buffer._rb_right = None
        if parent is None:
            self._free.rb_node = new_buffer
        elif left:
            parent._rb_left = new_buffer
        else:
            parent._rb_right = new_buffer
        _rb_insert_color(new_buffer, self._free)

    def _update_page_range(self, allocate: bool, start: int, end: int) -> None:
        """binder_update_page_range(): install/take off the lru (allocate) or put on the lru."""
        if self.log.alloc_debug_mask & AllocDebug.BUFFER_ALLOC:
            self.log.alloc_debug(AllocDebug.BUFFER_ALLOC, "%d: %s pages %s-%s", self.pid,
                                 "allocate" if allocate else "free", self._uptr(start), self._uptr(end))
        if end <= start:
            return
        tp = self.trace
        if tp.mask & M_UPDATE_PAGE_RANGE:
            tp.emit(TP_UPDATE_PAGE_RANGE, (self.pid, allocate, start - self.vm_start, end - start))
        pages_traced = bool(tp.mask & M_PAGES)
        pages = self._pages
        first = (start - self.vm_start) // PAGE_SIZE
        last = (end - self.vm_start) // PAGE_SIZE  # exclusive
        if allocate:
            # new_buf checked the vma first, so "failed to map pages in userspace, no vma" cannot
            # happen here; nor can page allocation fail.
            for index in range(first, last):
                if pages[index] != PAGE_FREE:
                    # list_lru_del(); WARN_ON(!on_lru) leaves an active page active.
                    if pages_traced:
                        tp.emit(TP_ALLOC_LRU_START, (self.pid, index))
                    pages[index] = PAGE_ACTIVE
                    if pages_traced:
                        tp.emit(TP_ALLOC_LRU_END, (self.pid, index))
                    continue
                if pages_traced:
                    tp.emit(TP_ALLOC_PAGE_START, (self.pid, index))
                pages[index] = PAGE_ACTIVE
                if index + 1 > self.pages_high:
                    self.pages_high = index + 1
                if pages_traced:
                    tp.emit(TP_ALLOC_PAGE_END, (self.pid, index))
        elif self.header:
            for index in range(last - 1, first - 1, -1):
                pages[index] = PAGE_FREE  # 3.x: zap_page_range, __free_page
        else:
            for index in range(last - 1, first - 1, -1):
                if pages_traced:
                    tp.emit(TP_FREE_LRU_START, (self.pid, index))
                # list_lru_add(): a page never installed (zeroed lru head) or already on the lru
                # is not added (WARN_ON(!ret)).
                if pages[index] == PAGE_ACTIVE:
                    pages[index] = PAGE_LRU
                if pages_traced:
                    tp.emit(TP_FREE_LRU_END, (self.pid, index))

    # ---- mmap / vma ---------------------------------------------------------------------------

    def mmap(self, addr: int, size: int) -> None:
        """binder_alloc_mmap_handler(): take up to 4 MiB of [addr, addr + size rounded to pages).

        Raises BinderError EBUSY if this process mapped before (even if that area is gone).
        """
        vm_end = addr + _page_align(size)
        if self.buffer_size:
            ret = -errno.EBUSY
            self.log.alloc_debug(AllocDebug.USER_ERROR, "%s: %d %x-%x %s failed %d",
                                 "binder_alloc_mmap_handler", self.pid, addr, vm_end,
                                 "already mapped", ret)
            raise BinderError(errno.EBUSY, "already mapped")
        self.buffer_size = min(vm_end - addr, MMAP_MAX_USED)
        self.vm_start = addr
        self._pages = bytearray(self.buffer_size // PAGE_SIZE)
        if self.header:  # 3.x's binder_mmap: the first page holds the first buffer's header
            self._update_page_range(True, addr, addr + PAGE_SIZE)
        buffer = Buffer(addr + self.header)
        self._first = buffer
        self._insert_free_buffer(buffer)
        self.free_async_space = self.buffer_size // 2
        self._vma = True

    def vma_close(self) -> None:
        """binder_alloc_vma_close(): the area is gone; existing buffers stay until freed."""
        self._vma = False

    # ---- allocation ---------------------------------------------------------------------------

    def _debug_low_async_space(self, pid: int) -> bool:
        """debug_low_async_space_locked(): log a oneway spammer; true the first time only."""
        total_alloc_size = 0
        num_buffers = 0
        for buffer in self._allocated.values():
            if buffer.pid != pid or not buffer.async_transaction:
                continue
            total_alloc_size += self._buffer_size(buffer)
            num_buffers += 1
        if num_buffers > 50 or total_alloc_size > self.buffer_size // 4:
            self.log.alloc_debug(
                AllocDebug.USER_ERROR,
                "%d: pid %d spamming oneway? %d buffers allocated for a total size of %d",
                self.pid, pid, num_buffers, total_alloc_size)
            if not self.oneway_spam_detected:
                self.oneway_spam_detected = True
                return True
        return False

    def _log_no_space(self, size: int) -> None:
        """The two USER_ERROR lines of a failed best fit."""
        allocated_buffers = largest_alloc_size = total_alloc_size = 0
        free_buffers = largest_free_size = total_free_size = 0
        for buffer in self._buffers():
            buffer_size = self._buffer_size(buffer)
            if buffer.free:
                free_buffers += 1
                total_free_size += buffer_size
                largest_free_size = max(largest_free_size, buffer_size)
            else:
                allocated_buffers += 1
                total_alloc_size += buffer_size
                largest_alloc_size = max(largest_alloc_size, buffer_size)
        self.log.alloc_debug(AllocDebug.USER_ERROR,
                             "%d: binder_alloc_buf size %d failed, no address space", self.pid, size)
        self.log.alloc_debug(
            AllocDebug.USER_ERROR,
            "allocated: %d (num: %d largest: %d), free: %d (num: %d largest: %d)",
            total_alloc_size, allocated_buffers, largest_alloc_size,
            total_free_size, free_buffers, largest_free_size)

    def new_buf(self, data_size: int, offsets_size: int, extra_buffers_size: int,
                is_async: bool, pid: int) -> Buffer:
        """binder_alloc_new_buf(): best fit for the three sizes, each rounded up to 8 bytes.

        Raises BinderError ESRCH (no vma), EINVAL (sizes overflow) or ENOSPC (no async space, no
        address space). The buffer comes back with allow_user_free False and zeroed ``data``.
        """
        size = self._buffer_size_for(data_size, offsets_size, extra_buffers_size, is_async)
        buffer, buffer_size = self._best_fit(size)
        start = buffer.user_data
        log = self.log
        if log.alloc_debug_mask & AllocDebug.BUFFER_ALLOC:
            log.alloc_debug(AllocDebug.BUFFER_ALLOC, "%d: binder_alloc_buf size %d got buffer %s size %d",
                            self.pid, size, self._kptr(buffer), buffer_size)
        has_page_addr = (start + buffer_size) & PAGE_MASK
        split = buffer_size != size
        span = size  # what of the buffer gets pages
        if split and self.header:
            # 3.x: the rest becomes a free buffer only with room for its header and 4 bytes;
            # its header's bytes are part of what needs pages.
            split = size + self.header + 4 < buffer_size
            span = size + self.header if split else size
        end_page_addr = _page_align(start + span)
        if end_page_addr > has_page_addr:
            end_page_addr = has_page_addr
        self._update_page_range(True, _page_align(start), end_page_addr)
        if split:
            self._split_free(buffer, size)
        out = self._take_free(buffer)
        if log.alloc_debug_mask & AllocDebug.BUFFER_ALLOC:
            log.alloc_debug(AllocDebug.BUFFER_ALLOC, "%d: binder_alloc_buf size %d got %s",
                            self.pid, size, self._kptr(out))
        out.data_size = data_size
        out.offsets_size = offsets_size
        out.async_transaction = is_async
        out.extra_buffers_size = extra_buffers_size
        out.pid = pid
        out.data = bytearray(size)
        if is_async:
            self._charge_async(out, size, pid)
        return out

    def _buffer_size_for(self, data_size: int, offsets_size: int, extra_buffers_size: int, is_async: bool) -> int:
        """The size a new buffer takes, checked as binder_alloc_new_buf_locked checks it."""
        log = self.log
        if not self._vma:
            if self.header:  # 3.x: printk(KERN_ERR ...), whatever the mask
                log.printk(KERN_ERR, f"binder: {self.pid}: binder_alloc_buf, no vma")
            else:
                log.alloc_debug(AllocDebug.USER_ERROR, "%d: binder_alloc_buf, no vma", self.pid)
            raise BinderError(errno.ESRCH, "no vma")
        data_offsets_size = size_t(_align(data_size) + _align(offsets_size))
        if data_offsets_size < data_size or data_offsets_size < offsets_size:
            log.alloc_debug(AllocDebug.BUFFER_ALLOC, "%d: got transaction with invalid size %d-%d",
                            self.pid, zd(data_size), zd(offsets_size))
            raise BinderError(errno.EINVAL, "invalid size")
        size = size_t(data_offsets_size + _align(extra_buffers_size))
        if size < data_offsets_size or size < extra_buffers_size:
            log.alloc_debug(AllocDebug.BUFFER_ALLOC,
                            "%d: got transaction with invalid extra_buffers_size %d",
                            self.pid, zd(extra_buffers_size))
            raise BinderError(errno.EINVAL, "invalid extra_buffers_size")
        if not self.header:  # (3.x did not pad them)
            # Pad 0-size buffers so they get assigned unique addresses.
            size = max(size, _PTR)
        if is_async and self.free_async_space < size + self.header:
            log.alloc_debug(AllocDebug.BUFFER_ALLOC,
                            "%d: binder_alloc_buf size %d failed, no async space left",
                            self.pid, size)
            raise BinderError(errno.ENOSPC, "no async space left")
        return size

    def _best_fit(self, size: int) -> tuple[Buffer, int]:
        """The free buffer to take and its size: the walk of binder_alloc_new_buf_locked,
        stopping at an exact match."""
        n = self._free.rb_node
        best_fit: Buffer | None = None
        buffer_size = 0
        while n is not None:
            buffer_size = self._buffer_size(n)
            if size < buffer_size:
                best_fit = n
                n = n._rb_left
            elif size > buffer_size:
                n = n._rb_right
            else:
                best_fit = n
                break
        if best_fit is None:
            self._log_no_space(size)
            raise BinderError(errno.ENOSPC, "no address space")
        if n is None:
            buffer_size = self._buffer_size(best_fit)
        return best_fit, buffer_size

    def _split_free(self, buffer: Buffer, size: int) -> None:
        """The rest of a free buffer after its first ``size`` bytes: a free buffer of its own."""
        new_buffer = Buffer(buffer.user_data + size + self.header)
        # list_add(&new_buffer->entry, &buffer->entry)
        new_buffer._prev = buffer
        new_buffer._next = buffer._next
        if buffer._next is not None:
            buffer._next._prev = new_buffer
        buffer._next = new_buffer
        self._insert_free_buffer(new_buffer)

    def _take_free(self, buffer: Buffer) -> Buffer:
        """The free ``buffer`` becomes allocated. The kernel reuses the free buffer's struct; a
        fresh object takes its place in the list instead, so that nothing still holding a freed
        Buffer sees it come back to life."""
        _rb_erase(buffer, self._free)
        start = buffer.user_data
        out = Buffer(start, free=False)
        out._prev = buffer._prev
        out._next = buffer._next
        if out._prev is None:
            self._first = out
        else:
            out._prev._next = out
        if out._next is not None:
            out._next._prev = out
        buffer._prev = buffer._next = None
        self._allocated[start] = out
        return out

    def _charge_async(self, buffer: Buffer, size: int, pid: int) -> None:
        """An async buffer comes out of the async space; with little left, its sender is checked
        for oneway spam."""
        self.free_async_space -= size + self.header  # 3.x: the header too
        self.log.alloc_debug(AllocDebug.BUFFER_ALLOC_ASYNC, "%d: binder_alloc_buf size %d async free %d",
                             self.pid, size, self.free_async_space)
        if self.header:
            return  # 3.x detected no oneway spam
        if self.free_async_space < self.buffer_size // 10:
            # Start detecting spammers once less than 20% of async space is left.
            buffer.oneway_spam_suspect = self._debug_low_async_space(pid)
        else:
            self.oneway_spam_detected = False

    # ---- freeing ------------------------------------------------------------------------------

    def prepare_to_free(self, user_ptr: int) -> Buffer | None:
        """binder_alloc_prepare_to_free(): the allocated buffer starting at ``user_ptr``, or None.

        Raises BinderError EPERM (6.1's ERR_PTR(-EPERM)) when that buffer is not user-freeable
        (not yet delivered, or already being freed). On success allow_user_free becomes False.
        """
        buffer = self._allocated.get(user_ptr)
        if buffer is None:
            return None
        if not buffer.allow_user_free:
            raise BinderError(errno.EPERM, "matched unreturned or currently freeing buffer")
        buffer.allow_user_free = False
        return buffer

    def _delete_free_buffer(self, buffer: Buffer) -> None:
        """binder_delete_free_buffer(): unlink a free buffer merged into its (free) predecessor."""
        prev = buffer._prev
        if prev is None or not prev.free:
            raise AssertionError("BUG_ON: binder_delete_free_buffer without a free prev")
        if self.header:
            self._delete_free_buffer_3x(buffer, prev)
            return
        start_page = buffer.user_data & PAGE_MASK
        shares_prev = (prev.user_data - 1) & PAGE_MASK == start_page  # prev_buffer_end_page(prev)
        nxt = buffer._next
        shares_next = nxt is not None and nxt.user_data & PAGE_MASK == start_page
        aligned = buffer.user_data % PAGE_SIZE == 0
        to_free = not (shares_prev or shares_next or aligned)
        if self.log.alloc_debug_mask & AllocDebug.BUFFER_ALLOC:
            self._log_merge(buffer, prev, nxt, shares_prev, shares_next, aligned)
        if to_free:
            self._update_page_range(False, start_page, start_page + PAGE_SIZE)
        # list_del
        prev._next = nxt
        if nxt is not None:
            nxt._prev = prev
        buffer._prev = buffer._next = None

    def _delete_free_buffer_3x(self, buffer: Buffer, prev: Buffer) -> None:
        """3.x's binder_delete_free_buffer: the pages of the merged buffer's header go unless its
        neighbours' headers share them (buffer_start_page and buffer_end_page of the headers)."""
        log = self.log
        header = buffer.user_data - self.header
        start_page = header & PAGE_MASK
        end_page = (header + self.header - 1) & PAGE_MASK
        prev_end_page = (prev.user_data - 1) & PAGE_MASK
        free_start = free_end = True
        show = log.alloc_debug_mask & AllocDebug.BUFFER_ALLOC
        if prev_end_page == start_page:
            free_start = False
            if prev_end_page == end_page:
                free_end = False
            if show:
                log.printk(KERN_INFO, f"binder: {self.pid}: merge free, buffer {self._kptr(buffer)} "
                           f"share page with {self._kptr(prev)}")
        nxt = buffer._next
        if nxt is not None:
            next_start_page = (nxt.user_data - self.header) & PAGE_MASK
            if next_start_page == end_page:
                free_end = False
                if next_start_page == start_page:
                    free_start = False
                if show:  # (3.x names prev here too)
                    log.printk(KERN_INFO, f"binder: {self.pid}: merge free, buffer {self._kptr(buffer)} "
                               f"share page with {self._kptr(prev)}")
        prev._next = nxt  # list_del
        if nxt is not None:
            nxt._prev = prev
        buffer._prev = buffer._next = None
        if free_start or free_end:
            if show:
                log.printk(KERN_INFO, f"binder: {self.pid}: merge free, buffer {self._kptr(buffer)} do not "
                           f"share page{'' if free_start else ' end'}{'' if free_end else ' start'} with with "
                           f"{self._kptr(prev)} or {self._kptr(nxt) if nxt is not None else NULL_PTR}")
            self._update_page_range(False, start_page if free_start else end_page,
                                    (end_page if free_end else start_page) + PAGE_SIZE)

    def _log_merge(self, buffer: Buffer, prev: Buffer, nxt: Buffer | None, shares_prev: bool,
                   shares_next: bool, aligned: bool) -> None:
        """binder_delete_free_buffer's BUFFER_ALLOC lines."""
        log = self.log
        this = self._uptr(buffer.user_data)
        if shares_prev:
            log.alloc_debug(AllocDebug.BUFFER_ALLOC, "%d: merge free, buffer %s share page with %s",
                            self.pid, this, self._uptr(prev.user_data))
        if shares_next and nxt is not None:
            log.alloc_debug(AllocDebug.BUFFER_ALLOC, "%d: merge free, buffer %s share page with %s",
                            self.pid, this, self._uptr(nxt.user_data))
        if aligned:
            log.alloc_debug(AllocDebug.BUFFER_ALLOC, "%d: merge free, buffer start %s is page aligned",
                            self.pid, this)
        if not (shares_prev or shares_next or aligned):
            log.alloc_debug(AllocDebug.BUFFER_ALLOC,
                            "%d: merge free, buffer %s do not share page with %s or %s",
                            self.pid, this, self._uptr(prev.user_data),
                            self._uptr(nxt.user_data if nxt is not None else 0))

    def _free_buf_locked(self, buffer: Buffer) -> None:
        """binder_free_buf_locked(): give the chunk back, merge with free neighbours."""
        if self._allocated.get(buffer.user_data) is not buffer:
            raise AssertionError("BUG_ON(buffer->free): not an allocated buffer of this area")
        if buffer.transaction is not None:
            raise AssertionError("BUG_ON(buffer->transaction != NULL)")
        buffer_size = self._buffer_size(buffer)
        size = _align(buffer.data_size) + _align(buffer.offsets_size) + _align(buffer.extra_buffers_size)
        if self.log.alloc_debug_mask & AllocDebug.BUFFER_ALLOC:
            self.log.alloc_debug(AllocDebug.BUFFER_ALLOC, "%d: binder_free_buf %s size %d buffer_size %d",
                                 self.pid, self._kptr(buffer), size, buffer_size)
        if buffer.async_transaction:
            self.free_async_space += size + self.header if self.header else buffer_size
            self.log.alloc_debug(AllocDebug.BUFFER_ALLOC_ASYNC,
                                 "%d: binder_free_buf size %d async free %d",
                                 self.pid, size, self.free_async_space)
        self._update_page_range(False, _page_align(buffer.user_data),
                                (buffer.user_data + buffer_size) & PAGE_MASK)
        del self._allocated[buffer.user_data]
        buffer.free = True
        buffer.data = bytearray()
        nxt = buffer._next
        if nxt is not None and nxt.free:
            _rb_erase(nxt, self._free)
            self._delete_free_buffer(nxt)
        prev = buffer._prev
        if prev is not None and prev.free:
            self._delete_free_buffer(buffer)
            _rb_erase(prev, self._free)
            buffer = prev
        self._insert_free_buffer(buffer)

    def _clear_buf(self, buffer: Buffer) -> None:
        """binder_alloc_clear_buf(): zero the whole chunk."""
        buffer.data[:] = bytes(len(buffer.data))

    def free_buf(self, buffer: Buffer) -> None:
        """binder_alloc_free_buf(): free an allocated buffer (zeroed first if clear_on_free)."""
        if buffer.clear_on_free:
            self._clear_buf(buffer)
            buffer.clear_on_free = False
        self._free_buf_locked(buffer)

    def deferred_release(self) -> tuple[int, int]:
        """binder_alloc_deferred_release(): free every buffer and page; (buffers, pages) freed."""
        self._vma = False  # 6.1 has BUG_ON(alloc->vma): the area is always gone by now
        buffers = 0
        for addr in sorted(self._allocated):  # rb_first, again and again
            buffer = self._allocated[addr]
            if buffer.transaction is not None:
                raise AssertionError("BUG_ON(buffer->transaction): transaction should be freed")
            if buffer.clear_on_free:
                self._clear_buf(buffer)
                buffer.clear_on_free = False
            self._free_buf_locked(buffer)
            buffers += 1
        b = self._first
        while b is not None:
            nxt = b._next
            b._prev = b._next = b._rb_parent = b._rb_left = b._rb_right = None
            b = nxt
        self._first = None
        self._free.rb_node = None
        page_count = 0
        for i, state in enumerate(self._pages):
            if state == PAGE_FREE:
                continue
            if not self.log.alloc_debug_mask & AllocDebug.BUFFER_ALLOC:
                pass
            elif self.header:  # 3.x: binder_deferred_release's line
                self.log.printk(KERN_INFO, f"binder_release: {self.pid}: page {i} at "
                                f"{self._uptr(self.vm_start + i * PAGE_SIZE)} not freed")
            else:
                self.log.alloc_debug(AllocDebug.BUFFER_ALLOC, "%s: %d: page %d at %s %s",
                                     "binder_alloc_deferred_release", self.pid, i,
                                     self._uptr(self.vm_start + i * PAGE_SIZE),
                                     "on lru" if state == PAGE_LRU else "active")
            page_count += 1
        self._pages = bytearray()
        self.log.alloc_debug(AllocDebug.OPEN_CLOSE, "%s: %d buffers %d, pages %d",
                             "binder_alloc_deferred_release", self.pid, buffers, page_count)
        return buffers, page_count

    # ---- access -------------------------------------------------------------------------------

    def buffer_at(self, user_ptr: int) -> Buffer | None:
        """The allocated buffer that starts exactly at ``user_ptr``, if any."""
        return self._allocated.get(user_ptr)

    def _check_buffer(self, buffer: Buffer, offset: int, n: int) -> None:
        """check_buffer(): in bounds, u32-aligned offset, allocated, not user-freeable in use."""
        buffer_size = self._buffer_size(buffer)
        if not (buffer_size >= n and 0 <= offset <= buffer_size - n and offset % 4 == 0
                and not buffer.free and (not buffer.allow_user_free or buffer.transaction is None)):
            raise BinderError(errno.EINVAL, "bad buffer access")

    def copy_to_buffer(self, buffer: Buffer, offset: int, data: bytes) -> None:
        """binder_alloc_copy_to_buffer(): write ``data`` at ``offset``; EINVAL if check_buffer fails."""
        n = len(data)
        self._check_buffer(buffer, offset, n)
        buffer.data[offset:offset + n] = data

    def copy_from_buffer(self, buffer: Buffer, offset: int, n: int) -> bytes:
        """binder_alloc_copy_from_buffer(): ``n`` bytes at ``offset``; EINVAL if check_buffer fails."""
        self._check_buffer(buffer, offset, n)
        return bytes(buffer.data[offset:offset + n])

    # ---- debugfs / stats ----------------------------------------------------------------------

    def allocated_buffers(self) -> list[Buffer]:
        """The allocated buffers by address (binder_alloc_print_allocated's order)."""
        return [b for b in self._buffers() if not b.free]

    def count_allocated(self) -> int:
        """binder_alloc_get_allocated_count()."""
        return len(self._allocated)

    def page_counts(self) -> tuple[int, int, int]:
        """(active, lru, free) as binder_alloc_print_pages counts them: all 0 without a vma."""
        if not self._vma:
            return 0, 0, 0
        pages = self._pages
        return pages.count(PAGE_ACTIVE), pages.count(PAGE_LRU), pages.count(PAGE_FREE)

    def get_free_async_space(self) -> int:
        """binder_alloc_get_free_async_space()."""
        return self.free_async_space
