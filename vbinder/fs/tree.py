"""The inode table of the mount: directories, device files, generated files, symlinks, streams.

Inodes are plain data; :mod:`vbinder.fs.ops` serves them. A generated file is a callable that
produces its bytes when the file is opened (and optionally one that takes a write), so a debugfs
or parameter file is one :meth:`Tree.add_generated` call. Inode numbers are never reused, so a
file removed while the kernel still knows it (lookup count > 0) cannot be confused with a new one.
"""

from __future__ import annotations

import stat
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

ROOT_INODE = 1  # pyfuse3.ROOT_INODE (FUSE_ROOT_ID)


@dataclass(slots=True, eq=False)
class Inode:
    """One inode. ``mode`` holds only the permission bits; the type comes from the subclass."""

    inode: int
    name: bytes
    parent: int
    mode: int
    nlookup: int = 0  # the kernel's lookup count (FUSE forget protocol)
    unlinked: bool = False

    file_type = 0

    @property
    def st_mode(self) -> int:
        return self.file_type | self.mode


@dataclass(slots=True, eq=False)
class Dir(Inode):
    children: dict[bytes, int] = field(default_factory=dict)
    subdirs: int = 0
    # A directory whose entries users make and remove (tracefs ``instances/``): ``mkdir(name)``
    # builds the new directory, ``rmdir(name)`` takes it down; both raise BinderError to refuse.
    mkdir: Callable[[str], object] | None = None
    rmdir: Callable[[str], object] | None = None
    # A directory whose entries users remove or rename (binderfs's root): ``unlink(name)`` and
    # ``rename(old, new, flags)`` update the tree, or raise BinderError to refuse.
    unlink: Callable[[bytes], object] | None = None
    rename: Callable[[bytes, bytes, int], object] | None = None
    file_type = stat.S_IFDIR


@dataclass(slots=True, eq=False)
class Device(Inode):
    """A binder device file (``dev/binder``): each open is one binder proc."""

    device: str = ""
    context: object | None = None  # a binderfs device's driver Context (opened instead of ``device``)
    file_type = stat.S_IFREG


@dataclass(slots=True, eq=False)
class Control(Inode):
    """binderfs's ``binder-control``: each open is a :class:`vbinder.driver.binderfs.ControlFile`;
    ``created(name)`` is called for each device its BINDER_CTL_ADD makes."""

    binderfs: object | None = None  # the driver's Binderfs
    created: Callable[[bytes], object] | None = None
    file_type = stat.S_IFREG


@dataclass(slots=True, eq=False)
class Generated(Inode):
    """A file whose bytes ``read()`` produces at open; writable when ``write`` is given."""

    read: Callable[[], bytes] | None = None
    write: Callable[[bytes], object] | None = None
    write_as: Callable[[bytes, int, int], object] | None = None  # takes the opener's (tid, tgid) too
    truncate: Callable[[], object] | None = None  # an O_TRUNC open (``echo > trace``)
    file_type = stat.S_IFREG


class StreamSource(Protocol):
    """Where a stream's data comes from: numbered lines (or pages), and a wake-up at the next one."""

    ended: bool  # nothing will come any more: a reader that has read everything gets end-of-file
    lines: bool  # text, delivered in whole lines when they fit (else: binary, as it comes)

    def on_next(self, wake: Callable[[], None]) -> None:
        """Call ``wake`` once, when the next line is added (or the source ends)."""

    def start(self) -> int:
        """The sequence number a new reader starts at."""

    def data_since(self, seq: int) -> tuple[bytes, int]:
        """What came from ``seq`` on, and the sequence number to ask for next."""


@dataclass(slots=True, eq=False)
class Stream(Inode):
    """A file read as an endless stream of lines (``proc/kmsg``, ``trace_pipe``) or pages."""

    source: StreamSource | None = None
    file_type = stat.S_IFREG


@dataclass(slots=True, eq=False)
class Symlink(Inode):
    target: bytes = b""
    file_type = stat.S_IFLNK


N = TypeVar("N", bound="Inode")


def _split(path: str) -> list[bytes]:
    return [p.encode() for p in path.strip("/").split("/") if p]


class Tree:
    """The inode table: every node by inode, directories by name."""

    def __init__(self, uid: int, gid: int, now_ns: int | None = None) -> None:
        self.uid = uid
        self.gid = gid
        self.time_ns = time.time_ns() if now_ns is None else now_ns
        self.nodes: dict[int, Inode] = {}
        self._next_inode = ROOT_INODE
        root = self._new(Dir, b"", ROOT_INODE, 0o755)
        assert root.inode == ROOT_INODE
        root.nlookup = 1  # the root is never forgotten

    # -- building ------------------------------------------------------------------------------------

    def _new(self, cls: type[N], name: bytes, parent: int, mode: int, **kw: object) -> N:
        node = cls(inode=self._next_inode, name=name, parent=parent, mode=mode, **kw)  # type: ignore[arg-type]
        self._next_inode += 1
        self.nodes[node.inode] = node
        return node

    def mkdir(self, path: str, mode: int = 0o755) -> Dir:
        """The directory at ``path``, created with its parents if missing."""
        d = self.root
        for part in _split(path):
            ino = d.children.get(part)
            if ino is None:
                sub = self._new(Dir, part, d.inode, mode)
                d.children[part] = sub.inode
                d.subdirs += 1
                d = sub
            else:
                node = self.nodes[ino]
                if not isinstance(node, Dir):
                    raise ValueError(f"{path}: {part.decode()} is not a directory")
                d = node
        return d

    def _add(self, path: str, cls: type[N], mode: int, **kw: object) -> N:
        parts = _split(path)
        if not parts:
            raise ValueError("empty path")
        return self.add_child(self.mkdir("/".join(p.decode() for p in parts[:-1])), parts[-1], cls, mode, **kw)

    def add_child(self, parent: Dir, name: bytes, cls: type[N], mode: int, **kw: object) -> N:
        """A new entry ``name`` (any bytes but ``/``) in ``parent``."""
        if name in parent.children:
            raise ValueError(f"{name!r} exists")
        node = self._new(cls, name, parent.inode, mode, **kw)
        parent.children[name] = node.inode
        if isinstance(node, Dir):
            parent.subdirs += 1
        return node

    def move_child(self, parent: Dir, old: bytes, new: bytes) -> None:
        """Rename the entry ``old`` of ``parent`` to ``new`` (which must not exist)."""
        ino = parent.children.pop(old)
        parent.children[new] = ino
        self.nodes[ino].name = new

    def add_device(self, path: str, device: str, mode: int = 0o666) -> Device:
        return self._add(path, Device, mode, device=device)

    def add_generated(self, path: str, read: Callable[[], bytes] | None,
                      write: Callable[[bytes], object] | None = None, mode: int | None = None,
                      **kw: object) -> Generated:
        """A generated file: ``read`` runs at each open for reading, ``write`` takes each write.

        The default mode is 0444, or 0644 when ``write`` is given (as sysfs and debugfs show).
        ``write`` raises :class:`vbinder.driver.BinderError` to fail the write with its errno.
        """
        if mode is None:
            writable = write is not None or kw.get("write_as") is not None
            mode = (0o444 if read is not None else 0) | (0o200 if writable else 0)
        return self._add(path, Generated, mode, read=read, write=write, **kw)

    def add_stream(self, path: str, source: StreamSource, mode: int = 0o400) -> Stream:
        return self._add(path, Stream, mode, source=source)

    def add_symlink(self, path: str, target: str) -> Symlink:
        return self._add(path, Symlink, 0o777, target=target.encode())

    def remove(self, path: str, recursive: bool = False) -> None:
        """Unlink ``path`` (a file, or an empty directory, or with ``recursive`` a whole tree);
        each inode lives on until forgotten."""
        node = self.resolve(path)
        if node is None or node.inode == ROOT_INODE:
            raise ValueError(f"{path}: no such entry")
        if recursive and isinstance(node, Dir):
            for name in list(node.children):
                self.remove(f"{path}/{name.decode()}", recursive=True)
        self.remove_node(node)

    def remove_node(self, node: Inode) -> None:
        """Unlink ``node`` from its directory (which ``remove`` describes)."""
        if isinstance(node, Dir) and node.children:
            raise ValueError(f"{node.name!r}: directory not empty")
        parent = self.nodes[node.parent]
        assert isinstance(parent, Dir)
        del parent.children[node.name]
        if isinstance(node, Dir):
            parent.subdirs -= 1
        node.unlinked = True
        if node.nlookup == 0:
            del self.nodes[node.inode]

    # -- queries -------------------------------------------------------------------------------------

    @property
    def root(self) -> Dir:
        root = self.nodes[ROOT_INODE]
        assert isinstance(root, Dir)
        return root

    def resolve(self, path: str) -> Inode | None:
        node: Inode = self.root
        for part in _split(path):
            if not isinstance(node, Dir) or part not in node.children:
                return None
            node = self.nodes[node.children[part]]
        return node

    def lookup(self, parent: int, name: bytes) -> Inode | None:
        d = self.nodes.get(parent)
        if not isinstance(d, Dir):
            return None
        if name == b".":
            return d
        if name == b"..":
            return self.nodes[d.parent] if d.inode != ROOT_INODE else d
        ino = d.children.get(name)
        return self.nodes[ino] if ino is not None else None

    def nlink(self, node: Inode) -> int:
        return 2 + node.subdirs if isinstance(node, Dir) else 1

    def size(self, node: Inode) -> int:
        """Sizes are 0, as in sysfs and debugfs, except a symlink's (its target's length)."""
        return len(node.target) if isinstance(node, Symlink) else 0

    def forget(self, inode: int, n: int) -> None:
        node = self.nodes.get(inode)
        if node is None or inode == ROOT_INODE:
            return
        node.nlookup = max(0, node.nlookup - n)
        if node.nlookup == 0 and node.unlinked:
            del self.nodes[inode]
