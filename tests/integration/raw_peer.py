"""A process that speaks raw frames to a vbinder device (for BR-sequence tests through FUSE).

Usage: raw_peer.py server|client DEVICE [hold]   Prints one JSON line per read, as the oracle's
smoke does. With ``hold`` the server waits for a line on stdin before it replies (a call in
flight), and the client makes only the smoke's first call.
"""

from __future__ import annotations

import json
import os
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from tests.driver.harness import Client, FdFile, cmd  # noqa: E402
from vbinder import uapi  # noqa: E402

SMOKE_PAYLOAD = b"hello binder\0\0\0\0*\0\0\0"  # the oracle smoke's scenario A call


def report(what: str, r) -> None:  # noqa: ANN001
    print(json.dumps({"what": what, "ret": r.ret, "brs": r.names, "write_consumed": r.bwr[1],
                      "read_consumed": r.bwr[4]}), flush=True)


def main() -> None:
    role, dev = sys.argv[1], sys.argv[2]
    hold = sys.argv[3:] == ["hold"]
    tid = threading.get_native_id()
    c = Client(None, tid, file=FdFile(dev))
    c.mmap()
    if role == "server":
        assert c.ioctl(uapi.BINDER_SET_CONTEXT_MGR, uapi.S32.pack(0)).code == 0
        c.write_read(cmd(uapi.BC_ENTER_LOOPER), 0)
        print(json.dumps({"what": "ready"}), flush=True)
        r = c.write_read(b"", 256)
        report("server read", r)
        tr = r.brs[1].tr
        payload = c.payload(r.brs[1])
        print(json.dumps({"what": "payload", "data": payload.decode(), "sender_pid": tr[4], "code": tr[2],
                          "flags": tr[3]}), flush=True)
        if hold:
            sys.stdin.readline()
        reply = c.bc_transaction(0, 0, b"reply!\0\0\0\0\0\0", reply=True)
        r = c.write_read(cmd(uapi.BC_FREE_BUFFER, tr[8], fmt="Q") + reply, 256)
        report("server reply", r)
        sys.stdin.read()  # stay until told
    else:
        r = c.write_read(c.bc_transaction(0, 1, SMOKE_PAYLOAD, flags=uapi.TF_ACCEPT_FDS), 256)
        report("client call", r)
        print(json.dumps({"what": "reply", "data": c.payload(r.brs[-1]).decode()}), flush=True)
        if hold:
            return
        r = c.write_read(c.bc_transaction(7, 1, b"12345678"), 256)
        report("client bad handle", r)
        f = c.ioctl(uapi.BINDER_GET_EXTENDED_ERROR, b"\0" * 12)
        print(json.dumps({"what": "ee", "value": list(uapi.EXTENDED_ERROR.unpack(f.arg))}), flush=True)


if __name__ == "__main__":
    main()
