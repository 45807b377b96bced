#!/usr/bin/env python3
"""Catch 6.1 printing a transaction_log entry whose transaction is still in binder_transaction.

    tests/oracle/run.sh -o /tmp/out tests/driver/oracle_scripts/incomplete_race.py

A child process reads transaction_log and failed_transaction_log in a loop while the parent
sends large oneway transactions (256 KiB to copy) to a context manager (another child that
reads and frees them) as fast as it can; an entry read between binder_transaction_log_add and
the write of debug_id_done prints " (incomplete)".
Writes $ORACLE_OUT/incomplete_race.json with the distinct incomplete lines seen (at most 20).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "oracle"))
import binderlib as bl  # noqa: E402

DBG = "/sys/kernel/debug/binder/"
SECONDS = 6.0


def reader(wfd: int) -> None:
    seen: dict[str, int] = {}
    reads = 0
    end = time.monotonic() + SECONDS
    while time.monotonic() < end:
        for name in ("transaction_log", "failed_transaction_log"):
            with open(DBG + name) as f:
                text = f.read()
            reads += 1
            for line in text.splitlines():
                if line.endswith("(incomplete)"):
                    key = name + ": " + line
                    seen[key] = seen.get(key, 0) + 1
    os.write(wfd, json.dumps({"reads": reads, "incomplete": dict(list(seen.items())[:20]),
                              "distinct": len(seen)}).encode())
    os._exit(0)


def server(go_r: int, ready_w: int) -> None:
    b = bl.Binder("/dev/binder")
    b.version()
    b.set_context_mgr()
    b.write_read([bl.cmd(bl.BC_ENTER_LOOPER)], 0)
    os.write(ready_w, b"r")
    end = time.monotonic() + SECONDS + 1
    while time.monotonic() < end:
        r = b.write_read([], 256)
        frees = [bl.bc_ptr(bl.BC_FREE_BUFFER, f["buffer"]) for n, f in r["returns"] if n == "BR_TRANSACTION"]
        if frees:
            b.write_read(frees, 0)
    os._exit(0)


def main() -> None:
    go_r, go_w = os.pipe()
    ready_r, ready_w = os.pipe()
    server_pid = os.fork()
    if server_pid == 0:
        server(go_r, ready_w)
    os.read(ready_r, 1)
    r, w = os.pipe()
    if os.fork() == 0:
        os.close(r)
        reader(w)
    os.close(w)
    b = bl.Binder("/dev/binder")
    b.version()
    sent = 0
    data = b"x" * (256 << 10)
    end = time.monotonic() + SECONDS
    while time.monotonic() < end:
        b.write_read([bl.bc_transaction(0, 1, data, flags=bl.TF_ONE_WAY)], 64)
        sent += 1
    data = b""
    while chunk := os.read(r, 65536):
        data += chunk
    os.kill(server_pid, signal.SIGKILL)  # it waits for work that no longer comes
    os.wait()
    os.wait()
    out = json.loads(data)
    out["sent"] = sent
    path = os.path.join(os.environ.get("ORACLE_OUT", "."), "incomplete_race.json")
    with open(path, "w") as f:
        json.dump(out, f, indent=1)
    print(json.dumps(out, indent=1)[:3000])


if __name__ == "__main__":
    main()
