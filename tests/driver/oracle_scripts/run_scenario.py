#!/usr/bin/env python3
"""Run a scenario of scenarios.py on the real 6.1 driver (inside the oracle VM).

    tests/oracle/run.sh -o /tmp/out [-d binder,hwbinder] tests/driver/oracle_scripts/run_scenario.py NAME

Writes $ORACLE_OUT/NAME.json: the actors' pids, every debugfs snapshot (state, stats,
transactions, transaction_log, failed_transaction_log, the proc/ listing and each proc/<pid>)
and a trace of what each call returned (BR names, return codes). Each actor is a forked child
that runs binderlib calls sent over a pipe, so that one script orders the steps of several
processes exactly; all actors are forked before any opens a device (oracle README).
"""

from __future__ import annotations

import ctypes
import fcntl
import json
import os
import pickle
import re
import select
import struct
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "oracle"))
import binderlib as bl  # noqa: E402
import scenarios  # noqa: E402

DBG = "/sys/kernel/debug/binder"
SETTLE = 0.4  # binder_release's work is deferred; a blocked call needs time to reach its wait


def _send(fd: int, obj: object) -> None:
    data = pickle.dumps(obj)
    os.write(fd, struct.pack("<I", len(data)) + data)


def _recv(fd: int) -> object:
    def exactly(n: int) -> bytes:
        buf = b""
        while len(buf) < n:
            chunk = os.read(fd, n - len(buf))
            if not chunk:
                raise EOFError
            buf += chunk
        return buf
    (n,) = struct.unpack("<I", exactly(4))
    return pickle.loads(exactly(n))


def _summary(r: dict) -> dict:
    return {"rc": r["rc"], "errno": r["errno"], "write_consumed": r["write_consumed"],
            "read_consumed": r["read_consumed"], "returns": [n for n, _ in r["returns"]]}


def _serve(rfd: int, wfd: int, files: list, put) -> None:  # noqa: ANN001
    """One thread of an actor: run the calls sent over its pipe."""
    _send(wfd, threading.get_native_id())
    while True:
        op, args = _recv(rfd)
        try:
            if op == "open":
                files.append(bl.Binder("/dev/" + args[0]))
                res: object = len(files) - 1
            elif op == "version":
                res = files[args[0]].version()
            elif op == "max_threads":
                res = files[args[0]].set_max_threads(args[1])
            elif op == "ctx_mgr":
                try:
                    res = files[args[0]].set_context_mgr()
                except OSError as e:
                    res = -e.errno
            elif op == "extended_error":
                res = files[args[0]].extended_error()
            elif op == "node_info_for_ref":
                try:
                    res = files[args[0]].node_info_for_ref(args[1])
                except OSError as e:
                    res = -e.errno
            elif op == "ioctl":  # (cmd, argument): (ret or -errno, the argument after)
                buf = bytearray(args[2])
                try:
                    res = [fcntl.ioctl(files[args[0]].fd, args[1], buf, True), buf.hex()]
                except OSError as e:
                    res = [-e.errno, buf.hex()]
            elif op == "poll":  # binder_poll, not waiting
                p = select.poll()
                p.register(files[args[0]].fd, select.POLLIN)
                res = [ev for _fd, ev in p.poll(0)]
            elif op == "thread_exit":
                res = files[args[0]].thread_exit()
            elif op == "flush":  # close a dup of the fd: binder_flush
                os.close(os.dup(files[args[0]].fd))
                res = 0
            elif op == "wr":
                res = files[args[0]].write_read(scenarios.encode(args[1], put), args[2])
                res.pop("read")
            elif op == "close":
                files[args[0]].close()
                res = 0
            elif op == "exit":
                _send(wfd, 0)
                os._exit(0)
            else:
                res = f"unknown op {op!r}"
        except Exception as e:  # noqa: BLE001 - reported to the parent
            res = f"EXCEPTION {e!r}"
        _send(wfd, res)


def _actor_main(pipes: list[tuple[int, int]], euid: int | None) -> None:
    files: list[bl.Binder] = []
    keep: list[object] = []  # transaction data stays alive (the kernel reads it at the call)
    if euid is not None:
        os.setresgid(euid, euid, euid)
        os.setresuid(euid, euid, euid)

    def put(data: bytes) -> int:
        buf = ctypes.create_string_buffer(data, len(data))
        keep.append(buf)
        return ctypes.addressof(buf)

    for rfd, wfd in pipes[1:]:
        threading.Thread(target=_serve, args=(rfd, wfd, files, put), daemon=True).start()
    _serve(pipes[0][0], pipes[0][1], files, put)


class Pending:
    def __init__(self, file: File, thread: int) -> None:
        self.file = file
        self.thread = thread

    def result(self) -> dict:
        r = _recv(self.file.actor.pipes[self.thread][0])
        self.file.actor.env.trace.append([self.file.actor.name, "wr_async result", _summary(r)])
        return r  # type: ignore[return-value]


class File:
    def __init__(self, actor: Actor, fi: int) -> None:
        self.actor = actor
        self.fi = fi

    def _call(self, op: str, *args: object, thread: int = 0) -> object:
        res = self.actor.call(op, self.fi, *args, thread=thread)
        self.actor.env.trace.append([self.actor.name, op, _summary(res) if isinstance(res, dict) and "returns" in res
                                     else res])
        return res

    def version(self, thread: int = 0) -> object:
        return self._call("version", thread=thread)

    def max_threads(self, n: int) -> object:
        return self._call("max_threads", n)

    def ctx_mgr(self) -> object:
        return self._call("ctx_mgr")

    def extended_error(self) -> object:
        return self._call("extended_error")

    def node_info_for_ref(self, handle: int) -> object:
        return self._call("node_info_for_ref", handle)

    def ioctl(self, cmd: int, arg: bytes) -> object:
        return self._call("ioctl", cmd, arg)

    def poll(self) -> object:
        return self._call("poll")

    def thread_exit(self, thread: int = 0) -> object:
        return self._call("thread_exit", thread=thread)

    def flush(self) -> None:
        self._call("flush")
        time.sleep(SETTLE)  # binder_flush's work is deferred

    def wr(self, cmds: list[tuple], read_size: int = 0, thread: int = 0) -> dict:
        return self._call("wr", cmds, read_size, thread=thread)  # type: ignore[return-value]

    def wr_async(self, cmds: list[tuple], read_size: int = 256, thread: int = 0) -> Pending:
        _send(self.actor.pipes[thread][1], ("wr", (self.fi, cmds, read_size)))
        time.sleep(SETTLE)
        return Pending(self, thread)

    def close(self) -> None:
        self._call("close")
        time.sleep(SETTLE)


class Actor:
    def __init__(self, env: Env, name: str, euid: int | None, threads: int) -> None:
        self.env = env
        self.name = name
        self.euid = euid
        self.nthreads = threads
        self.pid = 0
        self.tids: list[int] = []
        self.pipes: list[tuple[int, int]] = []  # per thread: (read results, write calls)

    def call(self, op: str, *args: object, thread: int = 0) -> object:
        rfd, wfd = self.pipes[thread]
        _send(wfd, (op, args))
        return _recv(rfd)

    def open(self, device: str = "binder") -> File:
        fi = self.call("open", device)
        self.env.trace.append([self.name, "open " + device, fi if isinstance(fi, str) else 0])
        return File(self, fi)  # type: ignore[arg-type]


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read()
    except OSError as e:
        return f"<{os.strerror(e.errno or 0)}>"


class Env:
    def __init__(self) -> None:
        self.actors: list[Actor] = []
        self.snapshots: list[list[object]] = []
        self.trace: list[list[object]] = []

    def actor(self, name: str, euid: int | None = None, threads: int = 1) -> Actor:
        a = Actor(self, name, euid, threads)
        self.actors.append(a)
        return a

    def start(self) -> None:
        for a in self.actors:
            child, parent = [], []
            for _ in range(a.nthreads):
                to_r, to_w = os.pipe()
                from_r, from_w = os.pipe()
                child.append((to_r, from_w))
                parent.append((from_r, to_w))
            pid = os.fork()
            if pid == 0:
                for fds in parent:
                    os.close(fds[0])
                    os.close(fds[1])
                _actor_main(child, a.euid)
            for fds in child:
                os.close(fds[0])
                os.close(fds[1])
            a.pid, a.pipes = pid, parent
            a.tids = [_recv(rfd) for rfd, _ in parent]  # type: ignore[misc]

    def snapshot(self, tag: str) -> None:
        files = {n: _read(os.path.join(DBG, n))
                 for n in ("state", "stats", "transactions", "transaction_log", "failed_transaction_log")}
        pids = sorted(os.listdir(os.path.join(DBG, "proc")), key=int)
        files["proc/"] = " ".join(pids)
        for p in pids:
            files["proc/" + p] = _read(os.path.join(DBG, "proc", p))
        self.snapshots.append([tag, files])

    def finish(self) -> None:
        for a in self.actors:
            a.call("exit")
            os.waitpid(a.pid, 0)


TRACING = "/sys/kernel/tracing"


def _trace_locks() -> None:
    """Every binder_debug(BINDER_DEBUG_SPINLOCKS, ...) call, whatever the mask, in the trace ring:
    a kprobe on binder_debug (variadic, so never inlined), its mask and the lock helper's
    __func__ and line (the third and fourth arguments: rdx and rcx on x86-64). binder_debug's
    output is rate-limited; the trace is not."""
    def write(path: str, text: str) -> None:
        with open(os.path.join(TRACING, path), "w") as f:
            f.write(text)

    write("buffer_size_kb", "16384")
    write("kprobe_events", "p:vbinder/spin binder_debug mask=%di:u32 func=+0(%dx):string line=%cx:s32\n")
    write("events/vbinder/spin/filter", "mask == 16384")
    write("events/vbinder/spin/enable", "1")
    write("tracing_on", "1")


def _lock_lines() -> list[list[object]]:
    """The traced lock lines: [tid, function, line], in order."""
    with open(os.path.join(TRACING, "tracing_on"), "w") as f:
        f.write("0")
    out: list[list[object]] = []
    with open(os.path.join(TRACING, "trace")) as f:
        for line in f:
            m = re.search(r"-(\d+)\s+\[\d+\].*func=\"(\w+)\" line=(-?\d+)", line)
            if m:
                out.append([int(m.group(1)), m.group(2), int(m.group(3))])
    return out


def main() -> None:
    name = sys.argv[1]
    spinlocks = os.environ.get("ORACLE_SPINLOCKS") == "1"
    if spinlocks:
        _trace_locks()
    env = Env()
    scenarios.SCENARIOS[name](env)
    env.finish()
    out = {"scenario": name, "kernel": os.uname().release,
           "devices": os.environ.get("BINDER_DEVICES", ""),
           "pids": {a.name: a.pid for a in env.actors},
           "tids": {a.name: a.tids for a in env.actors},
           "snapshots": env.snapshots, "trace": env.trace}
    if spinlocks:
        out["runner"] = os.getpid()
        out["spinlocks"] = _lock_lines()
    path = os.path.join(os.environ.get("ORACLE_OUT", "."), name + ".json")
    with open(path, "w") as f:
        json.dump(out, f, indent=1)
    print("wrote", path)


if __name__ == "__main__":
    main()
