"""BINDER_TYPE_FD and BINDER_TYPE_FDA on the core (6.1 binder.c: binder_translate_fd,
binder_translate_fd_array, binder_apply_fd_fixups, binder_free_txn_fixups, the FDA case of
binder_transaction_buffer_release), with the fake host standing in for the fd channel."""

from __future__ import annotations

import errno
import struct

import pytest

from vbinder import fdabi, uapi
from vbinder.driver import WouldBlock

from .harness import Client, FakeHost, WriteRead, cmd, make_driver

FD = uapi.FD_OBJECT
FDA = uapi.FD_ARRAY_OBJECT
BUF = uapi.BUFFER_OBJECT
TR = uapi.TRANSACTION_DATA
SERVER, CLIENT = 100, 200


def setup(accept_fds: bool = True):  # noqa: ANN201
    """A context manager (SERVER) whose node accepts fds or not, and a CLIENT."""
    d = make_driver()
    server = Client(d, SERVER)
    server.mmap()
    flags = uapi.FLAT_BINDER_FLAG_ACCEPTS_FDS if accept_fds else 0
    fbo = uapi.FLAT_BINDER_OBJECT.pack(uapi.BINDER_TYPE_BINDER, flags, 0, 0)
    assert server.ioctl(uapi.BINDER_SET_CONTEXT_MGR_EXT, fbo).code == 0
    assert server.write_read(cmd(uapi.BC_ENTER_LOOPER), 0).ret == 0
    client = Client(d, CLIENT)
    client.mmap()
    host = d.host
    assert isinstance(host, FakeHost)
    return d, host, server, client


def lines(d) -> list[str]:  # noqa: ANN001
    return [line.split("] ", 1)[1] for _s, line in d.log.ring]


def ee(c: Client) -> tuple[int, int]:
    return uapi.EXTENDED_ERROR.unpack(c.ioctl(uapi.BINDER_GET_EXTENDED_ERROR, b"\0" * 12).arg)[1:]


def fd_call(client: Client, fds: dict[int, str] | None, *objs: bytes, flags: int = uapi.TF_ACCEPT_FDS,
            head: bytes = b"HEAD", read_size: int = 256) -> WriteRead:
    data = head + b"".join(objs)
    offs = [len(head) + 24 * i for i in range(len(objs))]
    return client.write_read(client.bc_transaction(0, 1, data, objects=tuple(offs), flags=flags), read_size,
                             fds=fds)


def test_fd_is_taken_from_the_sender_and_delivered_with_a_fixup() -> None:
    d, host, server, client = setup()
    obj = FD.pack(uapi.BINDER_TYPE_FD, 0x7F, 5, 1)  # flags and cookie (take-ownership) pass through
    w = fd_call(client, {5: "pipe-w"}, obj, flags=uapi.TF_ACCEPT_FDS | uapi.TF_ONE_WAY)
    assert w.names == ["BR_NOOP", "BR_TRANSACTION_COMPLETE"]
    assert list(host.open_files.values()) == ["pipe-w"]  # held by the queued transaction
    r = server.write_read(b"", 256)
    assert r.names == ["BR_NOOP", "BR_TRANSACTION"]
    tr = r.brs[1].tr
    got = server.payload(r.brs[1])
    # 6.1 zeroes pad_binder; the fd number goes there at delivery (here, by the receiver)
    assert FD.unpack(got[4:28]) == (uapi.BINDER_TYPE_FD, 0x7F, 0, 1)
    fix = server.fixups(r.frame)
    assert fix is not None
    tag, entries = fix
    assert entries == [(tr[8] + 4 + 8, fdabi.KIND_FD)]
    assert host.delivered[tag] == (SERVER, ["pipe-w"])
    assert host.open_files == {}


def test_same_fd_twice_and_several_fds() -> None:
    d, host, server, client = setup()
    objs = [FD.pack(uapi.BINDER_TYPE_FD, 0, n, 0) for n in (5, 6, 5)]
    fd_call(client, {5: "a", 6: "b"}, *objs, flags=uapi.TF_ACCEPT_FDS | uapi.TF_ONE_WAY)
    r = server.write_read(b"", 256)
    fix = server.fixups(r.frame)
    assert fix is not None
    assert host.delivered[fix[0]] == (SERVER, ["a", "b", "a"])
    base = r.brs[1].tr[8]
    assert [a for a, _k in fix[1]] == [base + 4 + 8, base + 28 + 8, base + 52 + 8]


def test_target_without_accepts_fds_is_eperm_before_the_fd_is_taken() -> None:
    d, host, server, client = setup(accept_fds=False)
    w = fd_call(client, {5: "x"}, FD.pack(uapi.BINDER_TYPE_FD, 0, 5, 0))
    assert w.names == ["BR_NOOP", "BR_FAILED_REPLY"]
    assert ee(client) == (uapi.BR_FAILED_REPLY, -errno.EPERM)
    assert "binder: 200:200 got transaction with fd, 5, but target does not allow fds" in lines(d)
    assert "binder: 200:200 translate fd failed" in lines(d)
    assert host.open_files == {}
    entry = d.failed_transaction_log.ordered()[-1]
    assert (entry.return_error, entry.return_error_param, entry.from_proc) == (uapi.BR_FAILED_REPLY, -1, CLIENT)


def test_fd_not_staged_is_ebadf() -> None:
    d, host, server, client = setup()
    w = fd_call(client, {5: "x"}, FD.pack(uapi.BINDER_TYPE_FD, 0, 7, 0))
    assert w.names == ["BR_NOOP", "BR_FAILED_REPLY"]
    assert ee(client) == (uapi.BR_FAILED_REPLY, -errno.EBADF)
    assert "binder: 200:200 got transaction with invalid fd, 7" in lines(d)
    # a plain BINDER_WRITE_READ takes no staged fds at all
    w = fd_call(client, None, FD.pack(uapi.BINDER_TYPE_FD, 0, 5, 0))
    assert ee(client) == (uapi.BR_FAILED_REPLY, -errno.EBADF)


def test_a_sender_without_fd_channel_is_eopnotsupp() -> None:
    d, host, server, client = setup()
    host.channel_less.add(CLIENT)
    w = fd_call(client, None, FD.pack(uapi.BINDER_TYPE_FD, 0, 5, 0))
    assert w.names == ["BR_NOOP", "BR_FAILED_REPLY"]
    assert ee(client) == (uapi.BR_FAILED_REPLY, -errno.EOPNOTSUPP)
    assert "binder: 200:200 vbinder: got transaction with fd, 5, without an fd channel" in lines(d)


def test_files_taken_before_a_failure_are_closed() -> None:
    d, host, server, client = setup()
    w = fd_call(client, {5: "a"}, FD.pack(uapi.BINDER_TYPE_FD, 0, 5, 0), FD.pack(uapi.BINDER_TYPE_FD, 0, 9, 0))
    assert w.names == ["BR_NOOP", "BR_FAILED_REPLY"]
    assert host.open_files == {}


def test_reply_with_fd_to_a_call_without_accept_fds_is_eperm() -> None:
    d, host, server, client = setup()
    client.write_read(client.bc_transaction(0, 1, b"call", flags=0), 0)  # no TF_ACCEPT_FDS
    r = server.write_read(b"", 256)
    free = cmd(uapi.BC_FREE_BUFFER, r.brs[1].tr[8], fmt="Q")
    obj = FD.pack(uapi.BINDER_TYPE_FD, 0, 4, 0)
    w = server.write_read(free + server.bc_transaction(0, 0, obj, objects=(0,), reply=True), 256, fds={4: "r"})
    assert w.names == ["BR_NOOP", "BR_TRANSACTION_COMPLETE"]  # the replier gets no error
    assert "binder: 100:100 got reply with fd, 4, but target does not allow fds" in lines(d)
    c = client.write_read(b"", 256)
    assert c.names == ["BR_NOOP", "BR_TRANSACTION_COMPLETE", "BR_FAILED_REPLY"]
    assert ee(client) == (uapi.BR_FAILED_REPLY, -errno.EPERM)  # binder_set_txn_from_error
    assert host.open_files == {}


def sg_fda(client: Client, fds: list[int], parent_index: int = 0, parent_offset: int = 8,
           num_fds: int | None = None, parent_len: int | None = None) -> bytes:
    """A call with a PTR parent holding [u64 8 bytes, fds..., pad], and an FDA of it (as libhwbinder
    sends a native handle)."""
    body = b"HIDLHDR!" + struct.pack(f"<{len(fds)}i", *fds) + b"\0" * (8 - len(fds) * 4 % 8 if len(fds) % 2 else 0)
    pbuf = client.put(body)
    ptr = BUF.pack(uapi.BINDER_TYPE_PTR, 0, pbuf, parent_len if parent_len is not None else len(body), 0, 0)
    fda = FDA.pack(uapi.BINDER_TYPE_FDA, 0, len(fds) if num_fds is None else num_fds, parent_index, parent_offset)
    data = b"HEADHEAD" + ptr + fda
    daddr = client.put(data)
    oaddr = client.put(struct.pack("<QQ", 8, 48))
    tr = TR.pack(0, 0, 1, uapi.TF_ACCEPT_FDS | uapi.TF_ONE_WAY, 0, 0, len(data), 16, daddr, oaddr)
    return cmd(uapi.BC_TRANSACTION_SG) + tr + struct.pack("<Q", (len(body) + 7) & ~7)


def test_fd_array_in_a_scatter_gather_buffer() -> None:
    d, host, server, client = setup()
    w = client.write_read(sg_fda(client, [5, 6, 7]), 256, fds={5: "a", 6: "b", 7: "c"})
    assert w.names == ["BR_NOOP", "BR_TRANSACTION_COMPLETE"], lines(d)
    r = server.write_read(b"", 256)
    base = r.brs[1].tr[8]
    got = server.read_mem(base, 80 + 16 + 24)  # data | offsets | the parent's copy
    p = BUF.unpack(got[8:48])
    assert p[2] == base + 96
    assert FDA.unpack(got[48:80]) == (uapi.BINDER_TYPE_FDA, 0, 3, 0, 8)  # copied as it was
    assert got[96:104] == b"HIDLHDR!"
    assert got[104:116] == b"\0" * 12  # the array was skipped by the copy: the receiver writes it
    fix = server.fixups(r.frame)
    assert fix is not None
    assert fix[1] == [(p[2] + 8 + 4 * i, fdabi.KIND_FDA) for i in range(3)]
    assert host.delivered[fix[0]] == (SERVER, ["a", "b", "c"])
    # BC_FREE_BUFFER of it: 6.1 closes the fds (here, the client does) and the freeing thread
    # returns to user space at once to run the deferred close: its read does not wait
    f = server.write_read(cmd(uapi.BC_FREE_BUFFER, base, fmt="Q"), 256)
    assert f.names == ["BR_NOOP"]


def test_fd_array_failures() -> None:
    d, host, server, client = setup()
    cases = [
        (dict(parent_index=1), "got transaction with invalid parent offset or type"),  # itself: not a PTR
        (dict(num_fds=4), "not enough space to store 4 fds in buffer"),
        (dict(parent_offset=6), "parent offset not aligned correctly."),
    ]
    for kw, line in cases:
        mark = len(d.log.ring)
        w = client.write_read(sg_fda(client, [5, 6], **kw), 256, fds={5: "a", 6: "b"})
        assert w.names == ["BR_NOOP", "BR_FAILED_REPLY"], kw
        assert ee(client) == (uapi.BR_FAILED_REPLY, -errno.EINVAL), kw
        new = lines(d)[mark:]
        assert f"binder: 200:200 {line}" in new, (kw, new)
        assert host.open_files == {}, kw


def test_fds_the_receiver_cannot_take_fail_the_call() -> None:
    d, host, server, client = setup()
    host.refuse_delivery[SERVER] = -errno.EMFILE
    d.log.debug_mask |= 1 << 9  # TRANSACTION: "failed fd fixup"
    fd_call(client, {5: "a"}, FD.pack(uapi.BINDER_TYPE_FD, 0, 5, 0), read_size=0)
    with pytest.raises(WouldBlock):
        server.write_read(b"", 256)  # not delivered: the loop went on, found nothing, and waits
    new = lines(d)
    assert any("failed fd fixup txn" in line and line.endswith(f"fd {-errno.EMFILE}") for line in new)
    assert any("fd fixups failed 29201/-12, line" in line for line in new), new
    c = client.write_read(b"", 256)
    assert "BR_FAILED_REPLY" in c.names
    assert host.open_files == {}


def test_a_reply_whose_fds_cannot_be_taken_is_failed_reply_to_the_caller() -> None:
    d, host, server, client = setup()
    client.write_read(client.bc_transaction(0, 1, b"call", flags=uapi.TF_ACCEPT_FDS), 0)
    r = server.write_read(b"", 256)
    host.refuse_delivery[CLIENT] = -errno.EMFILE
    free = cmd(uapi.BC_FREE_BUFFER, r.brs[1].tr[8], fmt="Q")
    obj = FD.pack(uapi.BINDER_TYPE_FD, 0, 4, 0)
    w = server.write_read(free + server.bc_transaction(0, 0, obj, objects=(0,), reply=True), 256, fds={4: "r"})
    assert w.names == ["BR_NOOP", "BR_TRANSACTION_COMPLETE"]
    c = client.write_read(b"", 256)
    assert c.names == ["BR_NOOP", "BR_TRANSACTION_COMPLETE", "BR_FAILED_REPLY"]
    assert host.open_files == {}


def test_files_of_an_undelivered_transaction_are_closed_with_it() -> None:
    d, host, server, client = setup()
    fd_call(client, {5: "a"}, FD.pack(uapi.BINDER_TYPE_FD, 0, 5, 0), flags=uapi.TF_ACCEPT_FDS | uapi.TF_ONE_WAY)
    assert host.open_files
    server.file.release()  # binder_release: the queued one-way call is dropped
    assert host.open_files == {}


def test_fd_array_out_of_order() -> None:
    # binder_validate_fixup: the array's parent must be the last buffer or one of its ancestors
    d, host, server, client = setup()
    b0, b1 = client.put(b"A" * 16), client.put(b"B" * 16)
    data = (b"HEADHEAD" + BUF.pack(uapi.BINDER_TYPE_PTR, 0, b0, 16, 0, 0)
            + BUF.pack(uapi.BINDER_TYPE_PTR, 0, b1, 16, 0, 0) + FDA.pack(uapi.BINDER_TYPE_FDA, 0, 1, 0, 8))
    daddr = client.put(data)
    oaddr = client.put(struct.pack("<QQQ", 8, 48, 88))
    tr = TR.pack(0, 0, 1, uapi.TF_ACCEPT_FDS, 0, 0, len(data), 24, daddr, oaddr)
    w = client.write_read(cmd(uapi.BC_TRANSACTION_SG) + tr + struct.pack("<Q", 32), 256, fds={0x41414141: "a"})
    assert w.names == ["BR_NOOP", "BR_FAILED_REPLY"]
    assert ee(client) == (uapi.BR_FAILED_REPLY, -errno.EINVAL)
    assert "binder: 200:200 got transaction with out-of-order buffer fixup" in lines(d)


def test_fd_send_is_traced_as_6_1_traces_it() -> None:
    # trace_binder_transaction_fd_send(t, fd, fixup->offset), one per fd taken
    from vbinder.driver import trace as tr

    d, host, server, client = setup()
    d.trace.top.set_events((1 << tr.TP_FD_SEND) | (1 << tr.TP_IOCTL))
    fd_call(client, {5: "a", 6: "b"}, FD.pack(uapi.BINDER_TYPE_FD, 0, 5, 0), FD.pack(uapi.BINDER_TYPE_FD, 0, 6, 0),
            flags=uapi.TF_ACCEPT_FDS | uapi.TF_ONE_WAY)
    lines = [tr.format_line(r, d.trace.comms).split(": ", 1)[1] for r in d.trace.top.records()]
    debug_id = d.transaction_log.ordered()[-1].debug_id
    assert lines == [f"binder_ioctl: cmd=0x{uapi.BINDER_WRITE_READ:x} arg=0x0",  # VBINDER_WRITE_READ_FDS
                     f"binder_transaction_fd_send: transaction={debug_id} src_fd=5 offset=12",
                     f"binder_transaction_fd_send: transaction={debug_id} src_fd=6 offset=36"]
