"""The driver core with fake processes: calls, replies, objects, errors (no FUSE).

Expected BR sequences and counts are the oracle's (shared/oracle/README.md "Key facts" and
samples/stock/report.txt, 6.1 driver).
"""

from __future__ import annotations

import errno

import pytest

from vbinder import abi, uapi
from vbinder.driver import WouldBlock

from .harness import Client, cmd, flat_binder, flat_handle, make_driver


def server_client(driver=None):  # noqa: ANN001, ANN201
    d = driver or make_driver()
    server = Client(d, 100)
    client = Client(d, 200)
    server.mmap()
    client.mmap()
    assert server.ioctl(uapi.BINDER_SET_CONTEXT_MGR, uapi.S32.pack(0)).code == 0
    r = server.write_read(cmd(uapi.BC_ENTER_LOOPER), 0)
    assert r.ret == 0 and r.bwr[1] == 4
    return d, server, client


def test_version_and_abi_version() -> None:
    d = make_driver()
    c = Client(d, 10)
    f = c.ioctl(uapi.BINDER_VERSION, uapi.VERSION.pack(0))
    assert f.code == 0 and uapi.VERSION.unpack(f.arg)[0] == 8
    f = c.ioctl(abi.VBINDER_ABI_VERSION, b"\0" * 4)
    assert f.code == 0 and uapi.U32.unpack(f.arg)[0] == 1


def test_unknown_ioctl_and_wrong_size_are_einval() -> None:
    c = Client(make_driver(), 10)
    assert c.ioctl(uapi.BINDER_SET_IDLE_TIMEOUT, b"\0" * 8).code == -errno.EINVAL
    assert c.ioctl(uapi.BINDER_VERSION, b"\0" * 8).code == -errno.EINVAL


def test_sync_call_br_sequences_match_the_kernel() -> None:
    # oracle README "Key facts": client gets BR_NOOP, BR_TRANSACTION_COMPLETE, BR_REPLY in one
    # read (read_consumed 76); server reads BR_NOOP, BR_TRANSACTION (72); reply gets 8.
    d, server, client = server_client()
    with pytest.raises(WouldBlock) as srv_wait:
        server.write_read(b"", 256)
    with pytest.raises(WouldBlock) as cli_wait:
        client.write_read(client.bc_transaction(0, 1, b"hello binder\0\0\0\0*\0\0\0", flags=0x10), 256)
    r = server.finish(srv_wait.value)
    assert r.names == ["BR_NOOP", "BR_TRANSACTION"]
    assert r.bwr[4] == 72
    tr = r.brs[1].tr
    assert tr[0] == 0 and tr[1] == 0  # target and cookie 0 for the context manager
    assert tr[2] == 1 and tr[3] == 0x10  # code, flags
    assert tr[4] == 200 and tr[5] == 0  # sender_pid (tgid), sender_euid
    assert tr[8] == server.map_addr  # data at offset 0 of the area
    assert server.payload(r.brs[1]) == b"hello binder\0\0\0\0*\0\0\0"
    reply = server.bc_transaction(0, 0, b"reply!\0\0\0\0\0\0", reply=True)
    r = server.write_read(cmd(uapi.BC_FREE_BUFFER, tr[8], fmt="Q") + reply, 256)
    assert r.names == ["BR_NOOP", "BR_TRANSACTION_COMPLETE"]
    assert r.bwr[1] == 80
    r = client.finish(cli_wait.value)
    assert r.names == ["BR_NOOP", "BR_TRANSACTION_COMPLETE", "BR_REPLY"]
    assert r.bwr[1] == 68 and r.bwr[4] == 76
    rtr = r.brs[2].tr
    assert rtr[4] == 0  # BR_REPLY has sender_pid 0
    assert client.payload(r.brs[2]) == b"reply!\0\0\0\0\0\0"
    # Freeing the reply: nothing to read.
    r = client.write_read(cmd(uapi.BC_FREE_BUFFER, rtr[8], fmt="Q"), 0)
    assert r.ret == 0 and r.bwr[1] == 12
    assert server.file.proc.alloc.count_allocated() == 0
    assert client.file.proc.alloc.count_allocated() == 0


def test_oneway_call() -> None:
    # oracle: client gets BR_NOOP, BR_TRANSACTION_COMPLETE at once; server's BR_TRANSACTION has
    # flags 0x1 and sender_pid 0, sender_euid kept.
    d, server, client = server_client()
    r = client.write_read(client.bc_transaction(0, 3, b"oneway-data-1234", flags=uapi.TF_ONE_WAY), 256)
    assert r.names == ["BR_NOOP", "BR_TRANSACTION_COMPLETE"]
    r = server.write_read(b"", 256)
    assert r.names == ["BR_NOOP", "BR_TRANSACTION"]
    tr = r.brs[1].tr
    assert tr[3] == 1 and tr[4] == 0
    r = server.write_read(cmd(uapi.BC_FREE_BUFFER, tr[8], fmt="Q"), 0)
    assert r.ret == 0


def test_oneway_calls_to_a_node_are_serialized_until_free() -> None:
    # reference 2.5: the next async transaction is queued only after BC_FREE_BUFFER.
    d, server, client = server_client()
    for i in range(2):
        r = client.write_read(client.bc_transaction(0, i, b"x" * 8, flags=uapi.TF_ONE_WAY), 256)
        assert r.names == ["BR_NOOP", "BR_TRANSACTION_COMPLETE"]
    r = server.write_read(b"", 256)
    assert r.names == ["BR_NOOP", "BR_TRANSACTION"] and r.brs[1].tr[2] == 0
    with pytest.raises(WouldBlock):
        server.write_read(b"", 256)
    r = server.write_read(cmd(uapi.BC_FREE_BUFFER, r.brs[1].tr[8], fmt="Q"), 256)
    assert r.names == ["BR_NOOP", "BR_TRANSACTION"] and r.brs[1].tr[2] == 1


def test_transaction_to_bad_handle() -> None:
    # oracle scenario C: BR_NOOP, BR_FAILED_REPLY; extended error {id, 29201, -22}; log lines.
    d, server, client = server_client()
    r = client.write_read(client.bc_transaction(5, 1, b"12345678"), 256)
    assert r.names == ["BR_NOOP", "BR_FAILED_REPLY"]
    f = client.ioctl(uapi.BINDER_GET_EXTENDED_ERROR, b"\0" * 12)
    tid, command, param = uapi.EXTENDED_ERROR.unpack(f.arg)
    assert command == uapi.BR_FAILED_REPLY == 29201 and param == -22 and tid > 0
    lines = [line.split("] ", 1)[1] for _s, line in d.log.ring]
    assert "binder: 200:200 got transaction to invalid handle, 5" in lines
    assert "binder: 200:200 cannot find target node" in lines
    assert any(x.startswith(f"binder: 200:200 transaction call to 0:0 failed {tid}/29201/-22, size 8-0 line ")
               for x in lines)
    entry = d.failed_transaction_log.ordered()[-1]
    assert (entry.debug_id, entry.call_type, entry.target_handle, entry.return_error) == (tid, 0, 5, 29201)
    # the error is reset once read
    f = client.ioctl(uapi.BINDER_GET_EXTENDED_ERROR, b"\0" * 12)
    assert uapi.EXTENDED_ERROR.unpack(f.arg) == (0, uapi.BR_OK, 0)


def test_commands_after_a_failed_transaction_are_not_consumed() -> None:
    # reference 2.10: the write loop runs only while return_error is BR_OK.
    d, server, client = server_client()
    write = client.bc_transaction(5, 1, b"") + cmd(uapi.BC_ENTER_LOOPER)
    r = client.write_read(write, 256)
    assert r.bwr[1] == 68 and r.names == ["BR_NOOP", "BR_FAILED_REPLY"]


def test_no_context_manager_is_dead_reply() -> None:
    d = make_driver()
    c = Client(d, 10)
    c.mmap()
    r = c.write_read(c.bc_transaction(0, 1, b""), 256)
    assert r.names == ["BR_NOOP", "BR_DEAD_REPLY"]


def test_call_to_exited_process_is_dead_reply() -> None:
    d, server, client = server_client()
    server.file.release()
    r = client.write_read(client.bc_transaction(0, 1, b"abcd"), 256)
    assert r.names == ["BR_NOOP", "BR_DEAD_REPLY"]


def test_server_dies_while_call_in_flight() -> None:
    d, server, client = server_client()
    with pytest.raises(WouldBlock) as w:
        client.write_read(client.bc_transaction(0, 1, b"abcd"), 256)
    r = server.write_read(b"", 256)
    assert r.names == ["BR_NOOP", "BR_TRANSACTION"]
    server.file.release()
    r = client.finish(w.value)
    # the deferred TRANSACTION_COMPLETE comes first, then the failed reply (binder_send_failed_reply)
    assert r.names == ["BR_NOOP", "BR_TRANSACTION_COMPLETE", "BR_DEAD_REPLY"]


def test_unmapped_target_is_dead_reply_with_no_vma_line() -> None:
    # DESIGN.md "Mapped area": after VBINDER_MUNMAP transactions fail with BR_DEAD_REPLY, -ESRCH,
    # and the allocator's "binder_alloc_buf, no vma" line (the first seed).
    d, server, client = server_client()
    f = server.ioctl(abi.VBINDER_MUNMAP, abi.VBINDER_MUNMAP_ARG.pack(server.map_addr, 1040384))
    assert f.code == 0
    r = client.write_read(client.bc_transaction(0, 1, b"abcd"), 256)
    assert r.names == ["BR_NOOP", "BR_DEAD_REPLY"]
    f = client.ioctl(uapi.BINDER_GET_EXTENDED_ERROR, b"\0" * 12)
    assert uapi.EXTENDED_ERROR.unpack(f.arg)[1:] == (uapi.BR_DEAD_REPLY, -errno.ESRCH)
    assert any(line.endswith("binder_alloc: 100: binder_alloc_buf, no vma") for _s, line in d.log.ring)


def test_mmap_checks() -> None:
    d = make_driver()
    c = Client(d, 10)
    f = c.ioctl(abi.VBINDER_MMAP, abi.VBINDER_MMAP_ARG.pack(0, 4096, abi.PROT_READ | abi.PROT_WRITE, 0))
    assert f.code == -errno.EPERM
    c.mmap()
    f = c.ioctl(abi.VBINDER_MMAP, abi.VBINDER_MMAP_ARG.pack(0, 4096, abi.PROT_READ, 0))
    assert f.code == -errno.EBUSY
    c2 = Client(d, 11)
    f = c2.ioctl(abi.VBINDER_MMAP, abi.VBINDER_MMAP_ARG.pack(0x1234, 4096, abi.PROT_READ, 0))
    assert f.code == -errno.EINVAL
    d.host.tgids[12] = 99  # type: ignore[union-attr]
    f = c2.ioctl(abi.VBINDER_MMAP, abi.VBINDER_MMAP_ARG.pack(0, 4096, abi.PROT_READ, 0), tid=12)
    assert f.code == -errno.EINVAL


@pytest.mark.parametrize("prot, flags, opened, closed", [
    # the oracle's 6.1 with debug_mask 8 (tests/oracle/samples/stock/dmesg_B_debug_mask_0x8.txt for
    # libbinder's mapping; the others from runs of mmap(2) with these arguments on /dev/binder)
    (abi.PROT_READ, 2, "vma 71 pagep 8000000000000025", "vma 18020051 pagep 8000000000000025"),
    (abi.PROT_READ, 1, "vma f9 pagep 8000000000000025", "vma 180200d9 pagep 8000000000000025"),
    (abi.PROT_READ | 4, 2, "vma 75 pagep 25", "vma 18020055 pagep 25"),
    (abi.PROT_READ | abi.PROT_WRITE, 1, "vma fb pagep 8000000000000027", None),
    (abi.PROT_READ | abi.PROT_WRITE, 2, "vma 100073 pagep 8000000000000025", None),
])
def test_mmap_lines_print_the_vma_as_6_1(prot: int, flags: int, opened: str, closed: str | None) -> None:
    d = make_driver(debug_mask=8)
    c = Client(d, 10)
    f = c.ioctl(abi.VBINDER_MMAP, abi.VBINDER_MMAP_ARG.pack(0, 1 << 20, prot, flags))
    lines = [line for _s, line in d.log.ring]
    assert lines[-1 if closed else -2].endswith(f"(1024 K) {opened}")
    if closed is None:  # PROT_WRITE: refused after the line
        assert f.code == -errno.EPERM and lines[-1].endswith("bad vm_flags failed -1")
        return
    addr = abi.VBINDER_MMAP_ARG.unpack(f.arg)[0]
    assert c.ioctl(abi.VBINDER_MUNMAP, abi.VBINDER_MUNMAP_ARG.pack(addr, 1 << 20)).code == 0
    assert d.log.ring[-1][1].endswith(f"close vm area {addr:x}-{addr + (1 << 20):x} (1024 K) {closed}")


def test_second_context_manager_is_ebusy() -> None:
    d, server, client = server_client()
    assert client.ioctl(uapi.BINDER_SET_CONTEXT_MGR, uapi.S32.pack(0)).code == -errno.EBUSY
    lines = [line for _s, line in d.log.ring]
    assert any(x.endswith("binder: BINDER_SET_CONTEXT_MGR already set") for x in lines)
    assert any(x.endswith("binder: 200:200 ioctl 40046207 0 returned -16") for x in lines)


def test_binder_object_passed_and_called() -> None:
    """A service sends its own object to the manager, a client gets a handle for it and calls it."""
    d, mgr, client = server_client()
    svc = Client(d, 300)
    svc.mmap()
    # svc -> manager: an object of svc (ptr 0xb0, cookie 0xc0)
    obj = flat_binder(0xB0, 0xC0)
    with pytest.raises(WouldBlock) as sw:
        svc.write_read(svc.bc_transaction(0, 3, obj, objects=(0,)), 256)
    r = mgr.write_read(b"", 256)
    tr = r.brs[1].tr
    got = uapi.FLAT_BINDER_OBJECT.unpack(mgr.payload(r.brs[1]))
    assert got[0] == uapi.BINDER_TYPE_HANDLE and got[2] == 1 and got[3] == 0
    mgr_handle = got[2]
    # keep the ref past the buffer: BC_ACQUIRE, then free and reply
    r = mgr.write_read(cmd(uapi.BC_ACQUIRE, mgr_handle) + cmd(uapi.BC_FREE_BUFFER, tr[8], fmt="Q")
                       + mgr.bc_transaction(0, 0, b"", reply=True), 256)
    assert r.names == ["BR_NOOP", "BR_TRANSACTION_COMPLETE"]
    r = svc.finish(sw.value)
    # the sender learns of the new strong ref to its object: BR_INCREFS, BR_ACQUIRE come first
    assert r.names == ["BR_NOOP", "BR_INCREFS", "BR_ACQUIRE", "BR_TRANSACTION_COMPLETE", "BR_REPLY"]
    assert r.brs[1].payload == uapi.PTR_COOKIE.pack(0xB0, 0xC0)
    svc.write_read(cmd(uapi.BC_INCREFS_DONE, 0xB0, 0xC0, fmt="QQ") + cmd(uapi.BC_ACQUIRE_DONE, 0xB0, 0xC0, fmt="QQ")
                   + cmd(uapi.BC_FREE_BUFFER, r.brs[4].tr[8], fmt="Q") + cmd(uapi.BC_ENTER_LOOPER), 0)
    # client asks the manager, which replies with the handle: the client gets its own handle
    with pytest.raises(WouldBlock) as cw:
        client.write_read(client.bc_transaction(0, 1, b"name"), 256)
    r = mgr.write_read(b"", 256)
    tr = r.brs[1].tr
    r = mgr.write_read(cmd(uapi.BC_FREE_BUFFER, tr[8], fmt="Q")
                       + mgr.bc_transaction(0, 0, flat_handle(mgr_handle), objects=(0,), reply=True), 256)
    r = client.finish(cw.value)
    assert r.names[-1] == "BR_REPLY"
    got = uapi.FLAT_BINDER_OBJECT.unpack(client.payload(r.brs[-1]))
    assert got[0] == uapi.BINDER_TYPE_HANDLE and got[2] == 1
    client.write_read(cmd(uapi.BC_ACQUIRE, 1) + cmd(uapi.BC_FREE_BUFFER, r.brs[-1].tr[8], fmt="Q"), 0)
    # client calls the service through its handle: the service sees its ptr and cookie
    with pytest.raises(WouldBlock) as sw2:
        svc.write_read(b"", 256)
    with pytest.raises(WouldBlock) as cw:
        client.write_read(client.bc_transaction(1, 7, b"ping"), 256)
    r = svc.finish(sw2.value)
    assert r.names == ["BR_NOOP", "BR_TRANSACTION"]
    tr = r.brs[1].tr
    assert (tr[0], tr[1], tr[2], tr[4]) == (0xB0, 0xC0, 7, 200)
    assert svc.payload(r.brs[1]) == b"ping"
    svc.write_read(cmd(uapi.BC_FREE_BUFFER, tr[8], fmt="Q") + svc.bc_transaction(0, 0, b"pong", reply=True), 256)
    r = client.finish(cw.value)
    assert client.payload(r.brs[-1]) == b"pong"
    # the service dies: the client's next call gets BR_DEAD_REPLY
    svc.file.release()
    client.write_read(cmd(uapi.BC_FREE_BUFFER, r.brs[-1].tr[8], fmt="Q"), 0)
    r = client.write_read(client.bc_transaction(1, 7, b"ping"), 256)
    assert r.names == ["BR_NOOP", "BR_DEAD_REPLY"]
    assert len(d.dead_nodes) == 1


def test_weak_handle_cannot_be_called() -> None:
    # reference 2.3: a call needs a strong ref ("tried to use weak ref as strong ref").
    d, mgr, svc = server_client()
    svc.write_read(svc.bc_transaction(0, 3, flat_binder(0xB0, 0xC0, strong=False), objects=(0,),
                                      flags=uapi.TF_ONE_WAY), 256)
    r = mgr.write_read(b"", 256)
    got = uapi.FLAT_BINDER_OBJECT.unpack(mgr.payload(r.brs[1]))
    assert got[0] == uapi.BINDER_TYPE_WEAK_HANDLE and got[2] == 1
    r = mgr.write_read(mgr.bc_transaction(1, 1, b"", flags=uapi.TF_ONE_WAY), 256)
    assert r.names == ["BR_NOOP", "BR_FAILED_REPLY"]
    lines = [line.split("] ", 1)[1] for _s, line in d.log.ring]
    assert "binder: tried to use weak ref as strong ref" in lines
    assert "binder: 100:100 got transaction to invalid handle, 1" in lines


def test_spawn_looper() -> None:
    # reference 2.4 step 5: BR_SPAWN_LOOPER replaces BR_NOOP when no thread waits and max_threads allows.
    d, mgr, client = server_client()
    assert mgr.ioctl(uapi.BINDER_SET_MAX_THREADS, uapi.U32.pack(1)).code == 0
    client.write_read(client.bc_transaction(0, 1, b"", flags=uapi.TF_ONE_WAY), 256)
    r = mgr.write_read(b"", 256)
    assert r.names == ["BR_SPAWN_LOOPER", "BR_TRANSACTION"]


def test_release_frees_everything() -> None:
    d, server, client = server_client()
    client.write_read(client.bc_transaction(0, 1, b"x" * 100, flags=uapi.TF_ONE_WAY), 256)
    client.file.release()
    server.file.release()
    from vbinder.driver.stats import Obj
    for kind in (Obj.PROC, Obj.THREAD, Obj.NODE, Obj.REF, Obj.TRANSACTION, Obj.TRANSACTION_COMPLETE):
        assert d.stats.active(kind) == 0, kind.name
    assert d.procs == []


def test_malformed_frames_are_einval_and_leave_state_alone() -> None:
    d = make_driver()
    c = Client(d, 10)
    from vbinder.driver import BinderError
    with pytest.raises(BinderError) as e:
        c.file.write(abi.key(10), b"XXXX" + b"\0" * 20)
    assert e.value.errno == errno.EINVAL
    frame = abi.encode_request(uapi.BINDER_VERSION, b"\0" * 4)
    bad = bytearray(frame)
    bad[16] = 8  # a total shorter than the header
    with pytest.raises(BinderError):
        c.file.write(abi.key(10), bytes(bad))
    # overlapping segments
    with pytest.raises(BinderError):
        c.file.write(abi.key(10), abi.encode_request(uapi.BINDER_VERSION, b"\0" * 4, [(100, b"a" * 8), (104, b"b")]))
    f = c.ioctl(uapi.BINDER_VERSION, uapi.VERSION.pack(0))
    assert f.code == 0


def test_split_request_and_partial_reply_reads() -> None:
    d = make_driver()
    c = Client(d, 10)
    frame = abi.encode_request(uapi.BINDER_VERSION, b"\0" * 4)
    assert c.file.write(abi.key(10), frame[:10]) == 10
    assert c.file.write(abi.key(10) + 10, frame[10:]) == len(frame) - 10
    head = c.file.read(abi.key(10), 24)
    total = abi.reply_total(head)
    rest = c.file.read(abi.key(10) + 24, total - 24)
    f = abi.decode_reply(head + rest)
    assert f.code == 0 and uapi.VERSION.unpack(f.arg)[0] == 8
    from vbinder.driver import BinderError
    with pytest.raises(BinderError) as e:
        c.file.read(abi.key(10) + 24, 10)
    assert e.value.errno == errno.EINVAL


def test_fast_path_read_and_enomsg() -> None:
    d, server, client = server_client()
    from vbinder.driver import BinderError
    with pytest.raises(BinderError) as e:
        client.file.read(abi.key(200), 4096)
    assert e.value.errno == errno.ENOMSG
    client.write_read(client.bc_transaction(0, 1, b"", flags=uapi.TF_ONE_WAY), 256)
    r = server.write_read(b"", 256)
    server.write_read(cmd(uapi.BC_FREE_BUFFER, r.brs[1].tr[8], fmt="Q"), 0)
    # the server's last read was 256 bytes: a bare pread at pos 0 does it again
    client.write_read(client.bc_transaction(0, 2, b"", flags=uapi.TF_ONE_WAY), 256)
    f = server.reply()
    r = server._wr(f, 0x0F00_0000 + 100 * 0x1000, 0)
    assert r.names == ["BR_NOOP", "BR_TRANSACTION"]


def test_new_request_cancels_a_blocked_read() -> None:
    d, server, client = server_client()
    with pytest.raises(WouldBlock) as w:
        server.write_read(b"", 256)
    assert server.ioctl(uapi.BINDER_VERSION, uapi.VERSION.pack(0)).code == 0
    from vbinder.driver import BinderError
    with pytest.raises(BinderError) as e:
        server.finish(w.value)
    assert e.value.errno == errno.ECANCELED
    assert not server.file.proc.waiting_threads


def test_a_reused_tid_is_a_new_thread() -> None:
    # DESIGN.md, Identity: a key whose tid has a new start time is a new thread.
    d, server, client = server_client()
    with pytest.raises(WouldBlock):
        client.write_read(client.bc_transaction(0, 1, b"abcd"), 256)
    old = client.file.proc.threads[200]
    assert old.transaction_stack is not None
    d.host.start_times[200] = 2  # type: ignore[union-attr]  # the task exited; a new one got its tid
    d.log.clock.t += 2.0  # type: ignore[attr-defined]
    assert client.ioctl(uapi.BINDER_VERSION, uapi.VERSION.pack(0)).code == 0
    new = client.file.proc.threads[200]
    assert new is not old and old.is_dead and new.transaction_stack is None
    # the server's reply finds no caller: the old thread's call is gone
    r = server.write_read(b"", 256)
    tr = r.brs[1].tr
    r = server.write_read(cmd(uapi.BC_FREE_BUFFER, tr[8], fmt="Q") + server.bc_transaction(0, 0, b"", reply=True), 256)
    assert r.names == ["BR_NOOP", "BR_TRANSACTION_COMPLETE"]


def test_stop_on_user_error_holds_calls_until_written_below_2() -> None:
    # 6.1 binder_user_error: with stop_on_user_error set, a user error makes it 2 and every ioctl
    # waits at entry until it is written below 2 (DESIGN.md: the pwrite only records the ioctl).
    d, server, client = server_client()
    d.params.write("binder", "stop_on_user_error", b"1\n")
    client.write_read(cmd(uapi.BC_FREE_BUFFER, 0xDEAD000, fmt="Q"), 0)  # a user error: "no match"
    assert d.log.stop_on_user_error == 2
    client.request(uapi.BINDER_VERSION, uapi.VERSION.pack(0))
    with pytest.raises(WouldBlock) as held:
        client.reply()
    d.params.write("binder", "stop_on_user_error", b"0\n")
    f = client.resume(held.value)
    assert f.code == 0 and uapi.VERSION.unpack(f.arg) == (8,)


def test_a_partial_frame_left_for_10_s_is_dropped() -> None:
    # DESIGN.md, one request per thread: "a partial frame left for 10 s is dropped".
    d = make_driver()
    c = Client(d, 10)
    frame = abi.encode_request(uapi.BINDER_VERSION, uapi.VERSION.pack(0))
    c.file.write(abi.key(11), frame[:10])
    held = c.file.held
    assert held >= 10
    d.log.clock.t += 11  # type: ignore[attr-defined]
    c.file.write(abi.key(12), frame[:10])  # another split frame starts: the old one is dropped
    assert c.file.held == 10
    from vbinder.driver import BinderError
    with pytest.raises(BinderError) as e:  # its next chunk no longer fits anything
        c.file.write(abi.key(11) + 10, frame[10:])
    assert e.value.errno == errno.EINVAL
    assert c.file.write(abi.key(12) + 10, frame[10:]) == len(frame) - 10
    f = abi.decode_reply(c.file.read(abi.key(12), 4096))
    assert f.code == 0



def test_a_read_that_waited_goes_on_after_its_wait_not_from_the_top() -> None:
    # 6.1's binder_thread_read prints the looper-state user error before binder_wait_for_work
    # and, woken, goes on from there: one line per read, however often it is woken.
    d = make_driver()
    server, client = Client(d, 100), Client(d, 200)
    server.mmap()
    client.mmap()
    assert server.ioctl(uapi.BINDER_SET_CONTEXT_MGR, uapi.S32.pack(0)).code == 0

    def errors() -> list[str]:
        return [line.split("] ", 1)[1] for _seq, line in d.log.ring if "ERROR: Thread waiting" in line]

    with pytest.raises(WouldBlock) as first:
        server.write_read(b"", 256)  # no BC_ENTER_LOOPER: waits for proc work
    assert errors() == ["binder: 100:100 ERROR: Thread waiting for process work before calling "
                        "BC_REGISTER_LOOPER or BC_ENTER_LOOPER (state 10)"]
    server.file.proc.threads[100].wake()  # woken with nothing to read: it waits on
    with pytest.raises(WouldBlock) as again:
        server.finish(first.value)
    client.write_read(client.bc_transaction(0, 1, b"x" * 8, flags=uapi.TF_ONE_WAY), 256)
    assert server.finish(again.value).names == ["BR_NOOP", "BR_TRANSACTION"]
    assert len(errors()) == 1
    # An interrupted wait ends the kernel's read (-EINTR; the client issues the ioctl again):
    # what goes on is a new read, with its own line.
    with pytest.raises(WouldBlock) as waiting:
        server.write_read(b"", 256)
    assert len(errors()) == 2
    server.file.abandon(abi.key(100), waiting.value.waiter)
    with pytest.raises(WouldBlock):
        server.reply()
    assert len(errors()) == 3
