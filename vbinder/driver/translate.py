"""A transaction's buffer: copied from its sender, its objects translated, and released (6.1).

:func:`copy_buffer` is the copying part of binder_transaction: the sender's data and offsets go
into the buffer allocated in the target's mapped area, and each object the offsets name is
translated by the step for its type (binder_translate_binder, _handle, the scatter-gather
buffers of BINDER_TYPE_PTR, the file descriptors of BINDER_TYPE_FD/FDA); a failed check raises
:class:`.errors.TransactionError` where it fails. :func:`transaction_buffer_release` undoes
what the translation took, object by object, when the buffer is freed or the transaction
fails; :func:`free_buf` is BC_FREE_BUFFER's.
"""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING, Final

from .. import uapi
from ..abi import UserMemory
from ..uapi import (
    BINDER_BUFFER_FLAG_HAS_PARENT,
    BINDER_TYPE_BINDER,
    BINDER_TYPE_FD,
    BINDER_TYPE_FDA,
    BINDER_TYPE_HANDLE,
    BINDER_TYPE_PTR,
    BINDER_TYPE_WEAK_BINDER,
    BINDER_TYPE_WEAK_HANDLE,
    BR_FAILED_REPLY,
)
from . import locks
from .errors import TransactionError
from .fds import KIND_FD, release_fd_array, translate_fd, translate_fd_array
from .locks import NODE_LOCK, NODE_UNLOCK, PROC_LOCK, PROC_UNLOCK, SPIN, spin
from .log import KERN_INFO, Debug
from .node import (
    dec_node,
    dec_node_tmpref,
    get_node,
    get_ref,
    inc_node,
    inc_ref_for_node,
    new_node,
    update_ref_for_handle,
)
from .texts_3_4 import NULL_PTR
from .trace import (
    M_BUFFER_RELEASE,
    M_NODE_TO_REF,
    M_REF_TO_NODE,
    M_REF_TO_REF,
    TP_BUFFER_RELEASE,
    TP_NODE_TO_REF,
    TP_REF_TO_NODE,
    TP_REF_TO_REF,
    Tracer,
)

if TYPE_CHECKING:
    from .alloc import Buffer
    from .process import Proc
    from .thread import Thread
    from .transaction import Sending, Transaction

FBO: Final = uapi.FLAT_BINDER_OBJECT
BUFFER_OBJECT: Final = uapi.BUFFER_OBJECT
FD_OBJECT: Final = uapi.FD_OBJECT
FD_ARRAY_OBJECT: Final = uapi.FD_ARRAY_OBJECT
_OBJECT_SIZES: Final = {
    BINDER_TYPE_BINDER: 24, BINDER_TYPE_WEAK_BINDER: 24,
    BINDER_TYPE_HANDLE: 24, BINDER_TYPE_WEAK_HANDLE: 24,
    BINDER_TYPE_FD: 24, BINDER_TYPE_PTR: 40, BINDER_TYPE_FDA: 32,
}


def align8(n: int) -> int:
    """ALIGN(n, sizeof(u64))."""
    return (n + 7) & ~7


# -- objects --------------------------------------------------------------------------------------


def _object(raw: bytes, offset: int, data_size: int) -> bytes:
    """binder_get_object's checks on ``raw`` (what could be read at ``offset`` of the data, at
    most 40 bytes): the object, or b"" when none fits there."""
    size = _OBJECT_SIZES.get(int.from_bytes(raw[:4], "little"), 0)
    if not size or offset > data_size - size or data_size < size:
        return b""
    return raw[:size]


def get_object(proc: Proc, buffer: Buffer, offset: int) -> bytes:
    """binder_get_object: the object at ``offset`` of a buffer (b"" when there is none)."""
    data_size = buffer.data_size
    read_size = min(40, data_size - offset)
    if offset > data_size or read_size < 4 or offset % 4:
        return b""
    raw = proc.alloc.copy_from_buffer(buffer, offset, read_size)
    if len(raw) < read_size:
        return b""
    return _object(raw, offset, data_size)


def _user_object(mem: UserMemory, data_ptr: int, offset: int, data_size: int) -> bytes:
    """binder_get_object on the sender's data (read from its memory): the object, or b""."""
    if offset > data_size:
        return b""
    read_size = min(40, data_size - offset)
    if read_size < 4 or offset % 4:
        return b""
    raw = mem.read(data_ptr + offset, read_size)
    return b"" if raw is None else _object(raw, offset, data_size)


# -- copying ----------------------------------------------------------------------------------------


class _Scatter:
    """The scatter-gather state of a transaction with BINDER_TYPE_PTR objects: where the next
    buffer goes, the copies to make once all objects are translated (binder_sg_copy: offset,
    sender address, length), the parent pointers to patch in them (binder_ptr_fixup, sorted by
    offset: offset, value, skip), and the last buffer object, which later fixups must belong to."""

    __slots__ = ("offset", "end", "copies", "fixups", "last_obj_offset", "last_min_offset")

    def __init__(self, offset: int, end: int) -> None:
        self.offset = offset
        self.end = end
        self.copies: list[tuple[int, int, int]] = []
        self.fixups: list[tuple[int, int, int]] = []
        self.last_obj_offset = 0
        self.last_min_offset = 0


def copy_buffer(s: Sending, t: Transaction, tr: tuple[int, ...], extra_buffers_size: int, secctx_size: int,
                mem: UserMemory) -> None:
    """Copy the sender's data and offsets into ``t``'s buffer and translate each object.

    A failed check raises :class:`TransactionError`; ``s.offsets_done`` then says how far the
    objects were translated (what the failure must release).
    """
    proc, thread = s.proc, s.thread
    log = proc.log
    buf, target_proc = t.buffer, t.to_proc
    assert buf is not None and target_proc is not None
    data_size, offsets_size, data_ptr, offsets_ptr = tr[6], tr[7], tr[8], tr[9]
    off_start = align8(data_size)
    offsets = mem.read(offsets_ptr, offsets_size)
    if offsets is None:
        log.user_error("%d:%d got transaction with invalid offsets ptr", proc.pid, thread.pid)
        raise TransactionError(BR_FAILED_REPLY, -errno.EFAULT)
    target_proc.alloc.copy_to_buffer(buf, off_start, offsets)
    if offsets_size % 8:
        log.user_error("%d:%d got transaction with invalid offsets size, %d", proc.pid, thread.pid, offsets_size)
        raise TransactionError(BR_FAILED_REPLY, -errno.EINVAL)
    if extra_buffers_size % 8:
        log.user_error("%d:%d got transaction with unaligned buffers size, %d",
                       proc.pid, thread.pid, extra_buffers_size)
        raise TransactionError(BR_FAILED_REPLY, -errno.EINVAL)
    s.offsets_done = off_start
    sg: _Scatter | None = None
    user_offset = 0  # what of the data is copied
    if offsets_size:
        sg_start = align8(off_start + offsets_size)
        sg = _Scatter(sg_start, sg_start + extra_buffers_size - secctx_size)
        user_offset = _copy_objects(s, t, sg, offsets, off_start, data_ptr, data_size, mem)
    _copy_data(s, buf, mem, data_ptr, user_offset, data_size, data_size)
    if sg is not None and not _do_deferred_txn_copies(target_proc, buf, sg, mem):
        # binder_do_deferred_txn_copies turns a failed copy_from_user into -EINVAL (oracle: a
        # scatter-gather buffer in unmapped memory, tests/preload bad_input)
        log.user_error("%d:%d got transaction with invalid offsets ptr", proc.pid, thread.pid)
        raise TransactionError(BR_FAILED_REPLY, -errno.EINVAL)


def _copy_objects(s: Sending, t: Transaction, sg: _Scatter, offsets: bytes, off_start: int, data_ptr: int,
                  data_size: int, mem: UserMemory) -> int:
    """Each object the offsets name, translated, and the data before it copied: how far the data
    is copied (the end of the last object)."""
    buf = t.buffer
    assert buf is not None
    user_offset = 0
    off_min = 0  # where the next object may start
    for index in range(len(offsets) // 8):
        object_offset = int.from_bytes(offsets[8 * index:8 * index + 8], "little")
        if object_offset != user_offset:
            _copy_data(s, buf, mem, data_ptr, user_offset, object_offset, data_size)
        raw = _user_object(mem, data_ptr, object_offset, data_size)
        if not raw or object_offset < off_min:
            s.proc.log.user_error("%d:%d got transaction with invalid offset (%d, min %d max %d) or object.",
                                  s.proc.pid, s.thread.pid, object_offset, off_min, data_size)
            raise TransactionError(BR_FAILED_REPLY, -errno.EINVAL)
        user_offset = off_min = object_offset + len(raw)
        _translate_object(s, t, sg, object_offset, raw, index, off_start, mem, data_ptr, data_size)
        s.offsets_done = off_start + 8 * index + 8
    return user_offset


def _copy_data(s: Sending, buf: Buffer, mem: UserMemory, data_ptr: int, start: int, end: int,
               data_size: int) -> None:
    """Copy the sender's data from ``start`` to ``end`` (the bytes up to an object, or the rest)."""
    chunk = mem.read(data_ptr + start, end - start) if start <= end <= data_size else None
    if chunk is None:
        s.proc.log.user_error("%d:%d got transaction with invalid data ptr", s.proc.pid, s.thread.pid)
        raise TransactionError(BR_FAILED_REPLY, -errno.EFAULT)
    buf_proc = s.target_proc
    assert buf_proc is not None
    buf_proc.alloc.copy_to_buffer(buf, start, chunk)


def _translate_object(s: Sending, t: Transaction, sg: _Scatter, offset: int, raw: bytes, index: int,
                      off_start: int, mem: UserMemory, data_ptr: int, data_size: int) -> None:
    """The object ``raw`` at ``offset`` of the data (``index`` in the offsets array), by its type."""
    otype = int.from_bytes(raw[:4], "little")
    if otype == BINDER_TYPE_BINDER or otype == BINDER_TYPE_WEAK_BINDER:
        _binder_object(s, t, offset, raw)
    elif otype == BINDER_TYPE_HANDLE or otype == BINDER_TYPE_WEAK_HANDLE:
        _handle_object(s, t, offset, raw)
    elif otype == BINDER_TYPE_PTR and s.proc.profile.newer_uapi:
        _ptr_object(s, t, sg, offset, raw, index, off_start)
    elif otype == BINDER_TYPE_FD:
        _fd_object(s, t, offset, raw)
    elif otype == BINDER_TYPE_FDA and s.proc.profile.newer_uapi:
        _fda_object(s, t, sg, offset, raw, index, off_start, mem, data_ptr, data_size)
    else:  # (3.x knew no BINDER_TYPE_PTR or _FDA)
        s.proc.log.user_error("%d:%d got transaction with invalid object type, %x", s.proc.pid, s.thread.pid, otype)
        raise TransactionError(BR_FAILED_REPLY, -errno.EINVAL)


def _translate_failed(s: Sending, what: str, ret: int) -> TransactionError:
    s.proc.log.debug(Debug.FAILED_TRANSACTION, "%d:%d translate %s failed", s.thread.pid, s.proc.pid, what)
    return TransactionError(BR_FAILED_REPLY, ret)


# -- one step per object type -------------------------------------------------------------------


def _binder_object(s: Sending, t: Transaction, offset: int, raw: bytes) -> None:
    """BINDER_TYPE_BINDER, _WEAK_BINDER: the sender's own object, a handle in the target."""
    obj = list(FBO.unpack(raw))
    ret = translate_binder(obj, t, s.thread)
    if ret < 0:
        raise _translate_failed(s, "binder", ret)
    _put(t, offset, FBO.pack(*obj))


def _handle_object(s: Sending, t: Transaction, offset: int, raw: bytes) -> None:
    """BINDER_TYPE_HANDLE, _WEAK_HANDLE: a handle, the target's own object or a handle of its own."""
    obj = list(FBO.unpack(raw))
    ret = translate_handle(obj, t, s.thread)
    if ret < 0:
        raise _translate_failed(s, "handle", ret)
    _put(t, offset, FBO.pack(*obj))


def _ptr_object(s: Sending, t: Transaction, sg: _Scatter, offset: int, raw: bytes, index: int,
                off_start: int) -> None:
    """BINDER_TYPE_PTR: a scatter-gather buffer, copied after the offsets; its pointer (and its
    parent's pointer to it) point into the target's copy."""
    buf = t.buffer
    assert buf is not None
    bp = list(BUFFER_OBJECT.unpack(raw))  # type, flags, buffer, length, parent, parent_offset
    if bp[3] > sg.end - sg.offset:
        s.proc.log.user_error("%d:%d got transaction with too large buffer", s.proc.pid, s.thread.pid)
        raise TransactionError(BR_FAILED_REPLY, -errno.EINVAL)
    sg.copies.append((sg.offset, bp[2], bp[3]))
    bp[2] = buf.user_data + sg.offset
    sg.offset += align8(bp[3])
    ret = _fixup_parent(sg, t, s.thread, bp, off_start, index)
    if ret < 0:
        s.proc.log.debug(Debug.FAILED_TRANSACTION, "%d:%d failed to fixup parent", s.thread.pid, s.proc.pid)
        raise TransactionError(BR_FAILED_REPLY, ret)
    _put(t, offset, BUFFER_OBJECT.pack(*bp))
    sg.last_obj_offset = offset
    sg.last_min_offset = 0


def _fd_object(s: Sending, t: Transaction, offset: int, raw: bytes) -> None:
    """BINDER_TYPE_FD: the sender's fd becomes a file the transaction carries (binder_translate_fd);
    the object keeps its flags and cookie, and 0 where the receiver's fd number goes at delivery."""
    fp = list(FD_OBJECT.unpack(raw))  # type, pad_flags, pad_binder (the fd), cookie
    ret = translate_fd(fp[2] & 0xFFFFFFFF, offset + 8, t, s.thread, s.in_reply_to, KIND_FD)
    fp[2] = 0  # fp->pad_binder = 0
    if ret < 0:
        raise _translate_failed(s, "fd", ret)
    _put(t, offset, FD_OBJECT.pack(*fp))


def _fda_object(s: Sending, t: Transaction, sg: _Scatter, offset: int, raw: bytes, index: int, off_start: int,
                mem: UserMemory, data_ptr: int, data_size: int) -> None:
    """BINDER_TYPE_FDA: an array of fds in a scatter-gather buffer before it (its parent); each
    becomes a file the transaction carries (binder_translate_fd_array), and the array's place in
    the target's copy is left for the receiver's fd numbers."""
    proc, thread = s.proc, s.thread
    log = proc.log
    buf, target_proc = t.buffer, t.to_proc
    assert buf is not None and target_proc is not None
    fda = FD_ARRAY_OBJECT.unpack(raw)  # type, pad, num_fds, parent, parent_offset
    found = _validate_ptr(target_proc, buf, fda[3], off_start, index)
    if found is None:
        log.user_error("%d:%d got transaction with invalid parent offset or type", proc.pid, thread.pid)
        raise TransactionError(BR_FAILED_REPLY, -errno.EINVAL)
    parent, parent_offset = found
    if not _validate_fixup(target_proc, buf, off_start, parent_offset, fda[4], sg.last_obj_offset,
                           sg.last_min_offset):
        log.user_error("%d:%d got transaction with out-of-order buffer fixup", proc.pid, thread.pid)
        raise TransactionError(BR_FAILED_REPLY, -errno.EINVAL)
    # the sender's own copy of the parent object: its buffer pointer is where the fds are
    user_parent = _user_object(mem, data_ptr, parent_offset, data_size)
    if len(user_parent) != BUFFER_OBJECT.size:
        log.user_error("%d:%d invalid ptr object size: %d vs %d", proc.pid, thread.pid, len(user_parent),
                       BUFFER_OBJECT.size)
        raise TransactionError(BR_FAILED_REPLY, -errno.EINVAL)
    ret = translate_fd_array(sg.fixups, fda, BUFFER_OBJECT.unpack(user_parent), parent, t, thread, s.in_reply_to,
                             mem)
    if ret:
        raise _translate_failed(s, "fd array", ret)
    _put(t, offset, raw)
    sg.last_obj_offset = parent_offset
    sg.last_min_offset = fda[4] + 4 * fda[2]


def _put(t: Transaction, offset: int, obj: bytes) -> None:
    """The translated object into the target's buffer."""
    target_proc, buf = t.to_proc, t.buffer
    assert target_proc is not None and buf is not None
    target_proc.alloc.copy_to_buffer(buf, offset, obj)


def translate_binder(obj: list[int], t: Transaction, thread: Thread) -> int:
    """binder_translate_binder: a sender's own object becomes a handle in the target."""
    proc = thread.proc
    target_proc = t.to_proc
    assert target_proc is not None
    otype, flags, ptr, cookie = obj
    node = get_node(proc, ptr)
    if node is None:
        node = new_node(proc, ptr, cookie, flags, thread.pid)
    try:
        if cookie != node.cookie:
            proc.log.user_error("%d:%d sending u%016x node %d, cookie mismatch %016x != %016x",
                                proc.pid, thread.pid, ptr, node.debug_id, cookie, node.cookie)
            return -errno.EINVAL
        ret, ref = inc_ref_for_node(target_proc, node, otype == BINDER_TYPE_BINDER, thread)
        if ret:
            return ret
        assert ref is not None
        obj[0] = BINDER_TYPE_HANDLE if otype == BINDER_TYPE_BINDER else BINDER_TYPE_WEAK_HANDLE
        obj[2] = ref.desc
        obj[3] = 0
        if proc.trace.mask & M_NODE_TO_REF:
            proc.trace.emit(TP_NODE_TO_REF, (t.debug_id, node.debug_id, node.ptr, ref.debug_id, ref.desc))
        proc.log.debug(Debug.TRANSACTION, "        node %d u%016x -> ref %d desc %d",
                       node.debug_id, node.ptr, ref.debug_id, ref.desc)
        return 0
    finally:
        dec_node_tmpref(node)


def translate_handle(obj: list[int], t: Transaction, thread: Thread) -> int:
    """binder_translate_handle: a handle becomes the target's own object or its own handle."""
    proc = thread.proc
    target_proc = t.to_proc
    otype, _flags, handle, _cookie = obj
    handle &= 0xFFFFFFFF
    log = proc.log
    spinlocks = log.debug_mask & SPIN
    if spinlocks:
        spin(log, PROC_LOCK, 1253)  # binder_get_node_from_ref
    src = get_ref(proc, handle, otype == BINDER_TYPE_HANDLE)
    if src is None:
        if spinlocks:
            spin(log, PROC_UNLOCK, 1270)
        log.user_error("%d:%d got transaction with invalid handle, %d", proc.pid, thread.pid, handle)
        return -errno.EINVAL
    node = src.node
    node.tmp_refs += 1
    if spinlocks:
        locks.inc_node_tmpref(log, node)
        spin(log, PROC_UNLOCK, 1265)
        spin(log, NODE_LOCK, 2221)
    try:
        if node.proc is target_proc:
            strong = otype == BINDER_TYPE_HANDLE
            obj[0] = BINDER_TYPE_BINDER if strong else BINDER_TYPE_WEAK_BINDER
            obj[2] = node.ptr
            obj[3] = node.cookie
            if spinlocks:
                locks.inner(log, 2230, 2237)
            inc_node(node, strong, False, None)
            if proc.trace.mask & M_REF_TO_NODE:
                proc.trace.emit(TP_REF_TO_NODE, (t.debug_id, src.debug_id, src.desc, node.debug_id, node.ptr))
            log.debug(Debug.TRANSACTION, "        ref %d desc %d -> node %d u%016x",
                      src.debug_id, src.desc, node.debug_id, node.ptr)
            if spinlocks:
                spin(log, NODE_UNLOCK, 2245)
        else:
            assert target_proc is not None
            if spinlocks:
                spin(log, NODE_UNLOCK, 2249)
            ret, dest = inc_ref_for_node(target_proc, node, otype == BINDER_TYPE_HANDLE, None)
            if ret:
                return ret
            assert dest is not None
            obj[2] = dest.desc
            obj[3] = 0
            if proc.trace.mask & M_REF_TO_REF:
                proc.trace.emit(TP_REF_TO_REF, (t.debug_id, node.debug_id, src.debug_id, src.desc,
                                                dest.debug_id, dest.desc))
            proc.log.debug(Debug.TRANSACTION, "        ref %d desc %d -> ref %d desc %d (node %d)",
                           src.debug_id, src.desc, dest.debug_id, dest.desc, node.debug_id)
        return 0
    finally:
        dec_node_tmpref(node)


# -- scatter-gather buffers -------------------------------------------------------------------------


def _validate_ptr(proc: Proc, buf: Buffer, index: int, start_offset: int,
                  num_valid: int) -> tuple[list[int], int] | None:
    """binder_validate_ptr: the PTR object at ``index`` of the offsets array, and its offset."""
    if index >= num_valid:
        return None
    object_offset = int.from_bytes(proc.alloc.copy_from_buffer(buf, start_offset + 8 * index, 8), "little")
    raw = get_object(proc, buf, object_offset)
    if not raw or int.from_bytes(raw[:4], "little") != BINDER_TYPE_PTR:
        return None
    return list(BUFFER_OBJECT.unpack(raw)), object_offset


def _validate_fixup(proc: Proc, buf: Buffer, objects_start: int, buffer_obj_offset: int, fixup_offset: int,
                    last_obj_offset: int, last_min_offset: int) -> bool:
    """binder_validate_fixup: fixups must go to the last buffer or its ancestors, in order."""
    if not last_obj_offset:
        return False
    while last_obj_offset != buffer_obj_offset:
        raw = get_object(proc, buf, last_obj_offset)
        if len(raw) != BUFFER_OBJECT.size:
            return False
        last_bbo = BUFFER_OBJECT.unpack(raw)
        if not last_bbo[1] & BINDER_BUFFER_FLAG_HAS_PARENT:
            return False
        last_min_offset = last_bbo[5] + 8
        last_obj_offset = int.from_bytes(
            proc.alloc.copy_from_buffer(buf, objects_start + 8 * last_bbo[4], 8), "little")
    return fixup_offset >= last_min_offset


def _add_fixup(fixups: list[tuple[int, int, int]], offset: int, fixup: int, skip: int) -> None:
    """binder_add_fixup: keep the list sorted by offset (a new equal offset goes first)."""
    i = len(fixups)
    while i > 0 and fixups[i - 1][0] >= offset:
        i -= 1
    fixups.insert(i, (offset, fixup, skip))


def _fixup_parent(sg: _Scatter, t: Transaction, thread: Thread, bp: list[int], off_start: int,
                  num_valid: int) -> int:
    """binder_fixup_parent: the parent buffer's pointer to this one is patched on copy."""
    if not bp[1] & BINDER_BUFFER_FLAG_HAS_PARENT:
        return 0
    proc = thread.proc
    target_proc = t.to_proc
    buf = t.buffer
    assert target_proc is not None and buf is not None
    found = _validate_ptr(target_proc, buf, bp[4], off_start, num_valid)
    if found is None:
        proc.log.user_error("%d:%d got transaction with invalid parent offset or type", proc.pid, thread.pid)
        return -errno.EINVAL
    parent, parent_offset = found
    if not _validate_fixup(target_proc, buf, off_start, parent_offset, bp[5], sg.last_obj_offset,
                           sg.last_min_offset):
        proc.log.user_error("%d:%d got transaction with out-of-order buffer fixup", proc.pid, thread.pid)
        return -errno.EINVAL
    if parent[3] < 8 or bp[5] > parent[3] - 8:
        proc.log.user_error("%d:%d got transaction with invalid parent offset", proc.pid, thread.pid)
        return -errno.EINVAL
    _add_fixup(sg.fixups, bp[5] + parent[2] - buf.user_data, bp[2], 0)
    return 0


def _do_deferred_txn_copies(proc: Proc, buf: Buffer, sg: _Scatter, mem: UserMemory) -> bool:
    """binder_do_deferred_txn_copies: copy the SG buffers, writing the pointer fixups in between."""
    fixups = sg.fixups
    ok = True
    pf = 0
    for offset0, uaddr, length in sg.copies:
        copied = 0
        while copied < length:
            left = length - copied
            offset = offset0 + copied
            copy_size = min(left, fixups[pf][0] - offset) if pf < len(fixups) else left
            if ok and copy_size:
                chunk = mem.read(uaddr + copied, copy_size)
                if chunk is None:
                    ok = False
                else:
                    proc.alloc.copy_to_buffer(buf, offset, chunk)
            copied += copy_size
            if copy_size != left:
                f_offset, f_data, f_skip = fixups[pf]
                if f_skip:
                    copied += f_skip
                else:
                    if ok:
                        proc.alloc.copy_to_buffer(buf, f_offset, uapi.U64.pack(f_data))
                    copied += 8
                pf += 1
    return ok


# -- release ----------------------------------------------------------------------------------------


def transaction_buffer_release(proc: Proc, buffer: Buffer, off_end_offset: int, is_failure: bool,
                               thread: Thread | None = None) -> None:
    """binder_transaction_buffer_release: drop what the buffer's objects hold, up to the offsets
    array's ``off_end_offset`` (``is_failure``: of a transaction never delivered, where the
    translation stopped; ``thread``: the one freeing it)."""
    log = proc.log
    if log.debug_mask & Debug.TRANSACTION:
        if proc.profile.texts is not None:  # 3.x: failed_at is a pointer into the buffer, or NULL
            at = f"{buffer.user_data + off_end_offset:016x}" if is_failure else NULL_PTR
            log.printk(KERN_INFO, f"binder: {proc.pid} buffer release {buffer.debug_id}, size {buffer.data_size}-"
                       f"{buffer.offsets_size}, failed at {at}")
        else:
            log.debug(Debug.TRANSACTION, "%d buffer release %d, size %d-%d, failed at %x",
                      proc.pid, buffer.debug_id, buffer.data_size, buffer.offsets_size, off_end_offset)
    if buffer.target_node is not None:
        dec_node(buffer.target_node, True, False)
    for boff in range(align8(buffer.data_size), off_end_offset, 8):
        object_offset = int.from_bytes(proc.alloc.copy_from_buffer(buffer, boff, 8), "little")
        obj = get_object(proc, buffer, object_offset)
        if not obj:
            log.err("transaction release %d bad object at offset %d, size %d",
                    buffer.debug_id, object_offset, buffer.data_size)
            continue
        otype, _flags, value, _cookie = FBO.unpack_from(obj)
        if otype == BINDER_TYPE_BINDER or otype == BINDER_TYPE_WEAK_BINDER:
            _release_binder(proc, buffer, otype, value)
        elif otype == BINDER_TYPE_HANDLE or otype == BINDER_TYPE_WEAK_HANDLE:
            _release_handle(proc, buffer, otype, value & 0xFFFFFFFF)
        elif otype == BINDER_TYPE_FDA:
            if not is_failure:  # (a failed one was never delivered: no fd of the receiver's to close)
                _release_fd_array(proc, buffer, obj, (boff - align8(buffer.data_size)) // 8, thread)
        elif otype == BINDER_TYPE_FD or otype == BINDER_TYPE_PTR:
            pass  # the receiver owns its fds (an undelivered one's went with its transaction); PTR holds nothing
        else:
            log.err("transaction release %d bad object type %x", buffer.debug_id, otype)


def _release_fd_array(proc: Proc, buffer: Buffer, obj: bytes, num_valid: int, thread: Thread | None) -> None:
    """The fds of a delivered array: closed by its receiver (:func:`.fds.release_fd_array`)."""
    fda = FD_ARRAY_OBJECT.unpack(obj)
    found = _validate_ptr(proc, buffer, fda[3], align8(buffer.data_size), num_valid)
    release_fd_array(proc, buffer, fda, thread, found[0] if found is not None else None)


def _release_binder(proc: Proc, buffer: Buffer, otype: int, ptr: int) -> None:
    """The reference a translated BINDER object took on the sender's node."""
    node = get_node(proc, ptr)
    if node is None:
        proc.log.err("transaction release %d bad node %016x", buffer.debug_id, ptr)
        return
    proc.log.debug(Debug.TRANSACTION, "        node %d u%016x", node.debug_id, node.ptr)
    dec_node(node, otype == BINDER_TYPE_BINDER, False)
    dec_node_tmpref(node)


def _release_handle(proc: Proc, buffer: Buffer, otype: int, handle: int) -> None:
    """The reference a translated HANDLE object took for the target."""
    ret, ref = update_ref_for_handle(proc, handle, False, otype == BINDER_TYPE_HANDLE)
    if ret or ref is None:
        proc.log.err("transaction release %d bad handle %d, ret = %d", buffer.debug_id, handle, ret)
        return
    log = proc.log
    if log.debug_mask & Debug.TRANSACTION:
        if proc.profile.texts is not None:  # 3.x named the node too
            log.printk(KERN_INFO, f"        ref {ref.debug_id} desc {ref.desc} (node {ref.node.debug_id})")
        else:
            log.debug(Debug.TRANSACTION, "        ref %d desc %d", ref.debug_id, ref.desc)


def release_entire_buffer(proc: Proc, buffer: Buffer, is_failure: bool, thread: Thread | None = None) -> None:
    """binder_release_entire_buffer."""
    transaction_buffer_release(proc, buffer, align8(buffer.data_size) + buffer.offsets_size, is_failure, thread)


def free_buf(proc: Proc, buffer: Buffer, thread: Thread | None = None, is_failure: bool = False) -> None:
    """binder_free_buf: release the buffer; a freed one-way buffer lets the node's next one run
    (queued for the proc; 3.x queued it on the freeing thread's own todo, where a thread in a
    call of its own reads it before its reply: the seeds' nested sync-in-async crash).
    ``thread``: the one freeing it; ``is_failure``: of a transaction that was not delivered."""
    log = proc.log
    if log.debug_mask & SPIN:
        locks.inner(log, 3771, 3776)
    if buffer.transaction is not None:
        buffer.transaction.buffer = None
        buffer.transaction = None
    node = buffer.target_node
    if buffer.async_transaction and node is not None:
        if log.debug_mask & SPIN:
            locks.node_inner_lock(log, node, 3782)
        assert node.has_async_transaction
        w = node.async_todo.pop()
        if w is None:
            node.has_async_transaction = False
        elif proc.profile.async_to_thread and thread is not None:
            thread.enqueue_work(w)
        else:
            proc.todo.enqueue(w)
            proc.wakeup_proc()
        if log.debug_mask & SPIN:
            locks.node_inner_unlock(log, node, 3794)
    if proc.trace.mask & M_BUFFER_RELEASE:
        trace_buffer(proc.trace, TP_BUFFER_RELEASE, buffer)
    release_entire_buffer(proc, buffer, is_failure, thread)
    proc.alloc.free_buf(buffer)


def trace_buffer(tp: Tracer, ev: int, buffer: Buffer) -> None:
    """The binder_buffer_class events."""
    tp.emit(ev, (buffer.debug_id, buffer.data_size, buffer.offsets_size, buffer.extra_buffers_size))
