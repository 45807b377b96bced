"""Freeze, scatter-gather buffers, security contexts, TF_UPDATE_TXN and refused fds (6.1 binder.c;
fds that go through: test_fds.py)."""

from __future__ import annotations

import errno
import struct

import pytest

from vbinder import uapi
from vbinder.driver import WouldBlock

from .harness import Client, cmd, make_driver
from .test_core import server_client

FREEZE = uapi.FREEZE_INFO
FROZEN = uapi.FROZEN_STATUS_INFO


def frozen_info(c: Client, pid: int) -> tuple[int, int, int]:
    f = c.ioctl(uapi.BINDER_GET_FROZEN_INFO, FROZEN.pack(pid, 0, 0))
    assert f.code == 0
    return FROZEN.unpack(f.arg)


def test_frozen_target_sync_is_frozen_reply_and_oneway_waits() -> None:
    # binder_proc_transaction: frozen + sync -> BR_FROZEN_REPLY (sync_recv); async is queued (async_recv).
    d, server, client = server_client()
    assert client.ioctl(uapi.BINDER_FREEZE, FREEZE.pack(100, 1, 0)).code == 0
    r = client.write_read(client.bc_transaction(0, 1, b"abcd"), 256)
    assert r.names == ["BR_NOOP", "BR_FROZEN_REPLY"]
    r = client.write_read(client.bc_transaction(0, 2, b"abcd", flags=uapi.TF_ONE_WAY), 256)
    assert r.names == ["BR_NOOP", "BR_TRANSACTION_COMPLETE"]
    # bit 1 of sync_recv: transactions pending (the queued one-way counts as outstanding)
    assert frozen_info(client, 100) == (100, 0b11, 1)
    assert client.ioctl(uapi.BINDER_FREEZE, FREEZE.pack(100, 0, 0)).code == 0
    r = server.write_read(b"", 256)
    assert r.names == ["BR_NOOP", "BR_TRANSACTION"] and r.brs[1].tr[2] == 2
    assert client.ioctl(uapi.BINDER_FREEZE, FREEZE.pack(4242, 1, 0)).code == -errno.EINVAL
    assert client.ioctl(uapi.BINDER_GET_FROZEN_INFO, FROZEN.pack(4242, 0, 0)).code == -errno.EINVAL


def test_freeze_waits_for_transactions_to_drain() -> None:
    # binder_ioctl_freeze: frozen at once, then waits (DESIGN.md: the wait is the pread's).
    d, server, client = server_client()
    with pytest.raises(WouldBlock) as cw:
        client.write_read(client.bc_transaction(0, 1, b"abcd"), 256)
    r = server.write_read(b"", 256)
    tr = r.brs[1].tr
    ctl = Client(d, 300)
    ctl.request(uapi.BINDER_FREEZE, FREEZE.pack(100, 1, 5000))
    with pytest.raises(WouldBlock) as fw:
        ctl.reply()
    assert fw.value.deadline is not None
    assert server.file.proc.is_frozen
    server.write_read(cmd(uapi.BC_FREE_BUFFER, tr[8], fmt="Q") + server.bc_transaction(0, 0, b"", reply=True), 256)
    assert ctl.resume(fw.value).code == 0
    assert server.file.proc.is_frozen
    assert client.finish(cw.value).names[-1] == "BR_REPLY"


def test_freeze_times_out_with_eagain_and_unfreezes() -> None:
    d, server, client = server_client()
    with pytest.raises(WouldBlock):
        client.write_read(client.bc_transaction(0, 1, b"abcd"), 256)
    server.write_read(b"", 256)  # the call is now on the server's stack
    ctl = Client(d, 300)
    ctl.request(uapi.BINDER_FREEZE, FREEZE.pack(100, 1, 10))
    with pytest.raises(WouldBlock) as fw:
        ctl.reply()
    d.log.clock.t += 1.0  # type: ignore[attr-defined]  # past the deadline
    assert ctl.resume(fw.value).code == -errno.EAGAIN
    assert not server.file.proc.is_frozen


def test_scatter_gather_buffers_are_copied_and_fixed_up() -> None:
    # binder_transaction BINDER_TYPE_PTR, binder_fixup_parent, binder_do_deferred_txn_copies.
    d, server, client = server_client()
    child_data = b"child-bytes-0123"
    child_addr = client.put(child_data)
    parent_data = struct.pack("<QQ", child_addr, 0xAAAA)  # a pointer to the child, then a word
    parent_addr = client.put(parent_data)
    parent = uapi.BUFFER_OBJECT.pack(uapi.BINDER_TYPE_PTR, 0, parent_addr, len(parent_data), 0, 0)
    child = uapi.BUFFER_OBJECT.pack(uapi.BINDER_TYPE_PTR, uapi.BINDER_BUFFER_FLAG_HAS_PARENT, child_addr,
                                    len(child_data), 0, 0)
    # binder_validate_fixup refuses a parent at offset 0 ("nothing to fix up in"): start at 8
    data = b"\0" * 8 + parent + child
    daddr = client.put(data)
    oaddr = client.put(struct.pack("<QQ", 8, 48))
    extra = 16 + 16
    tr = uapi.TRANSACTION_DATA.pack(0, 0, 9, uapi.TF_ONE_WAY, 0, 0, len(data), 16, daddr, oaddr)
    r = client.write_read(cmd(uapi.BC_TRANSACTION_SG) + tr + struct.pack("<Q", extra), 256)
    assert r.names == ["BR_NOOP", "BR_TRANSACTION_COMPLETE"], d.log.ring
    r = server.write_read(b"", 256)
    btr = r.brs[1].tr
    base = btr[8]
    got = server.payload(r.brs[1])
    p = uapi.BUFFER_OBJECT.unpack(got[8:48])
    c = uapi.BUFFER_OBJECT.unpack(got[48:88])
    sg_start = base + 88 + 16  # data (88) | offsets (16) | SG buffers
    assert p[2] == sg_start and c[2] == sg_start + 16
    whole = server.read_mem(base, 88 + 16 + extra)
    assert whole[104:112] == struct.pack("<Q", c[2])  # the parent's pointer now points at the child copy
    assert whole[112:120] == struct.pack("<Q", 0xAAAA)
    assert whole[120:136] == child_data


def test_sg_buffer_too_large_is_failed_reply() -> None:
    d, server, client = server_client()
    addr = client.put(b"x" * 64)
    obj = uapi.BUFFER_OBJECT.pack(uapi.BINDER_TYPE_PTR, 0, addr, 64, 0, 0)
    daddr = client.put(obj)
    oaddr = client.put(struct.pack("<Q", 0))
    tr = uapi.TRANSACTION_DATA.pack(0, 0, 9, 0, 0, 0, 40, 8, daddr, oaddr)
    r = client.write_read(cmd(uapi.BC_TRANSACTION_SG) + tr + struct.pack("<Q", 32), 256)
    assert r.names == ["BR_NOOP", "BR_FAILED_REPLY"]
    assert any("got transaction with too large buffer" in line for _s, line in d.log.ring)


def test_security_context_is_delivered_when_the_node_asks() -> None:
    d = make_driver()
    server = Client(d, 100)
    server.mmap()
    fbo = uapi.FLAT_BINDER_OBJECT.pack(uapi.BINDER_TYPE_BINDER, uapi.FLAT_BINDER_FLAG_TXN_SECURITY_CTX, 0, 0)
    assert server.ioctl(uapi.BINDER_SET_CONTEXT_MGR_EXT, fbo).code == 0
    client = Client(d, 200)
    client.file.proc.secctx = b"unconfined\0"
    client.mmap()
    client.write_read(client.bc_transaction(0, 1, b"abcd", flags=uapi.TF_ONE_WAY), 256)
    r = server.write_read(cmd(uapi.BC_ENTER_LOOPER), 256)
    assert r.names == ["BR_NOOP", "BR_TRANSACTION_SEC_CTX"]
    secctx = struct.unpack_from("<Q", r.brs[1].payload, 64)[0]
    assert server.read_mem(secctx, 11) == b"unconfined\0"
    # no LSM context: the kernel's security_secid_to_secctx fails -> BR_FAILED_REPLY
    other = Client(d, 300)
    other.mmap()
    r = other.write_read(other.bc_transaction(0, 1, b"abcd"), 256)
    assert r.names == ["BR_NOOP", "BR_FAILED_REPLY"]


def test_update_txn_supersedes_a_queued_oneway_to_a_frozen_target() -> None:
    # binder_proc_transaction with TF_UPDATE_TXN: the older queued txn is dropped.
    d, server, client = server_client()
    assert client.ioctl(uapi.BINDER_FREEZE, FREEZE.pack(100, 1, 0)).code == 0
    flags = uapi.TF_ONE_WAY | uapi.TF_UPDATE_TXN
    for payload in (b"one!", b"two!", b"three"):
        client.write_read(client.bc_transaction(0, 5, payload, flags=flags), 256)
    assert client.ioctl(uapi.BINDER_FREEZE, FREEZE.pack(100, 0, 0)).code == 0
    r = server.write_read(b"", 256)
    assert server.payload(r.brs[1]) == b"one!"  # the first went to proc->todo, not async_todo
    server.write_read(cmd(uapi.BC_FREE_BUFFER, r.brs[1].tr[8], fmt="Q"), 0)
    r = server.write_read(b"", 256)
    assert server.payload(r.brs[1]) == b"three"
    assert any("supersedes" in line for _s, line in d.log.ring) is False  # TRANSACTION mask is off


def test_fd_to_a_node_that_takes_none_is_eperm() -> None:
    # binder_translate_fd checks the target's accept_fds first (tests/conformance raw_fd_refused).
    d, server, client = server_client()
    obj = uapi.FD_OBJECT.pack(uapi.BINDER_TYPE_FD, 0, 5, 0)
    r = client.write_read(client.bc_transaction(0, 1, obj, objects=(0,)), 256)
    assert r.names == ["BR_NOOP", "BR_FAILED_REPLY"]
    f = client.ioctl(uapi.BINDER_GET_EXTENDED_ERROR, b"\0" * 12)
    assert uapi.EXTENDED_ERROR.unpack(f.arg)[1:] == (uapi.BR_FAILED_REPLY, -errno.EPERM)
    assert any("200:200 got transaction with fd, 5, but target does not allow fds" in line
               for _s, line in d.log.ring)
