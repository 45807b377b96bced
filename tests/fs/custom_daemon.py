"""``python custom_daemon.py MOUNTPOINT``: vbinder with test additions, in the foreground.

- device writes that start with ``BOOM`` raise RuntimeError (a handler's bug: EIO, fact 9);
- ``sys/module/binder/parameters/test_param``: a writable generated file holding a number
  (``echo 8 > file``: O_TRUNC + write, fact 11), ``test_ro``: a read-only one.
"""

from __future__ import annotations

import errno
import sys
from typing import Any

from vbinder import cli
from vbinder.driver import BinderError
from vbinder.fs import daemon
from vbinder.fs.host import Host
from vbinder.fs.tree import Tree

PARAMS = "sys/module/binder/parameters"


def faulty_driver(devices: list[str], debug_mask: int, host: Host) -> Any:
    driver = daemon.make_driver(devices, debug_mask, host)
    real_open = driver.open

    def open_(*args: Any, **kwargs: Any) -> Any:
        f = real_open(*args, **kwargs)
        real_write = f.write

        def write(offset: int, data: bytes) -> int:
            if data.startswith(b"BOOM"):
                raise RuntimeError("a bug in the driver")
            return real_write(offset, data)

        f.write = write
        return f

    driver.open = open_
    return driver


def tree_with_params(driver: Any, uid: int, gid: int) -> Tree:
    tree = build_tree(driver, uid, gid)
    value = [0]

    def store(data: bytes) -> None:
        try:
            value[0] = int(data.strip(), 0)
        except ValueError:
            raise BinderError(errno.EINVAL, "not a number") from None

    tree.add_generated(f"{PARAMS}/test_param", lambda: b"%d\n" % value[0], store)
    tree.add_generated(f"{PARAMS}/test_ro", lambda: b"read only\n")
    return tree


build_tree = daemon.build_tree

if __name__ == "__main__":
    daemon.driver_factory = faulty_driver
    daemon.build_tree = tree_with_params
    sys.exit(cli.main(["mount", sys.argv[1], "--foreground"]))
