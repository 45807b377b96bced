"""A binder client in plain Python, as people write one for the kernel: ``fcntl.ioctl`` on the
device and libc's ``mmap`` through ctypes, nothing from vbinder.

    python py_client.py [DEVICE]

It registers an object of its own with the service manager (addService), asks for it back (the
driver hands a process its own node as a binder, not a handle), and lists the services; an event
per step on stdout, as the C programs print theirs.
"""

from __future__ import annotations

import ctypes
import fcntl
import os
import struct
import sys

BINDER_WRITE_READ = 0xC0306201
BINDER_VERSION = 0xC0046209
BC_TRANSACTION = 0x40406300
BC_FREE_BUFFER = 0x40086303
BC_ACQUIRE_DONE = 0x40106309
BC_INCREFS_DONE = 0x40106308
BR_NOOP, BR_REPLY, BR_TRANSACTION_COMPLETE = 0x720C, 0x80407203, 0x7206
BR_INCREFS, BR_ACQUIRE, BR_DEAD_REPLY, BR_FAILED_REPLY = 0x80107207, 0x80107208, 0x7205, 0x7211
BR_NAMES = {BR_NOOP: "BR_NOOP", BR_REPLY: "BR_REPLY", BR_TRANSACTION_COMPLETE: "BR_TRANSACTION_COMPLETE",
            BR_INCREFS: "BR_INCREFS", BR_ACQUIRE: "BR_ACQUIRE", BR_DEAD_REPLY: "BR_DEAD_REPLY",
            BR_FAILED_REPLY: "BR_FAILED_REPLY"}
BINDER_TYPE_BINDER, BINDER_TYPE_HANDLE = 0x73622A85, 0x73682A85
PROT_READ, MAP_PRIVATE = 1, 2
MAP_SIZE = (1 << 20) - 2 * 4096
NODE = 0x7000

libc = ctypes.CDLL(None, use_errno=True)
libc.mmap.restype = ctypes.c_void_p
libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]


def say(text: str) -> None:
    os.write(1, f"python: {text}\n".encode())


def str16(s: str) -> bytes:
    raw = s.encode("utf-16-le") + b"\0\0"
    return struct.pack("<i", len(s)) + raw + b"\0" * (-len(raw) % 4)


def token() -> bytes:
    return struct.pack("<IiI", 0x80000000, -1, 0x53595354) + str16("android.os.IServiceManager")


class Binder:
    def __init__(self, dev: str) -> None:
        self.fd = os.open(dev, os.O_RDWR | os.O_CLOEXEC)
        version = bytearray(4)
        fcntl.ioctl(self.fd, BINDER_VERSION, version)
        say(f"BINDER_VERSION {struct.unpack('<i', version)[0]}")
        self.map = libc.mmap(None, MAP_SIZE, PROT_READ, MAP_PRIVATE, self.fd, 0)
        if self.map in (None, ctypes.c_void_p(-1).value):
            raise OSError(ctypes.get_errno(), "mmap")
        self.rbuf = ctypes.create_string_buffer(512)
        self.pending = b""  # commands for the next write

    def write_read(self, write: bytes) -> list[tuple[int, bytes]]:
        wbuf = ctypes.create_string_buffer(write, max(len(write), 1))
        bwr = bytearray(struct.pack("<QQQQQQ", len(write), 0, ctypes.addressof(wbuf), len(self.rbuf), 0,
                                    ctypes.addressof(self.rbuf)))
        fcntl.ioctl(self.fd, BINDER_WRITE_READ, bwr)  # the struct comes back in place
        _ws, wc, _wb, _rs, rc, _rb = struct.unpack("<QQQQQQ", bwr)
        assert wc == len(write), (wc, len(write))
        out, pos = [], 0
        while pos + 4 <= rc:
            cmd = struct.unpack_from("<I", self.rbuf.raw, pos)[0]
            size = (cmd >> 16) & 0x3FFF
            out.append((cmd, self.rbuf.raw[pos + 4:pos + 4 + size]))
            pos += 4 + size
        return out

    def call(self, handle: int, code: int, data: bytes, offsets: list[int]) -> tuple[list[str], bytes]:
        dbuf = ctypes.create_string_buffer(data, len(data))
        obuf = ctypes.create_string_buffer(struct.pack(f"<{len(offsets)}Q", *offsets), max(8 * len(offsets), 1))
        tr = struct.pack("<QQIIiIQQQQ", handle, 0, code, 0x10, 0, 0, len(data), 8 * len(offsets),
                         ctypes.addressof(dbuf), ctypes.addressof(obuf))
        write, brs, reply = self.pending + struct.pack("<I", BC_TRANSACTION) + tr, [], None
        self.pending = b""
        while reply is None:
            for cmd, payload in self.write_read(write):
                brs.append(BR_NAMES.get(cmd, hex(cmd)))
                if cmd in (BR_INCREFS, BR_ACQUIRE):
                    self.pending += struct.pack("<I", BC_INCREFS_DONE if cmd == BR_INCREFS else BC_ACQUIRE_DONE)
                    self.pending += payload
                elif cmd == BR_REPLY:
                    f = struct.unpack("<QQIIiIQQQQ", payload)
                    reply = ctypes.string_at(f[8], f[6])  # the buffer, in the mapped area
                    self.pending += struct.pack("<IQ", BC_FREE_BUFFER, f[8])
                elif cmd in (BR_DEAD_REPLY, BR_FAILED_REPLY):
                    reply = b""
            write = self.pending
            self.pending = b""
        self.pending = write
        return brs, reply


def main() -> int:
    dev = sys.argv[1] if len(sys.argv) > 1 else "/dev/binder"
    b = Binder(dev)
    obj = struct.pack("<IIQQ", BINDER_TYPE_BINDER, 0x13, NODE, NODE + 1) + struct.pack("<i", 0x0C)
    add = token() + str16("vbinder.test.python")
    brs, reply = b.call(0, 3, add + obj + struct.pack("<ii", 0, 8), [len(add)])
    say(f"addService: [{','.join(brs)}], status {struct.unpack_from('<i', reply)[0]}")
    brs, reply = b.call(0, 2, token() + str16("vbinder.test.python"), [])
    status, otype, _flags, value, cookie = struct.unpack_from("<iIIQQ", reply)
    kind = {BINDER_TYPE_BINDER: "our own binder", BINDER_TYPE_HANDLE: "a handle"}.get(otype, hex(otype))
    say(f"checkService: status {status}, {kind}, ptr {value:#x} cookie {cookie:#x}")
    brs, reply = b.call(0, 4, token() + struct.pack("<i", 0xF), [])
    count = struct.unpack_from("<i", reply, 4)[0]
    say(f"listServices: [{','.join(brs)}], {count} service(s)")
    say("done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
