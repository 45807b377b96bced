"""Helpers of the FUSE tests: ioctls as frames over pwrite/pread (DESIGN.md "The device ABI")."""

from __future__ import annotations

import os
import threading
import time

from vbinder import abi, uapi

WRITE_BUF = 0x1000_0000
READ_BUF = 0x2000_0000


def key() -> int:
    return abi.key(threading.get_native_id())


def ioctl(fd: int, cmd: int, arg: bytes = b"", segments: list[tuple[int, bytes]] | None = None
          ) -> abi.Frame:
    """One ioctl: pwrite the request, pread the whole reply; the Frame's ``code`` is ``ret``."""
    k = key()
    request = abi.encode_request(cmd, arg, segments or [])
    assert os.pwrite(fd, request, k) == len(request)
    return read_reply(fd, k)


def read_reply(fd: int, k: int) -> abi.Frame:
    head = os.pread(fd, abi.HEADER_SIZE, k)
    total = abi.reply_total(head)
    rest = os.pread(fd, total - len(head), k + len(head)) if total > len(head) else b""
    return abi.decode_reply(head + rest)


def write_read(fd: int, write: bytes, read_size: int) -> abi.Frame:
    """BINDER_WRITE_READ with ``write`` as the write buffer."""
    arg = uapi.WRITE_READ.pack(len(write), 0, WRITE_BUF, read_size, 0, READ_BUF)
    return ioctl(fd, uapi.BINDER_WRITE_READ, arg, [(WRITE_BUF, write)] if write else [])


def wait_in_fuse(pid: int, timeout: float = 5.0) -> None:
    """Wait until some thread of ``pid`` sleeps in a FUSE request (its wchan says so)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for tid in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{tid}/wchan") as f:
                    wchan = f.read()
            except OSError:
                continue
            if "fuse" in wchan or "request_wait_answer" in wchan:
                return
        time.sleep(0.02)
    time.sleep(0.5)  # wchan may be hidden ("0"): give the read time to reach the daemon


def state(pid: int) -> str:
    with open(f"/proc/{pid}/stat", "rb") as f:
        stat = f.read()
    return chr(stat[stat.rfind(b")") + 2])
