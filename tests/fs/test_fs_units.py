"""The FUSE adapter's pieces without FUSE: the inode table, /proc parsing, the watchdog, the CLI."""

from __future__ import annotations

import errno
import os
import signal
import stat
import threading
from pathlib import Path

import pytest

from vbinder import cli
from vbinder.driver import Driver
from vbinder.fs import mounts
from vbinder.fs.daemon import build_tree
from vbinder.fs.host import Host, ThreadStatus, read_status
from vbinder.fs.tree import ROOT_INODE, Device, Dir, Generated, Symlink, Tree
from vbinder.fs.watchdog import Watch, Watchdog

# -- the inode table ------------------------------------------------------------------------------


def test_tree_layout() -> None:
    t = build_tree(Driver(devices=["binder", "vndbinder"]), 1000, 1001)
    assert sorted(t.root.children) == [b"dev", b"proc", b"sys"]
    dev = t.resolve("dev/binder")
    assert isinstance(dev, Device) and dev.device == "binder" and dev.st_mode == stat.S_IFREG | 0o666
    assert t.resolve("dev/hwbinder") is None
    link = t.resolve("proc/binder")
    assert isinstance(link, Symlink) and link.target == b"../sys/kernel/debug/binder"
    assert t.size(link) == len(link.target)
    for d in ("sys/kernel/debug/binder/proc", "sys/module/binder/parameters",
              "sys/module/binder_alloc/parameters"):
        assert isinstance(t.resolve(d), Dir)
    assert t.nlink(t.root) == 2 + 3
    assert t.nlink(t.resolve("sys/module")) == 2 + 2  # type: ignore[arg-type]
    assert t.lookup(ROOT_INODE, b"..") is t.root


def test_generated_files_and_removal() -> None:
    t = Tree(0, 0)
    value = [b"7\n"]
    f = t.add_generated("sys/module/binder/parameters/debug_mask", lambda: value[0], value.append)
    ro = t.add_generated("sys/kernel/debug/binder/state", lambda: b"binder state:\n")
    assert f.st_mode == stat.S_IFREG | 0o644 and ro.st_mode == stat.S_IFREG | 0o444
    assert isinstance(f, Generated) and f.read is not None and f.read() == b"7\n"
    with pytest.raises(ValueError):
        t.add_generated("sys/kernel/debug/binder/state", lambda: b"")
    p = t.add_generated("sys/kernel/debug/binder/proc/42", lambda: b"proc 42\n")
    p.nlookup = 2  # the kernel knows it
    t.remove("sys/kernel/debug/binder/proc/42")
    assert t.resolve("sys/kernel/debug/binder/proc/42") is None
    assert p.inode in t.nodes  # until forgotten
    t.forget(p.inode, 2)
    assert p.inode not in t.nodes
    again = t.add_generated("sys/kernel/debug/binder/proc/42", lambda: b"")
    assert again.inode != p.inode  # inodes are never reused


# -- /proc --------------------------------------------------------------------------------------------


def test_read_status_of_this_thread() -> None:
    st = read_status(threading.get_native_id())
    assert st is not None and st.tgid == os.getpid() and st.state in "RS"
    assert Host().tgid(threading.get_native_id()) == os.getpid()
    assert Host().start_time(os.getpid()) is not None
    assert read_status(2**22 + 12345) is None


def test_blocked_signal_is_not_deliverable() -> None:
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
    try:
        signal.pthread_kill(threading.get_ident(), signal.SIGUSR1)
        st = read_status(threading.get_native_id())
        assert st is not None
        assert st.sigpnd & (1 << (signal.SIGUSR1 - 1))
        assert not st.deliverable()
    finally:
        handler = signal.signal(signal.SIGUSR1, signal.SIG_IGN)  # discard it, then restore
        signal.pthread_sigmask(signal.SIG_SETMASK, old)
        signal.signal(signal.SIGUSR1, handler)


# -- the watchdog ---------------------------------------------------------------------------------


class FakeHost(Host):
    def __init__(self) -> None:
        super().__init__(proc="/nonexistent")
        self.threads: dict[int, ThreadStatus] = {}

    def status(self, tid: int) -> ThreadStatus | None:
        return self.threads.get(tid)

    def thread_states(self, tgid: int) -> list[str]:
        return [s.state for s in self.threads.values() if s.tgid == tgid]


def _st(tgid: int, state: str = "S", sigpnd: int = 0, shdpnd: int = 0, sigblk: int = 0) -> ThreadStatus:
    return ThreadStatus(tgid, state, sigpnd, shdpnd, sigblk)


SIGINT_BIT = 1 << (signal.SIGINT - 1)


def test_watchdog_scan() -> None:
    host = FakeHost()
    host.threads = {10: _st(10), 11: _st(10), 12: _st(10, sigblk=SIGINT_BIT), 20: _st(20)}
    dog = Watchdog(host)
    watches = {tid: Watch(tid=tid, tgid=None) for tid in (11, 12, 20, 30)}
    for w in watches.values():
        dog.add(w)
    dog.scan()
    assert watches[30].result == errno.EINTR  # gone
    assert all(watches[t].result is None for t in (11, 12, 20))
    # A process-directed SIGINT: every waiter of the group that does not block it.
    host.threads = {t: _st(s.tgid, s.state, s.sigpnd, SIGINT_BIT if s.tgid == 10 else 0, s.sigblk)
                    for t, s in host.threads.items()}
    dog.scan()
    assert watches[11].result == errno.EINTR
    assert watches[12].result is None and watches[20].result is None
    # A group stop: all waiters of the group, whatever they block.
    host.threads[10] = _st(10, state="T")
    dog.scan()
    assert watches[12].result == errno.EINTR and watches[20].result is None
    # A thread-directed signal.
    host.threads[20] = _st(20, sigpnd=1 << (signal.SIGKILL - 1))
    dog.scan()
    assert watches[20].result == errno.EINTR


def test_watchdog_group_watch() -> None:
    """proc/kmsg readers are watched through their opener's process."""
    dog = Watchdog(Host())
    me = Watch(tid=None, tgid=os.getpid())
    gone = Watch(tid=None, tgid=2**22 + 12345)
    dog.add(me)
    dog.add(gone)
    dog.scan()
    assert me.result is None
    assert gone.result == 0  # end of file


# -- mounts and the command line ----------------------------------------------------------------------


def test_mountinfo_unescape() -> None:
    assert mounts._unescape(r"/tmp/a\040b\134c") == "/tmp/a b\\c"
    assert mounts._unescape("/plain") == "/plain"


def test_find_mount_root() -> None:
    m = mounts.find_mount("/")
    assert m is not None and m.mountpoint == "/"


def test_cli_arguments() -> None:
    args = cli.parser().parse_args(["mount", "m", "--devices", "binder,vndbinder", "--debug-mask", "0x3ff"])
    assert args.devices == ["binder", "vndbinder"] and args.debug_mask == 0x3FF
    assert not args.foreground and not args.allow_other
    args = cli.parser().parse_args(["mount", "m"])
    assert args.devices is None and args.debug_mask == 7  # None: the profile's devices
    assert args.kernel == "6.1" and args.ratelimit is None  # None: the profile's kernel's
    args = cli.parser().parse_args(["mount", "m", "--kernel", "3.x", "--no-ratelimit"])
    assert args.kernel == "3.x" and args.ratelimit is False
    for bad in (["--devices", "a/b"], ["--devices", "x,x"], ["--debug-mask", "nope"]):
        with pytest.raises(SystemExit):
            cli.parser().parse_args(["mount", "m", *bad])


def test_check_mountable_messages(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(mounts.MountError, match="does not exist"):
        mounts.check_mountable(str(tmp_path / "nope"), False)
    (tmp_path / "file").write_text("")
    with pytest.raises(mounts.MountError, match="not a directory"):
        mounts.check_mountable(str(tmp_path / "file"), False)
    with pytest.raises(mounts.MountError, match="busy: already a mount"):
        mounts.check_mountable("/proc", False)
    real_exists = os.path.exists
    monkeypatch.setattr(os.path, "exists", lambda p: p != "/dev/fuse" and real_exists(p))
    with pytest.raises(mounts.MountError, match="no /dev/fuse"):
        mounts.check_mountable(str(tmp_path), False)
