"""A client that blocks in a binder read: ``python blocked_reader.py DEVICE`` (repo on PYTHONPATH).

It enters the looper (the first read returns at once: a new thread has looper_need_return), prints
``waiting``, then blocks in a read-only pread (the ABI's fast path). Ctrl-C (SIGINT) makes it print
``interrupted``; after SIGCONT from a stop it goes on waiting (os.pread retries on EINTR). A read
that fails prints ``error`` and the errno's name (ENOTCONN: the daemon went away), and exits 1.
"""

from __future__ import annotations

import errno
import os
import sys

from tests.fs.fsutil import key, write_read
from vbinder import uapi


def main() -> int:
    fd = os.open(sys.argv[1], os.O_RDWR)
    first = write_read(fd, uapi.U32.pack(uapi.BC_ENTER_LOOPER), 256)
    assert first.code == 0, first
    print("waiting", flush=True)
    try:
        os.pread(fd, 24, key())
    except KeyboardInterrupt:
        print("interrupted", flush=True)
        return 0
    except OSError as e:
        print("error", errno.errorcode.get(e.errno or 0, e.errno), flush=True)
        return 1
    print("woke", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
