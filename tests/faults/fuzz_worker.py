"""``python fuzz_worker.py DEVICE SEED``: hostile bytes on a blocking device fd, until stdin closes.

A process of the device-ABI fuzz test (tests/faults/test_fuzz_mount.py): it opens DEVICE itself
(its own binder proc) and, in a loop, writes random and mutated request frames in random splits
at its own key, other keys and random offsets, and reads replies at random positions. A read
that waits is ended after a moment by SIGALRM (the daemon answers EINTR, as to Ctrl-C). Prints
``ready``, then at the end one JSON line: the errno names it got, counted, and what it should
never get (``bad``: EIO is a daemon's bug, ENOTCONN a dead daemon, anything but OSError ours).
"""

from __future__ import annotations

import collections
import errno
import json
import os
import random
import select
import signal
import struct
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from vbinder import abi, uapi  # noqa: E402

OK_ERRNOS = {errno.EINVAL, errno.EBUSY, errno.ENOMSG, errno.EAGAIN, errno.ENOMEM, errno.ECANCELED,
             errno.EINTR, errno.EFAULT}
IOCTLS = sorted([*uapi.IOCTLS.values(), abi.VBINDER_MMAP, abi.VBINDER_MUNMAP, abi.VBINDER_ABI_VERSION])
BC = sorted(uapi.BC_CODES.values())
MIN_OPS = int(os.environ.get("VBINDER_FUZZ_WORKER_OPS", "300"))


class Timeout(Exception):
    pass


_armed = [False]


def on_alarm(_signum: int, _frame: object) -> None:
    if _armed[0]:  # only around a read: the alarm must not fire into the bookkeeping
        _armed[0] = False
        raise Timeout


def bc_stream(rng: random.Random) -> bytes:
    out = b""
    for _ in range(rng.randrange(5)):
        code = rng.choice(BC) if rng.random() < 0.9 else rng.getrandbits(32)
        n = uapi.ioc_size(code) if code in uapi.BC_NAMES else rng.randrange(16)
        out += struct.pack("<I", code) + rng.randbytes(n)
    return out


def frame(rng: random.Random) -> bytes:
    kind = rng.randrange(5)
    if kind == 0:
        return rng.randbytes(rng.randrange(200))
    if kind in (1, 2):
        write = bc_stream(rng)
        waddr = rng.choice([0x1000, 0x7000_0000_0000, 0, 0x5000_0000])
        read_size = rng.choice([0, 0, 8, 64, 256])
        arg = uapi.WRITE_READ.pack(len(write) + rng.choice([0, 0, 4, 100]), rng.randrange(3), waddr, read_size,
                                   rng.randrange(3), 0x2000_0000)
        segs = [(waddr, write)] if rng.random() < 0.8 else []
        segs += [(0x9000_0000 + 0x1000 * i, rng.randbytes(rng.randrange(64))) for i in range(rng.randrange(3))]
        return abi.encode_request(uapi.BINDER_WRITE_READ, arg, segs)
    cmd = rng.choice(IOCTLS) if rng.random() < 0.8 else rng.getrandbits(32)
    if cmd == uapi.BINDER_FREEZE:
        cmd = uapi.BINDER_VERSION  # a freeze of a random pid would be refused; of ours, it would wait
    size = uapi.ioc_size(cmd) if rng.random() < 0.8 else rng.randrange(64)
    out = bytearray(abi.encode_request(cmd, rng.randbytes(size)))
    if kind == 4:
        for _ in range(rng.randrange(1, 4)):
            out[rng.randrange(len(out))] = rng.randrange(256)
    return bytes(out)


def main() -> None:
    dev, seed = sys.argv[1], int(sys.argv[2])
    rng = random.Random(seed)
    signal.signal(signal.SIGALRM, on_alarm)
    fd = os.open(dev, os.O_RDWR)
    own = threading.get_native_id()
    results: collections.Counter[str] = collections.Counter()
    bad: list[str] = []
    print("ready", flush=True)

    def do(what: str, fn) -> None:  # noqa: ANN001
        try:
            try:
                if what == "read":
                    _armed[0] = True
                    signal.setitimer(signal.ITIMER_REAL, 0.15)
                fn()
            finally:
                _armed[0] = False
                signal.setitimer(signal.ITIMER_REAL, 0)
            results[f"{what} ok"] += 1
        except Timeout:
            results[f"{what} waited"] += 1
        except OSError as e:
            name = errno.errorcode.get(e.errno or 0, str(e.errno))
            results[f"{what} {name}"] += 1
            if e.errno not in OK_ERRNOS:
                bad.append(f"{what}: {e!r}")
        except Exception as e:  # noqa: BLE001 - reported
            bad.append(f"{what}: {e!r}")

    ops = 0
    while ops < MIN_OPS or not select.select([sys.stdin], [], [], 0)[0]:
        ops += 1
        # Writes go to this thread's key, or another's; reads only to ours, or to a tid that cannot
        # exist (above pid_max): the watchdog watches the key's thread, so a read at the key of
        # another live thread would not be interrupted by our own signals.
        tid = own if rng.random() < 0.8 else rng.choice([own + 1, 1, rng.randrange(1 << 22, 1 << 23)])
        key = abi.key(tid)
        read_key = key if tid == own or tid >= 1 << 22 else abi.key(own)
        data = frame(rng)
        if rng.random() < 0.9:
            cuts = sorted(rng.sample(range(1, max(2, len(data))), min(rng.randrange(3), max(0, len(data) - 1))))
            pos = 0
            for end in [*cuts, len(data)]:
                chunk, at = data[pos:end], pos if rng.random() < 0.95 else rng.randrange(1 << 20)
                do("write", lambda c=chunk, a=at, k=key: os.pwrite(fd, c, k + a))
                pos = end
        if rng.random() < 0.7:
            size = rng.choice([abi.HEADER_SIZE, 4096, 1 << 16, rng.randrange(1, 300)])
            at = 0 if rng.random() < 0.8 else rng.randrange(1 << 12)
            do("read", lambda s=size, a=at, k=read_key: os.pread(fd, s, k + a))
    os.close(fd)
    print(json.dumps({"results": results, "bad": bad[:20]}), flush=True)


if __name__ == "__main__":
    main()
