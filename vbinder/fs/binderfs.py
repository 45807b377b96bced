"""The mount's ``dev/binderfs``: 6.1's binderfs layout over the driver's :class:`Binderfs`.

``binder-control`` (BINDER_CTL_ADD over the device ABI's frames: docs/binderfs.md), one device
file per binderfs device, ``features/`` with 6.1's values and ``binder_logs/`` with the debugfs
files. The devices of the ``devices`` parameter are the same devices as ``dev/<name>`` (Android's
``/dev/binder`` is a link into binderfs); the ones BINDER_CTL_ADD makes exist only here. Removing
and renaming a device go through the driver's model, which answers as 6.1 does.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping

from ..driver import Driver
from ..driver.binderfs import CONTROL, FEATURES, Binderfs
from .tree import Control, Device, Dir, Tree

ROOT = "dev/binderfs"
LOGS = f"{ROOT}/binder_logs"
PROC_DIR = f"{LOGS}/proc"
# Modes: binderfs makes binder-control and its devices 0600; the devices of the ``devices``
# parameter are 0666 here, as Android's init (and the oracle's) chmods them for everyone.
CONTROL_MODE = 0o600
NEW_DEVICE_MODE = 0o600
DEVICE_MODE = 0o666


def _feature(value: int) -> bytes:
    return f"{value}\n".encode()


class BinderfsTree:
    """Keeps ``dev/binderfs`` in the tree in step with the driver's binderfs."""

    def __init__(self, tree: Tree, fs: Binderfs) -> None:
        self.tree = tree
        self.fs = fs
        self.root = tree.mkdir(ROOT)
        self.root.unlink = self.unlink
        self.root.rename = self.rename

    def device_created(self, name: bytes, mode: int = NEW_DEVICE_MODE) -> None:
        dev = self.fs.devices[name]
        self.tree.add_child(self.root, name, Device, mode, device=dev.context.name, context=dev.context)

    def unlink(self, name: bytes) -> None:
        self.fs.unlink(name)  # raises what binderfs_unlink would
        self.tree.remove_node(self.tree.nodes[self.root.children[name]])

    def rename(self, old: bytes, new: bytes, flags: int) -> None:
        replaced = self.fs.rename(old, new, flags)
        if replaced is not None:
            self.tree.remove_node(self.tree.nodes[self.root.children[replaced]])
        self.tree.move_child(self.root, old, new)


def build(tree: Tree, driver: Driver, logs: Mapping[str, Callable[[], bytes]]) -> BinderfsTree:
    """Add ``dev/binderfs`` to ``tree``; ``logs`` are binder_logs' files (the debugfs renderers)."""
    bfs = BinderfsTree(tree, driver.binderfs)
    tree.add_child(bfs.root, CONTROL, Control, CONTROL_MODE, binderfs=driver.binderfs,
                   created=bfs.device_created)
    for device in list(driver.binderfs.devices):
        bfs.device_created(device, DEVICE_MODE)
    for feature, value in FEATURES.items():
        tree.add_generated(f"{ROOT}/features/{feature}", functools.partial(_feature, value), mode=0o444)
    for log_name, render in logs.items():
        tree.add_generated(f"{LOGS}/{log_name}", render, mode=0o444)
    proc = tree.mkdir(PROC_DIR)
    assert isinstance(proc, Dir)
    return bfs
