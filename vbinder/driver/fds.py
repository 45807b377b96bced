"""Files in transactions: BINDER_TYPE_FD and BINDER_TYPE_FDA (6.1's fd fixups).

A sender's fd becomes a *fixup*: the file (taken from the sender through the host, as 6.1's
``fget``) and the offset in the target's buffer where the receiver's fd number goes. The files
travel with the transaction and are handed to the receiving process when it reads it
(``binder_apply_fd_fixups``); the host then says where each fd number goes in the reply's fixup
segment, and the receiver writes them there (docs/abi-fds.md). A transaction that dies first
closes its files (``binder_free_txn_fixups``). The core never sees an fd: files are the host's
numbers.
"""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING, Final

from .. import fdabi, uapi
from ..abi import UserMemory
from .log import Debug
from .trace import M_FD_SEND, TP_FD_SEND

if TYPE_CHECKING:
    from .alloc import Buffer
    from .process import Proc
    from .thread import Thread
    from .transaction import Transaction

KIND_FD: Final = fdabi.KIND_FD
KIND_FDA: Final = fdabi.KIND_FDA
_SIZE_MAX_FDS: Final = ((1 << 64) - 1) // 4  # SIZE_MAX / sizeof(u32)
_U64: Final = (1 << 64) - 1


def _s32(v: int) -> int:
    """A u32 printed with %d."""
    return v - (1 << 32) if v & 0x8000_0000 else v


def _s64(v: int) -> int:
    """A u64 printed with %lld."""
    return v - (1 << 64) if v & (1 << 63) else v


class FdFixup:
    """struct binder_txn_fd_fixup: a file and where its fd number goes in the buffer."""

    __slots__ = ("offset", "file", "kind")

    def __init__(self, offset: int, file: int, kind: int) -> None:
        self.offset = offset
        self.file = file
        self.kind = kind  # KIND_FD (the receiver owns it) or KIND_FDA (closed with its buffer)


def translate_fd(fd: int, fd_offset: int, t: Transaction, thread: Thread, in_reply_to: Transaction | None,
                 kind: int) -> int:
    """binder_translate_fd: 0, or -errno (-EPERM: the target takes no fds; -EBADF: not the
    sender's fd; -EOPNOTSUPP: the sender has no fd channel; -EMFILE: too many files held)."""
    proc = thread.proc
    if in_reply_to is not None:
        allows = bool(in_reply_to.flags & uapi.TF_ACCEPT_FDS)
    else:
        node = t.buffer.target_node if t.buffer is not None else None
        allows = node is not None and node.accept_fds
    if not allows:
        proc.log.user_error("%d:%d got %s with fd, %d, but target does not allow fds", proc.pid, thread.pid,
                            "reply" if in_reply_to is not None else "transaction", _s32(fd))
        return -errno.EPERM
    host = proc.driver.host
    file = host.take_file(proc, thread.pid, fd) if host is not None else -errno.EOPNOTSUPP
    if file < 0:
        if file == -errno.EBADF:
            proc.log.user_error("%d:%d got transaction with invalid fd, %d", proc.pid, thread.pid, _s32(fd))
        elif file == -errno.EOPNOTSUPP:
            proc.log.user_error("%d:%d vbinder: got transaction with fd, %d, without an fd channel",
                                proc.pid, thread.pid, _s32(fd))
        return file
    t.fd_fixups.append(FdFixup(fd_offset, file, kind))
    if proc.trace.mask & M_FD_SEND:
        proc.trace.emit(TP_FD_SEND, (t.debug_id, _s32(fd), fd_offset))
    return 0


def translate_fd_array(sg_fixups: list[tuple[int, int, int]], fda: tuple[int, ...], sender_parent: tuple[int, ...],
                       parent: list[int], t: Transaction, thread: Thread, in_reply_to: Transaction | None,
                       mem: UserMemory) -> int:
    """binder_translate_fd_array: each fd of the array (in the sender's copy of the parent
    buffer) becomes a fixup; the deferred copy of the parent skips the array. 0 or -errno."""
    proc = thread.proc
    _type, _pad, num_fds, _parent, parent_offset = fda
    if num_fds == 0:
        return 0
    if num_fds >= _SIZE_MAX_FDS:
        proc.log.user_error("%d:%d got transaction with invalid number of fds (%d)", proc.pid, thread.pid,
                            _s64(num_fds))
        return -errno.EINVAL
    fd_buf_size = 4 * num_fds
    length = parent[3]
    if fd_buf_size > length or parent_offset > length - fd_buf_size:
        proc.log.user_error("%d:%d not enough space to store %d fds in buffer", proc.pid, thread.pid,
                            _s64(num_fds))
        return -errno.EINVAL
    buf = t.buffer
    assert buf is not None
    fda_offset = (parent[2] - buf.user_data + parent_offset) & _U64
    sender_base = (sender_parent[2] + parent_offset) & _U64
    if fda_offset % 4 or sender_base % 4:
        proc.log.user_error("%d:%d parent offset not aligned correctly.", proc.pid, thread.pid)
        return -errno.EINVAL
    _add_skip(sg_fixups, fda_offset, fd_buf_size)
    for i in range(num_fds):
        raw = mem.read(sender_base + 4 * i, 4)
        if raw is None:
            return -errno.EINVAL  # copy_from_user failed (> 0): -EINVAL
        ret = translate_fd(int.from_bytes(raw, "little"), fda_offset + 4 * i, t, thread, in_reply_to, KIND_FDA)
        if ret:
            return ret
    return 0


def _add_skip(fixups: list[tuple[int, int, int]], offset: int, skip: int) -> None:
    """binder_add_fixup(pf_head, offset, 0, skip): the deferred copy skips the array."""
    i = len(fixups)
    while i > 0 and fixups[i - 1][0] >= offset:
        i -= 1
    fixups.insert(i, (offset, 0, skip))


def free_txn_fixups(t: Transaction) -> None:
    """binder_free_txn_fixups: the files of a transaction torn down before its receiver got them."""
    if not t.fd_fixups:
        return
    host = t.driver.host
    fixups, t.fd_fixups = t.fd_fixups, []
    if host is not None:
        for f in fixups:
            host.close_file(f.file)


def apply_fd_fixups(proc: Proc, thread: Thread, t: Transaction) -> tuple[int, bytes]:
    """binder_apply_fd_fixups, in the receiver's read: the files go to its process. (0, the
    reply's fixup segment), or (-ENOMEM, b"") when the process cannot take them (the files are
    closed, as 6.1's error path does)."""
    buf = t.buffer
    host = proc.driver.host
    assert buf is not None
    files = [f.file for f in t.fd_fixups]
    offsets = [f.offset for f in t.fd_fixups]
    tag = host.deliver_files(proc, thread.pid, files, t.debug_id, offsets) if host is not None else -errno.EMFILE
    if tag < 0:
        proc.log.debug(Debug.TRANSACTION, "failed fd fixup txn %d fd %d", t.debug_id, tag)
        free_txn_fixups(t)
        return -errno.ENOMEM, b""
    fixups, t.fd_fixups = t.fd_fixups, []
    return 0, fdabi.encode_fixups(tag, [(buf.user_data + f.offset, f.kind) for f in fixups])


def release_fd_array(proc: Proc, buffer: Buffer, fda: tuple[int, ...], thread: Thread | None,
                     parent: list[int] | None) -> None:
    """The BINDER_TYPE_FDA case of binder_transaction_buffer_release (a buffer freed after its
    delivery): 6.1 closes the receiver's fds of the array (binder_deferred_fd_close), which here
    the receiving client does when it frees the buffer (docs/abi-fds.md); the checks and their
    lines are the driver's, and the freeing thread returns to user space at once, as 6.1's does
    to run the deferred close."""
    log = proc.log
    if parent is None:
        log.err("transaction release %d bad parent offset", buffer.debug_id)
        return
    num_fds = fda[2]
    if num_fds >= _SIZE_MAX_FDS:
        log.err("transaction release %d invalid number of fds (%d)", buffer.debug_id, _s64(num_fds))
        return
    fd_buf_size = 4 * num_fds
    if fd_buf_size > parent[3] or fda[4] > parent[3] - fd_buf_size:
        log.err("transaction release %d not enough space for %d fds in buffer", buffer.debug_id, _s64(num_fds))
        return
    if num_fds and thread is not None:
        thread.looper_need_return = True
