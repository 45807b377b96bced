"""The request slot's half in the sans-IO core (docs/abi-slot.md): DeviceFile.slot_request runs a
request as its pwrite would, once per number; the read that follows is a pread at pos 0, and a
reply longer than the pread stays whole and unread until the I/O layer has put it in the slot."""

from __future__ import annotations

import errno

import pytest

from vbinder import abi, uapi
from vbinder.driver import BinderError, DeviceFile, WouldBlock

from .harness import Client, cmd, make_driver, parse_brs
from .test_chained import setup

READ = 256


def test_a_request_runs_once_per_number() -> None:
    d = make_driver()
    c = Client(d, 1)
    file = c.file
    assert isinstance(file, DeviceFile)
    frame = abi.encode_request(uapi.BINDER_VERSION, bytes(4))
    assert file.slot_request(1, 7, frame) is True  # ran, its reply produced (no read phase)
    got = file.read(abi.key(1), 4096)
    assert isinstance(got, bytes) and abi.decode_reply(got).code == 0
    assert file.slot_request(1, 7, frame) is False  # number 7 ran: nothing runs
    with pytest.raises(BinderError) as e:  # a read at pos 0 with nothing in flight and no earlier read
        file.read(abi.key(1), 4096)
    assert e.value.errno == errno.ENOMSG
    assert file.slot_request(1, 8, frame) is True  # a new number runs
    assert isinstance(file.read(abi.key(1), 4096), bytes)


def test_a_refused_request_runs_nothing() -> None:
    d = make_driver()
    c = Client(d, 1)
    with pytest.raises(BinderError) as e:
        c.file.slot_request(1, 1, b"VBQ1" + bytes(40))
    assert e.value.errno == errno.EINVAL
    frame = abi.encode_request(uapi.BINDER_VERSION, bytes(4))
    assert c.file.slot_request(1, 1, frame) is True  # number 1 was not taken by the refused request


def test_the_same_number_again_continues_a_waiting_read_phase() -> None:
    """The retry of a slot pread after EINTR: the call is not sent twice, and its reply comes."""
    server, caller, looper = setup()
    key = abi.key(caller.pid)
    raddr = 0x0F00_0000 + caller.pid * 0x1000
    write = caller.bc_transaction(0, 1, b"ping")
    waddr = caller.put(write)
    arg = uapi.WRITE_READ.pack(len(write), 0, waddr, READ, 0, raddr)
    frame = abi.encode_request(uapi.BINDER_WRITE_READ, arg, caller.pending)
    caller.pending = []
    assert caller.file.slot_request(caller.pid, 5, frame) is False  # ran; its read phase is to come
    wb = caller.file.read(key, READ, 1 << 20)
    assert isinstance(wb, WouldBlock)
    assert caller.file.abandon(key, wb.waiter) is None  # EINTR: the read phase stays in flight
    assert caller.file.slot_request(caller.pid, 5, frame) is False  # the retry: not run again
    wb = caller.file.read(key, READ, 1 << 20)
    assert isinstance(wb, WouldBlock)
    srv = server.finish(looper)
    assert [b.name for b in srv.brs].count("BR_TRANSACTION") == 1
    tr = next(b for b in srv.brs if b.cmd == uapi.BR_TRANSACTION).tr
    server.write_read(cmd(uapi.BC_FREE_BUFFER, tr[8], fmt="Q") + server.bc_transaction(0, 0, b"pong", reply=True), 0)
    got = caller.file.resume(key, READ, wb.waiter)
    assert isinstance(got, bytes)
    f = abi.decode_reply(got)
    data = next(seg for addr, seg in f.segments if addr == raddr)
    assert [b.name for b in parse_brs(data)] == ["BR_NOOP", "BR_TRANSACTION_COMPLETE", "BR_REPLY"]


def test_a_long_reply_stays_whole_until_consumed() -> None:
    """A read phase whose reply is longer than the pread returns it whole, unread, while the slot
    request's ``whole`` allows; once consumed it is gone. Past ``whole``, version 1's chunks."""
    for whole in (1 << 20, 1024):
        server, caller, looper = setup()
        del looper
        key = abi.key(server.pid)
        big = bytes(range(256)) * 64  # 16 KiB
        with pytest.raises(WouldBlock):
            caller.write_read(caller.bc_transaction(0, 1, big))
        raddr = 0x0F00_0000 + server.pid * 0x1000  # a new read-only request replaces the looper's wait
        server.request(uapi.BINDER_WRITE_READ, uapi.WRITE_READ.pack(0, 0, 0, READ, 0, raddr))
        got = server.file.read(key, READ, whole)
        assert isinstance(got, bytes)
        total = abi.reply_total(got)
        assert total > 16384
        if whole >= total:
            assert len(got) == total  # whole, and still unread
            assert server.file.read(key + READ, READ) == got[READ:2 * READ]
            server.file.consume(server.pid)
            with pytest.raises(BinderError):  # consumed: nothing is left to read
                server.file.read(key + READ, READ)
        else:
            assert len(got) == READ  # version 1: the first READ bytes, the rest at key + pos
            rest = server.file.read(key + READ, total)
            assert isinstance(rest, bytes) and len(got + rest) == total
