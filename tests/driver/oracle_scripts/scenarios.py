"""Binder scenarios written once, run on the 6.1 oracle and on vbinder's sans-IO core.

A scenario is a function of an *environment* (``env``) that declares processes
(``env.actor``), starts them (``env.start``), opens devices, runs BINDER_WRITE_READs made of
the abstract commands below, and takes debugfs snapshots (``env.snapshot``). Two environments
implement it: ``run_scenario.py`` (forked processes on the real driver, run by
``tests/oracle/run.sh``) and ``tests/driver/replay.py`` (fake processes on the core).
Both record every snapshot and a trace of what each call returned, so the test can compare them.

An actor may have several threads (``env.actor(name, threads=2)``); calls take ``thread=k``.
Rules that keep the two runs equivalent: all actors are forked before any opens a device; a call
that blocks is started with ``wr_async`` and its ``result()`` is collected before the next snapshot
once something has woken it (the kernel's woken thread runs at once, the core's when resumed).
This module uses only the standard library: the oracle runs it with the host's python3.
"""

from __future__ import annotations

import struct

# -- protocol numbers (uapi/linux/android/binder.h, 64-bit) -------------------------------------


def _ioc(d: int, t: str, nr: int, size: int) -> int:
    return (d << 30) | (size << 16) | (ord(t) << 8) | nr


BC = {
    "BC_TRANSACTION": _ioc(1, "c", 0, 64), "BC_REPLY": _ioc(1, "c", 1, 64),
    "BC_FREE_BUFFER": _ioc(1, "c", 3, 8), "BC_INCREFS": _ioc(1, "c", 4, 4),
    "BC_ACQUIRE": _ioc(1, "c", 5, 4), "BC_RELEASE": _ioc(1, "c", 6, 4), "BC_DECREFS": _ioc(1, "c", 7, 4),
    "BC_INCREFS_DONE": _ioc(1, "c", 8, 16), "BC_ACQUIRE_DONE": _ioc(1, "c", 9, 16),
    "BC_REGISTER_LOOPER": _ioc(0, "c", 11, 0), "BC_ENTER_LOOPER": _ioc(0, "c", 12, 0),
    "BC_EXIT_LOOPER": _ioc(0, "c", 13, 0),
    "BC_REQUEST_DEATH_NOTIFICATION": _ioc(1, "c", 14, 12), "BC_CLEAR_DEATH_NOTIFICATION": _ioc(1, "c", 15, 12),
    "BC_DEAD_BINDER_DONE": _ioc(1, "c", 16, 8),
}
TF_ONE_WAY = 0x01
TF_ACCEPT_FDS = 0x10


def _pack_chars(c1: str, c2: str, c3: str, c4: int) -> int:
    return (ord(c1) << 24) | (ord(c2) << 16) | (ord(c3) << 8) | c4


BINDER_TYPE_BINDER = _pack_chars("s", "b", "*", 0x85)
BINDER_TYPE_HANDLE = _pack_chars("s", "h", "*", 0x85)
BINDER_GET_NODE_DEBUG_INFO = _ioc(3, "b", 11, 24)
BINDER_GET_FROZEN_INFO = _ioc(3, "b", 15, 12)
BINDER_ENABLE_ONEWAY_SPAM_DETECTION = _ioc(1, "b", 16, 4)
BINDER_FREEZE = _ioc(1, "b", 14, 12)


def flat_binder(ptr: int, cookie: int, flags: int = 0) -> bytes:
    """A flat_binder_object for a local object (BINDER_TYPE_BINDER)."""
    return struct.pack("<IIQQ", BINDER_TYPE_BINDER, flags, ptr, cookie)


def flat_handle(handle: int) -> bytes:
    """A flat_binder_object for a ref (BINDER_TYPE_HANDLE)."""
    return struct.pack("<IIQQ", BINDER_TYPE_HANDLE, 0, handle, 0)


# -- abstract commands: tuples, encoded by each environment with ``encode`` ---------------------


def txn(handle: int, code: int, data: bytes = b"", offsets: tuple[int, ...] = (), flags: int = 0) -> tuple:
    return ("BC_TRANSACTION", handle, code, data, tuple(offsets), flags)


def reply(code: int = 0, data: bytes = b"", offsets: tuple[int, ...] = (), flags: int = 0) -> tuple:
    return ("BC_REPLY", 0, code, data, tuple(offsets), flags)


def free(ptr: int) -> tuple:
    return ("BC_FREE_BUFFER", ptr)


def enter() -> tuple:
    return ("BC_ENTER_LOOPER",)


def ref(name: str, handle: int) -> tuple:
    """BC_INCREFS, BC_ACQUIRE, BC_RELEASE or BC_DECREFS on ``handle``."""
    return ("BC_" + name, handle)


def node_done(name: str, ptr: int, cookie: int) -> tuple:
    """BC_INCREFS_DONE or BC_ACQUIRE_DONE."""
    return ("BC_" + name, ptr, cookie)


def request_death(handle: int, cookie: int) -> tuple:
    return ("BC_REQUEST_DEATH_NOTIFICATION", handle, cookie)


def clear_death(handle: int, cookie: int) -> tuple:
    return ("BC_CLEAR_DEATH_NOTIFICATION", handle, cookie)


def dead_binder_done(cookie: int) -> tuple:
    return ("BC_DEAD_BINDER_DONE", cookie)


def encode(cmds: list[tuple], put) -> bytes:  # noqa: ANN001
    """The write buffer for ``cmds``; ``put(bytes) -> address`` places transaction data in memory."""
    out = b""
    for c in cmds:
        name = c[0]
        code = BC[name]
        if name in ("BC_TRANSACTION", "BC_REPLY"):
            _n, target, tcode, data, offsets, flags = c
            offs = struct.pack(f"<{len(offsets)}Q", *offsets)
            daddr = put(data) if data else 0
            oaddr = put(offs) if offs else 0
            out += struct.pack("<IQQIIiIQQQQ", code, target, 0, tcode, flags, 0, 0, len(data), len(offs),
                               daddr, oaddr)
        elif name in ("BC_FREE_BUFFER", "BC_DEAD_BINDER_DONE"):
            out += struct.pack("<IQ", code, c[1])
        elif name in ("BC_INCREFS", "BC_ACQUIRE", "BC_RELEASE", "BC_DECREFS"):
            out += struct.pack("<II", code, c[1])
        elif name in ("BC_INCREFS_DONE", "BC_ACQUIRE_DONE"):
            out += struct.pack("<IQQ", code, c[1], c[2])
        elif name in ("BC_REQUEST_DEATH_NOTIFICATION", "BC_CLEAR_DEATH_NOTIFICATION"):
            out += struct.pack("<IIQ", code, c[1], c[2])
        else:
            out += struct.pack("<I", code)
    return out


def first(res: dict, name: str) -> dict:
    """The fields of the first return command ``name`` in a write_read result."""
    for n, f in res["returns"]:
        if n == name:
            return f
    raise AssertionError(f"no {name} in {[n for n, _ in res['returns']]}")


# -- the scenarios -------------------------------------------------------------------------------


def _client_open(env, actor):  # noqa: ANN001, ANN202
    """binderlib.Binder + version + set_max_threads(0), as smoke.py's clients do."""
    f = actor.open("binder")
    f.version()
    f.max_threads(0)
    return f


def _server_open(env, actor):  # noqa: ANN001, ANN202
    f = actor.open("binder")
    f.version()
    f.max_threads(0)
    assert f.ctx_mgr() == 0
    return f


def _sync_call(env, srv, cli, code, data, reply_data=b"reply!\0\0\0\0\0\0", before_reply=None):  # noqa: ANN001, ANN202
    """smoke.py's serve_one + client_call: one sync call to handle 0, answered, reply freed."""
    s = srv.wr_async([], 256)
    c = cli.wr_async([txn(0, code, data, flags=TF_ACCEPT_FDS)], 256)
    tr = first(s.result(), "BR_TRANSACTION")
    if before_reply:
        before_reply()
    srv.wr([free(tr["buffer"]), reply(0, reply_data)], 256)
    rep = first(c.result(), "BR_REPLY")
    cli.wr([free(rep["buffer"])], 0)


def _oneway_call(env, srv, cli, code, data):  # noqa: ANN001, ANN202
    s = srv.wr_async([], 256)
    cli.wr([txn(0, code, data, flags=TF_ONE_WAY)], 256)
    tr = first(s.result(), "BR_TRANSACTION")
    srv.wr([free(tr["buffer"])], 0)


def smoke(env) -> None:  # noqa: ANN001
    """oracle smoke.py, scenarios A-F and the end (samples/stock/debugfs_*.txt)."""
    server = env.actor("server")
    clients = {tag: env.actor(tag, euid=1000 if tag == "C" else None) for tag in "ABCDEF"}
    env.start()
    srv = _server_open(env, server)
    s = srv.wr_async([enter()], 256)  # the first serve_one enters the looper
    # A: sync call, snapshots in flight, idle and after the client's exit.
    cli = _client_open(env, clients["A"])
    c = cli.wr_async([txn(0, 1, b"hello binder\0\0\0\0" + struct.pack("<i", 42), flags=TF_ACCEPT_FDS)], 256)
    tr = first(s.result(), "BR_TRANSACTION")
    env.snapshot("A_inflight")
    srv.wr([free(tr["buffer"]), reply(0, b"reply!\0\0\0\0\0\0")], 256)
    rep = first(c.result(), "BR_REPLY")
    cli.wr([free(rep["buffer"])], 0)
    env.snapshot("A_idle")
    cli.close()
    env.snapshot("A_after_client_exit")
    # B and E: the same call (their logs are not debugfs).
    cli = _client_open(env, clients["B"])
    _sync_call(env, srv, cli, 1, b"hello binder\0\0\0\0" + struct.pack("<i", 42))
    cli.close()
    # C: euid 1000, sync, oneway and errors.
    cli = _client_open(env, clients["C"])
    _sync_call(env, srv, cli, 2, b"ping")
    _oneway_call(env, srv, cli, 3, b"oneway-data-1234")
    cli.wr([txn(5, 4, b"x" * 8, flags=TF_ACCEPT_FDS)], 256)
    cli.extended_error()
    cli.wr([free(0xDEADBEEF000)], 0)
    cli.wr([ref("ACQUIRE", 77)], 0)
    assert cli.ctx_mgr() == -16  # EBUSY
    cli.node_info_for_ref(0)
    env.snapshot("C_idle")
    cli.close()
    # D: sync + oneway.
    cli = _client_open(env, clients["D"])
    _sync_call(env, srv, cli, 5, b"sync-payload")
    _oneway_call(env, srv, cli, 6, b"oneway-payload!!")
    cli.close()
    cli = _client_open(env, clients["E"])
    _sync_call(env, srv, cli, 1, b"hello binder\0\0\0\0" + struct.pack("<i", 42))
    cli.close()
    cli = _client_open(env, clients["F"])
    _sync_call(env, srv, cli, 5, b"sync-payload")
    _oneway_call(env, srv, cli, 6, b"oneway-payload!!")
    cli.close()
    env.snapshot("Z_final")
    srv.close()
    env.snapshot("Z_after_server_close")


def objects_death(env) -> None:  # noqa: ANN001
    """Nodes sent in a call, refs, death notifications, dead nodes, node work, "buffer free"."""
    server = env.actor("S")
    owner = env.actor("O")
    env.start()
    srv = _server_open(env, server)
    s = srv.wr_async([enter()], 256)
    own = _client_open(env, owner)
    data = flat_binder(0x1000, 0x2000) + flat_binder(0x3000, 0x4000) + b"svc\0"
    o = own.wr_async([txn(0, 3, data, offsets=(0, 24), flags=TF_ACCEPT_FDS)], 256)
    tr = first(s.result(), "BR_TRANSACTION")
    env.snapshot("call_with_nodes")  # node work on the owner's thread, refs without death
    srv.wr([ref("INCREFS", 1), ref("ACQUIRE", 1), ref("INCREFS", 2), ref("ACQUIRE", 2),
            request_death(1, 0xD1), request_death(2, 0xD2), free(tr["buffer"])], 0)
    env.snapshot("freed_before_reply")  # incoming transaction with "buffer free", refs with death
    srv.wr([reply(0, b"ok\0\0")], 0)
    rep = o.result()
    env.snapshot("replied")  # transaction complete pending on the server, reply delivered
    own.wr([node_done("INCREFS_DONE", 0x1000, 0x2000), node_done("ACQUIRE_DONE", 0x1000, 0x2000),
            node_done("INCREFS_DONE", 0x3000, 0x4000), node_done("ACQUIRE_DONE", 0x3000, 0x4000),
            free(first(rep, "BR_REPLY")["buffer"])], 0)
    srv.wr([], 256)
    env.snapshot("idle")
    own.close()
    env.snapshot("owner_dead")  # dead nodes, "dead node" refs, "has dead binder" twice
    srv.wr([clear_death(2, 0xD2)], 0)
    env.snapshot("cleared_while_queued")  # "has cleared dead binder"
    srv.wr([], 256)
    env.snapshot("one_delivered")  # "has delivered dead binder"
    srv.wr([], 256)
    srv.wr([dead_binder_done(0xD2)], 0)
    env.snapshot("clear_done_pending")  # "has cleared death notification" on the thread
    srv.wr([], 256)
    srv.wr([dead_binder_done(0xD1), ref("RELEASE", 1), ref("DECREFS", 1), ref("RELEASE", 2),
            ref("DECREFS", 2)], 0)
    env.snapshot("refs_released")  # no dead nodes left
    srv.close()
    env.snapshot("end")


def queues(env) -> None:  # noqa: ANN001
    """Work waiting in queues: proc todo, node async_todo, return errors, dead replies."""
    server = env.actor("S")
    c1 = env.actor("C1")
    c2 = env.actor("C2")
    env.start()
    srv = _server_open(env, server)
    srv.wr([enter()], 0)  # entered, but not reading: work waits on the proc's todo
    one = _client_open(env, c1)
    two = _client_open(env, c2)
    one.wr([txn(0, 7, b"oneway-number-1!", flags=TF_ONE_WAY)], 256)
    one.wr([txn(0, 8, b"oneway-number-2!", flags=TF_ONE_WAY)], 256)  # waits in the node's async_todo
    two.wr([txn(0, 9, b"sync-call", flags=TF_ACCEPT_FDS)], 0)  # write only: outgoing, complete deferred
    one.wr([txn(9, 10, b"bad-handle")], 0)  # a return error left on the thread's todo
    env.snapshot("queued")
    res = srv.wr([], 256)
    env.snapshot("oneway_delivered")  # the first oneway buffer is "delivered"
    srv.wr([free(first(res, "BR_TRANSACTION")["buffer"])], 0)
    env.snapshot("async_moved")  # the second oneway moved to the proc's todo
    srv.wr([], 256)  # the sync call
    env.snapshot("sync_incoming")
    srv.close()
    env.snapshot("server_dead")  # dead reply on the caller's thread, oneway undelivered
    one.wr([], 256)
    two.wr([], 256)
    env.snapshot("errors_read")
    one.close()
    two.close()
    env.snapshot("end")


def procfiles(env) -> None:  # noqa: ANN001
    """proc/<pid>: created by the first open of a pid, removed at that proc's release (binder_open)."""
    p = env.actor("P")
    q = env.actor("Q")
    env.start()
    f1 = p.open("binder")
    env.snapshot("p_binder")
    f2 = p.open("hwbinder")
    f2.version()
    env.snapshot("p_two_contexts")  # proc/P prints both procs, newest first
    g1 = q.open("hwbinder")
    f1.close()
    env.snapshot("p_first_closed")  # proc/P gone although P still has a proc
    f3 = p.open("binder")
    env.snapshot("p_reopened")  # still no proc/P: a proc of P existed at this open
    f2.close()
    f3.close()
    env.snapshot("p_all_closed")
    f4 = p.open("binder")
    env.snapshot("p_fresh")  # proc/P again
    f4.close()
    g1.close()
    env.snapshot("end")


def threads(env) -> None:  # noqa: ANN001
    """Several threads: ordering by tid, ready and requested threads, BR_SPAWN_LOOPER,
    BC_REGISTER_LOOPER, a reply pending on a thread, nested calls, binder_flush, thread exit."""
    server = env.actor("S", threads=2)
    client = env.actor("C", threads=2)
    env.start()
    srv = server.open("binder")
    srv.version()
    srv.max_threads(4)
    assert srv.ctx_mgr() == 0
    s0 = srv.wr_async([enter()], 256)
    cli = _client_open(env, client)
    env.snapshot("one_waiting")  # ready threads 1, l 12
    # A call carrying the client's own object: BR_SPAWN_LOOPER replaces BR_NOOP (no thread left).
    c0 = cli.wr_async([txn(0, 1, flat_binder(0x5000, 0x6000), offsets=(0,), flags=TF_ACCEPT_FDS)], 256)
    res = s0.result()
    tr = first(res, "BR_TRANSACTION")
    env.snapshot("spawn_requested")  # requested threads 1+0/4
    srv.version(thread=1)  # a new thread's first ioctl returns at once (looper_need_return)
    s1 = srv.wr_async([("BC_REGISTER_LOOPER",)], 256, thread=1)
    env.snapshot("registered")  # 0+1/4, ready threads 1, l 11
    # A nested call back to the client's object: it goes to the calling thread.
    srv.wr([ref("INCREFS", 1), ref("ACQUIRE", 1)], 0)
    n0 = srv.wr_async([txn(1, 2, b"nested")], 256)
    inner = first(c0.result(), "BR_TRANSACTION")
    env.snapshot("nested")  # two-level transaction stacks on both sides
    cli.wr([free(inner["buffer"]), reply(0, b"in")], 256)
    rep = first(n0.result(), "BR_REPLY")
    srv.wr([free(rep["buffer"]), free(tr["buffer"]), reply(0, b"out!")], 0)
    env.snapshot("reply_pending")  # the reply waits on the client thread's todo
    rep = first(cli.wr([], 256), "BR_REPLY")
    cli.wr([free(rep["buffer"])], 0)
    srv.wr([], 256)
    cli.flush()
    env.snapshot("flushed")  # need_return 1 on the client's threads
    cli.version(thread=1)
    c1 = cli.wr_async([txn(0, 3, b"to the second thread")], 256, thread=1)
    tr = first(s1.result(), "BR_TRANSACTION")
    env.snapshot("second_thread")
    srv.wr([free(tr["buffer"]), reply(0, b"ok")], 256, thread=1)
    rep = first(c1.result(), "BR_REPLY")
    cli.wr([free(rep["buffer"])], 0, thread=1)
    cli.thread_exit(thread=1)
    srv.wr([("BC_EXIT_LOOPER",)], 0, thread=1)
    env.snapshot("thread_exited")
    cli.close()
    srv.close()
    env.snapshot("end")


def log_wrap(env) -> None:  # noqa: ANN001
    """More than 32 entries: both transaction logs wrap (transaction_log_show)."""
    server = env.actor("S")
    client = env.actor("C")
    env.start()
    srv = _server_open(env, server)
    cli = _client_open(env, client)
    srv.wr([enter()], 0)
    for i in range(20):
        cli.wr([txn(0, i, b"%d" % i, flags=TF_ONE_WAY)], 256)
        tr = first(srv.wr([], 256), "BR_TRANSACTION")
        srv.wr([free(tr["buffer"])], 0)
        cli.wr([txn(7 + i, i, b"bad")], 256)
    for i in range(15):
        cli.wr([txn(50 + i, 0, b"")], 256)
    env.snapshot("wrapped")
    cli.wr([txn(99, 0, b"")], 256)
    env.snapshot("one_more")
    cli.close()
    srv.close()


def oneway_spam(env) -> None:  # noqa: ANN001
    """Oneway calls piling up: node async_todo, async space, one ONEWAY_SPAM_SUSPECT work item
    (which 6.1's print_binder_work_ilocked prints as "unknown work: type 3")."""
    server = env.actor("S")
    client = env.actor("C")
    env.start()
    srv = _server_open(env, server)
    srv.wr([enter()], 0)
    cli = _client_open(env, client)
    for i in range(60):
        cli.wr([txn(0, i, bytes([i]) * 8000, flags=TF_ONE_WAY)], 0)
    env.snapshot("piled_up")
    cli.wr([], 256)
    env.snapshot("completes_read")
    cli.close()
    srv.close()


def paths(env) -> None:  # noqa: ANN001
    """What the other scenarios leave out (their lock lines: tests/driver/test_spinlocks.py):
    handles sent back to their node's owner and on to a third process, an invalid handle in a
    reply, refused commands (a call or a reply from under an unanswered call, a call with a call at
    the head of its thread's todo, a freeze while a call is pending), the ioctls that
    look at nodes, refs and frozen state, a sync call to a frozen process, a poll, a node
    deleted when its owner reads its work, a death notification asked for on a dead node."""
    server = env.actor("S")
    owner = env.actor("O")
    third = env.actor("T")
    env.start()
    srv = _server_open(env, server)
    s = srv.wr_async([enter()], 256)
    own = _client_open(env, owner)
    o = own.wr_async([txn(0, 1, flat_binder(0x1000, 0x2000) + flat_binder(0x5000, 0x6000), offsets=(0, 24),
                          flags=TF_ACCEPT_FDS)], 256)
    tr = first(s.result(), "BR_TRANSACTION")
    srv.wr([ref("INCREFS", 1), ref("ACQUIRE", 1), ref("INCREFS", 2), ref("ACQUIRE", 2), free(tr["buffer"]),
            reply(0, flat_handle(1), offsets=(0,))], 0)  # the owner's own node, back to it
    rep = first(o.result(), "BR_REPLY")
    own.wr([enter(), node_done("INCREFS_DONE", 0x1000, 0x2000), node_done("ACQUIRE_DONE", 0x1000, 0x2000),
            node_done("INCREFS_DONE", 0x5000, 0x6000), node_done("ACQUIRE_DONE", 0x5000, 0x6000),
            node_done("ACQUIRE_DONE", 0x5000, 0x6000), node_done("INCREFS_DONE", 0x5000, 0x6000),
            free(rep["buffer"])], 0)  # the last two: none pending
    own.ioctl(BINDER_GET_NODE_DEBUG_INFO, struct.pack("<QQII", 0, 0, 0, 0))
    own.ioctl(BINDER_ENABLE_ONEWAY_SPAM_DETECTION, struct.pack("<I", 1))
    own.poll()
    srv.wr([], 256)  # the reply's BR_TRANSACTION_COMPLETE
    srv.node_info_for_ref(1)
    srv.node_info_for_ref(9)
    srv.ioctl(BINDER_GET_FROZEN_INFO, struct.pack("<III", owner.pid, 0, 0))
    # the server drops its refs on the second node: the owner's read of its node work deletes it
    srv.wr([ref("RELEASE", 2), ref("DECREFS", 2)], 0)
    own.wr([], 256)
    # a call back into the owner's thread while the owner's call waits: sitting at the head of its
    # todo, it refuses the owner's next sync call
    own.wr([txn(0, 8, b"call")], 0)
    tr = first(srv.wr([], 256), "BR_TRANSACTION")
    srv.ioctl(BINDER_FREEZE, struct.pack("<III", owner.pid, 1, 0))  # -EAGAIN: its call is pending
    srv.wr([txn(1, 9, b"back")], 0)
    own.wr([], 8 + 75)  # room for its BR_TRANSACTION_COMPLETE, not for the call back
    back = first(own.wr([txn(0, 10, b"again")], 256), "BR_TRANSACTION")
    own.wr([], 256)  # its BR_FAILED_REPLY (until it is read, the thread's writes stop)
    own.wr([free(back["buffer"]), reply(0, b"r\0\0\0")], 256)
    rep = first(srv.wr([], 256), "BR_REPLY")
    srv.wr([free(rep["buffer"]), free(tr["buffer"]), reply(0, b"ok\0\0")], 256)
    own.wr([free(first(own.wr([], 256), "BR_REPLY")["buffer"])], 0)
    # the owner frozen: a sync call to it is refused (BR_FROZEN_REPLY), then it thaws
    srv.ioctl(BINDER_FREEZE, struct.pack("<III", owner.pid, 1, 0))
    srv.wr([txn(1, 7, b"frozen?")], 256)
    srv.ioctl(BINDER_GET_FROZEN_INFO, struct.pack("<III", owner.pid, 0, 0))
    srv.ioctl(BINDER_FREEZE, struct.pack("<III", owner.pid, 0, 0))
    # a third process gets a ref to the owner's node in a reply; then a reply with a bad handle
    thr = _client_open(env, third)
    s = srv.wr_async([], 256)
    t = thr.wr_async([txn(0, 2, b"give")], 256)
    tr = first(s.result(), "BR_TRANSACTION")
    srv.wr([free(tr["buffer"]), reply(0, flat_handle(1), offsets=(0,))], 256)
    rep = first(t.result(), "BR_REPLY")
    thr.wr([ref("INCREFS", 1), free(rep["buffer"])], 0)
    s = srv.wr_async([], 256)
    t = thr.wr_async([txn(0, 3, b"bad")], 256)
    tr = first(s.result(), "BR_TRANSACTION")
    srv.wr([free(tr["buffer"]), reply(0, flat_handle(9), offsets=(0,))], 256)
    t.result()
    # refused commands
    srv.wr([reply(0, b"none")], 256)  # no transaction to reply to
    srv.wr([request_death(9, 0xD9), dead_binder_done(0xBAD)], 0)
    thr.wr([txn(9, 4, b"x")], 256)  # a call to an invalid handle
    s = srv.wr_async([], 256)
    thr.wr([txn(0, 5, b"first")], 0)  # on its stack, unanswered
    thr.wr([txn(0, 6, b"second")], 256)  # a call from under it: bad transaction stack
    thr.wr([reply(0, b"no")], 256)  # a reply to its own call
    tr = first(s.result(), "BR_TRANSACTION")
    srv.wr([free(tr["buffer"]), reply(0, b"ok\0\0")], 256)
    res = thr.wr([], 256)
    thr.wr([free(first(res, "BR_REPLY")["buffer"])], 0)
    # the owner dies; the third process asks for a death notification on its dead node
    own.close()
    thr.wr([enter(), request_death(1, 0xD1)], 256)
    thr.wr([dead_binder_done(0xD1), clear_death(1, 0xD1)], 256)
    thr.close()
    srv.close()


def printers(env) -> None:  # noqa: ANN001
    """What debugfs's printers lock (tests/driver/test_spinlocks.py): every file read while there
    are dead nodes (one with refs from two procs), a proc with two threads, nodes with refs and
    death notifications, a sync call in flight carrying two nodes, one-way calls waiting on a
    proc's todo and in a node's async_todo (two nodes with async transactions: the transactions
    file prints both), a dead binder waiting on a proc's todo and one delivered; the files are
    longer than a page (seq_read runs their printers again)."""
    server = env.actor("S", threads=2)
    owner = env.actor("O")
    holder = env.actor("H")
    env.start()
    srv = server.open("binder")
    srv.version()
    srv.max_threads(4)
    assert srv.ctx_mgr() == 0
    s = srv.wr_async([enter()], 256)
    # the owner's three nodes, referenced by the server (death notifications on two)
    own = _client_open(env, owner)
    data = flat_binder(0x1000, 0x2000) + flat_binder(0x3000, 0x4000) + flat_binder(0x5000, 0x6000)
    o = own.wr_async([txn(0, 1, data, offsets=(0, 24, 48), flags=TF_ACCEPT_FDS)], 256)
    tr = first(s.result(), "BR_TRANSACTION")
    srv.wr([ref("INCREFS", 1), ref("ACQUIRE", 1), ref("INCREFS", 2), ref("ACQUIRE", 2), ref("INCREFS", 3),
            ref("ACQUIRE", 3), request_death(1, 0xD1), request_death(2, 0xD2), free(tr["buffer"]),
            reply(0, b"ok\0\0")], 0)
    rep = first(o.result(), "BR_REPLY")
    own.wr([node_done("INCREFS_DONE", 0x1000, 0x2000), node_done("ACQUIRE_DONE", 0x1000, 0x2000),
            node_done("INCREFS_DONE", 0x3000, 0x4000), node_done("ACQUIRE_DONE", 0x3000, 0x4000),
            node_done("INCREFS_DONE", 0x5000, 0x6000), node_done("ACQUIRE_DONE", 0x5000, 0x6000),
            free(rep["buffer"])], 0)
    srv.wr([], 256)
    # the holder gets a ref to the owner's first node, with a death notification
    hold = _client_open(env, holder)
    s = srv.wr_async([], 256)
    h = hold.wr_async([txn(0, 2, b"give")], 256)
    tr = first(s.result(), "BR_TRANSACTION")
    srv.wr([free(tr["buffer"]), reply(0, flat_handle(1), offsets=(0,))], 256)
    rep = first(h.result(), "BR_REPLY")
    hold.wr([ref("INCREFS", 1), ref("ACQUIRE", 1), request_death(1, 0xE1), free(rep["buffer"])], 0)
    # the holder's call in flight, carrying two of its nodes; the server sends one-way calls to them
    s = srv.wr_async([], 256)
    h = hold.wr_async([txn(0, 3, flat_binder(0x7000, 0x8000) + flat_binder(0x9000, 0xA000), offsets=(0, 24),
                           flags=TF_ACCEPT_FDS)], 256)
    tr = first(s.result(), "BR_TRANSACTION")
    srv.wr([txn(4, 10, b"to the first node", flags=TF_ONE_WAY), txn(5, 11, b"to the second", flags=TF_ONE_WAY)]
           + [txn(4 + i % 2, 12 + i, b"queued %d" % i, flags=TF_ONE_WAY) for i in range(24)], 256)
    # a second server thread, a looper; the owner dies: its nodes are dead, their deaths queued
    srv.version(thread=1)
    srv.wr([enter()], 0, thread=1)
    own.close()
    srv.wr([], 88, thread=1)  # one BR_DEAD_BINDER (no room for the next: 76 bytes must be left)
    env.snapshot("everything")
    # the call answered; the holder reads its work, the server its other death
    srv.wr([free(tr["buffer"]), reply(0, b"ok\0\0")], 256)
    hold_res = h.result()
    srv.wr([dead_binder_done(0xD1)], 256, thread=1)
    env.snapshot("answered")
    hold.wr([free(first(hold_res, "BR_REPLY")["buffer"])], 0)
    hold.close()
    srv.close()
    env.snapshot("end")


SCENARIOS = {"smoke": smoke, "objects_death": objects_death, "queues": queues, "procfiles": procfiles,
             "threads": threads, "log_wrap": log_wrap, "oneway_spam": oneway_spam, "paths": paths,
             "printers": printers}
DEVICES = {"procfiles": ("binder", "hwbinder")}
