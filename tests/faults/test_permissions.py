"""Isolation and credentials (issue "Nothing stuck, nothing lost"), with a user other than root.

The daemon runs as root; other processes run as ``nobody`` (setpriv). sender_pid and
sender_euid come from the kernel (the FUSE request context at open), never from the frames; a
process reaches only the handles it was given; parameter files are writable only by root; a
mount is private to its user unless ``--allow-other``, and then the device files behave like
Android's 0666 /dev/binder.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.faults.conftest import Server
from tests.faults.support import FaultDaemon, kill_all, python, read_line, spawn_peer, wait_for_baseline
from tests.support import fuse_usable

pytestmark = [
    pytest.mark.skipif(fuse_usable() is not None, reason=str(fuse_usable())),
    pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None,
                       reason="needs root and setpriv, to run processes as another user"),
]

NOBODY = 65534
PARAMS = ("sys/module/binder/parameters", "sys/module/binder_alloc/parameters")


def _mount(tmp_path: Path, *options: str) -> Iterator[FaultDaemon]:
    # pytest's tmp_path is private to root: the other user needs a mount point it can reach.
    base = Path(tempfile.mkdtemp(prefix="vbinder-perm-"))
    base.chmod(0o755)
    mnt = base / "mnt"
    mnt.mkdir()
    d = FaultDaemon(mnt, tmp_path / "daemon.log", *options)
    try:
        yield d
        wait_for_baseline(mnt)
    finally:
        if d.proc.poll() is None:
            d.stop()
        else:
            d.kill()
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def shared_mount(tmp_path: Path) -> Iterator[FaultDaemon]:
    """A mount with --allow-other."""
    yield from _mount(tmp_path, "--allow-other")


@pytest.fixture
def private_mount(tmp_path: Path) -> Iterator[FaultDaemon]:
    yield from _mount(tmp_path)


def test_device_files_are_0666_with_allow_other(shared_mount: FaultDaemon) -> None:
    for name in ("binder", "hwbinder", "vndbinder"):
        assert stat.S_IMODE(os.stat(shared_mount.mountpoint / "dev" / name).st_mode) == 0o666
    r = python(textwrap.dedent("""
        import os, sys
        from tests.fs.fsutil import ioctl
        from vbinder import uapi
        fd = os.open(sys.argv[1], os.O_RDWR)
        print(os.geteuid(), ioctl(fd, uapi.BINDER_VERSION, bytes(4)).code)
    """), shared_mount.device, user=NOBODY)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == [str(NOBODY), "0"]


def test_mount_is_private_without_allow_other(private_mount: FaultDaemon) -> None:
    r = python(textwrap.dedent("""
        import os, sys
        for what, f in (("stat", os.stat), ("open", lambda p: os.open(p, os.O_RDWR))):
            try:
                f(sys.argv[1])
                print(what, "ok")
            except OSError as e:
                print(what, e.errno)
    """), private_mount.device, user=NOBODY)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["stat", "13", "open", "13"]  # EACCES


FORGED_CALL = textwrap.dedent("""
    import os, struct, sys, threading
    from tests.driver.harness import Client, FdFile
    from vbinder import uapi
    from vbinder_client import Parcel
    sys.path.insert(0, os.path.join(os.environ["PYTHONPATH"].split(os.pathsep)[0], "tests", "faults"))
    from peers import DESCRIPTOR, WHOAMI
    c = Client(None, threading.get_native_id(), file=FdFile(sys.argv[1]))
    c.mmap()
    p = Parcel()
    p.write_interface_token(DESCRIPTOR)
    data = p.data()
    # sender_pid 1 and sender_euid 0 in the frame: the driver must not believe them
    tr = uapi.TRANSACTION_DATA.pack(0, 0, WHOAMI, 0, 1, 0, len(data), 0, c.put(data), 0)
    r = c.write_read(struct.pack("<I", uapi.BC_TRANSACTION) + tr, 256)
    while "BR_REPLY" not in r.names:
        r = c.write_read(b"", 256)
    reply = Parcel(c.payload(r.brs[-1]))
    assert reply.read_int32() == 0  # no exception
    print(os.getpid(), reply.read_int32(), reply.read_int32())
""")


def test_sender_pid_and_euid_come_from_the_kernel(shared_mount: FaultDaemon, tmp_path: Path) -> None:
    server = Server(shared_mount.device, tmp_path)
    try:
        r = python(FORGED_CALL, shared_mount.device, user=NOBODY)
        assert r.returncode == 0, r.stderr
        pid, sender_pid, sender_euid = map(int, r.stdout.split())
        assert (sender_pid, sender_euid) == (pid, NOBODY)
        r = python(FORGED_CALL, shared_mount.device)  # and as root: its own pid, euid 0
        assert r.returncode == 0, r.stderr
        pid, sender_pid, sender_euid = map(int, r.stdout.split())
        assert (sender_pid, sender_euid) == (pid, 0)
    finally:
        kill_all(server.proc)


def test_a_process_reaches_only_the_handles_it_was_given(shared_mount: FaultDaemon, tmp_path: Path) -> None:
    """A holder's object is reachable by the one given a handle to it, by nobody else."""
    dev = shared_mount.device
    server = Server(dev, tmp_path)
    holder = spawn_peer("holder", dev, "h", log=tmp_path / "holder.err")
    watcher = None
    try:
        assert read_line(holder).startswith("ready"), (tmp_path / "holder.err").read_text()
        watcher = spawn_peer("watcher", dev, "h", log=tmp_path / "watcher.err")
        assert read_line(watcher) == f"ready {holder.pid}\n", (tmp_path / "watcher.err").read_text()
        r = python(textwrap.dedent("""
            import sys
            from vbinder_client import FailedTransactionError, Parcel, ProcessState
            ps = ProcessState.init(sys.argv[1])
            print("0", "ok" if ps.context_proxy().ping() else "failed")
            for h in range(1, 9):
                try:
                    ps.ipc().transact(h, 0x5F504E47, Parcel())
                    print(h, "reached")
                except FailedTransactionError:
                    print(h, "failed")
        """), dev, user=NOBODY)
        assert r.returncode == 0, r.stderr
        lines = r.stdout.splitlines()
        assert lines[0] == "0 ok"
        assert lines[1:] == [f"{h} failed" for h in range(1, 9)]  # BR_FAILED_REPLY: invalid handle
    finally:
        kill_all(*[p for p in (holder, watcher, server.proc) if p is not None])


def test_parameter_files_are_writable_only_by_root(shared_mount: FaultDaemon) -> None:
    mnt = shared_mount.mountpoint
    files = [p for d in PARAMS for p in sorted((mnt / d).iterdir())]
    assert {p.name for p in files} == {"debug_mask", "stop_on_user_error", "devices"}
    r = python(textwrap.dedent("""
        import os, sys
        for path in sys.argv[1:]:
            try:
                os.close(os.open(path, os.O_WRONLY))
                w = "writable"
            except OSError as e:
                w = e.errno
            try:
                with open(path, "rb") as f:
                    f.read()
                r = "readable"
            except OSError as e:
                r = e.errno
            print(os.path.basename(path), w, r)
    """), *map(str, files), user=NOBODY)
    assert r.returncode == 0, r.stderr
    assert len(r.stdout.splitlines()) == len(files)
    for line in r.stdout.splitlines():
        name, w, rd = line.split()
        mode = stat.S_IMODE(os.stat(next(p for p in files if p.name == name)).st_mode)
        assert w == "13", (name, oct(mode))  # EACCES, whatever the mode: the files are root's
        assert rd == ("readable" if mode & 0o004 else "13"), (name, oct(mode))
    # root writes the writable ones (debug_mask: the driver's log then says more)
    mask = mnt / "sys/module/binder/parameters/debug_mask"
    old = mask.read_text()
    mask.write_text("8\n")
    assert mask.read_text() == "8\n"
    mask.write_text(old)
    assert mask.read_text() == old
