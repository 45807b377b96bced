"""The client's FDA bookkeeping (client/fd_channel.py): when the driver frees a buffer, another
thread may already hold a new buffer at the same address; freeing closes the old delivery's fds
only (as 6.1 closes them inside BC_FREE_BUFFER, before the address can be reused)."""

from __future__ import annotations

import array
import os
import socket
import struct

from vbinder_client.fd_channel import FdChannel

from vbinder import fdabi, uapi

BUFFER = 0x7000_0000_1000


def deliver(daemon: socket.socket, tag: int, fd: int) -> bytes:
    """Send one fd as delivery ``tag``; the fixup segment that names it, as an FDA entry at BUFFER."""
    record = fdabi.DELIVER.pack(fdabi.DELIVER_MAGIC, fdabi.DELIVER_LAST, tag, 0, 1)
    daemon.sendmsg([record], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [fd]))])
    return fdabi.encode_fixups(tag, [(BUFFER + 8, fdabi.KIND_FDA)])


def is_open(fd: int) -> bool:
    try:
        os.fstat(fd)
        return True
    except OSError:
        return False


def test_freeing_a_reused_address_closes_the_old_deliverys_fds_only() -> None:
    mine, daemon = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    ch = FdChannel(mine)
    r1, w1 = os.pipe()
    r2, w2 = os.pipe()
    try:
        buffers = {BUFFER: bytes(16)}
        got1 = ch.apply(deliver(daemon, 1, r1), buffers)  # thread A's buffer at BUFFER
        fd1 = struct.unpack_from("<i", got1[BUFFER], 8)[0]
        got2 = ch.apply(deliver(daemon, 2, r2), buffers)  # thread B's, after the driver freed A's
        fd2 = struct.unpack_from("<i", got2[BUFFER], 8)[0]
        assert fd1 != fd2 and is_open(fd1) and is_open(fd2)
        free = struct.pack("<IQ", uapi.BC_FREE_BUFFER, BUFFER)
        ch.freed(free)  # A's BC_FREE_BUFFER, noted after B's delivery
        assert not is_open(fd1) and is_open(fd2)
        ch.freed(free)  # B's
        assert not is_open(fd2)
        assert ch.fda == {}
    finally:
        for fd in (r1, w1, r2, w2):
            os.close(fd)
        ch.close()
        daemon.close()
