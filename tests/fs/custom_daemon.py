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


class _Delegate:
    """Everything of the wrapped object, but what the subclass overrides (the driver's classes
    may be compiled: their instances take no new attributes)."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class _FaultyFile(_Delegate):
    def write(self, offset: int, data: bytes) -> int:
        if data.startswith(b"BOOM"):
            raise RuntimeError("a bug in the driver")
        return self._inner.write(offset, data)


class _FaultyDriver(_Delegate):
    def open(self, *args: Any, **kwargs: Any) -> Any:
        return _FaultyFile(self._inner.open(*args, **kwargs))


def faulty_driver(devices: list[str] | None, debug_mask: int, host: Host, **options: Any) -> Any:
    return _FaultyDriver(daemon.make_driver(devices, debug_mask, host, **options))


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
