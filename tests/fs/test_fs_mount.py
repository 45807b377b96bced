"""A real daemon through FUSE: the tree, device files, frames, waits, signals, mount lifecycle."""

from __future__ import annotations

import contextlib
import errno
import os
import select
import signal
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fs.fsutil import ioctl, key, state, wait_in_fuse, write_read
from tests.support import Daemon, daemon_env, fuse_usable, is_mounted
from vbinder import abi, uapi

HERE = Path(__file__).resolve().parent

pytestmark = pytest.mark.skipif(fuse_usable() is not None, reason=str(fuse_usable()))


def vbinder_cmd(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "vbinder", *args], stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=timeout, env=daemon_env())


# -- the tree ---------------------------------------------------------------------------------------


def test_tree(vbinder_mount: Path) -> None:
    m = vbinder_mount
    uid, gid = os.getuid(), os.getgid()
    dirs = ["dev", "sys", "sys/kernel/debug/binder", "sys/kernel/debug/binder/proc",
            "sys/module/binder/parameters", "sys/module/binder_alloc/parameters", "proc",
            "dev/binderfs", "dev/binderfs/binder_logs", "dev/binderfs/binder_logs/proc", "dev/binderfs/features"]
    for d in dirs:
        st = os.lstat(m / d)
        assert stat.S_ISDIR(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o755, d
        assert (st.st_uid, st.st_gid) == (uid, gid)
        subdirs = sum(1 for e in os.scandir(m / d) if e.is_dir(follow_symlinks=False))
        assert st.st_nlink == 2 + subdirs, d
    assert sorted(os.listdir(m)) == ["dev", "proc", "sys"]
    assert sorted(os.listdir(m / "dev")) == ["binder", "binderfs", "hwbinder", "vndbinder"]
    for name in ("binder", "hwbinder", "vndbinder"):
        st = os.lstat(m / "dev" / name)
        assert stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o666
        assert (st.st_size, st.st_nlink, st.st_uid, st.st_gid) == (0, 1, uid, gid)
        assert abs(st.st_mtime - time.time()) < 60
    link = m / "proc" / "binder"
    assert stat.S_ISLNK(os.lstat(link).st_mode)
    assert os.readlink(link) == "../sys/kernel/debug/binder"
    debugfs = ["failed_transaction_log", "proc", "state", "stats", "transaction_log", "transactions"]
    assert sorted(os.listdir(link)) == debugfs  # the oracle's list (samples/stock/report.txt)
    for name in debugfs[:1] + debugfs[2:]:
        st = os.lstat(m / "sys/kernel/debug/binder" / name)
        assert stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o444 and st.st_size == 0
    params = {"binder": {"debug_mask": 0o644, "devices": 0o444, "stop_on_user_error": 0o644},
              "binder_alloc": {"debug_mask": 0o644}}
    for module, files in params.items():
        for name, mode in files.items():
            assert stat.S_IMODE(os.lstat(m / "sys/module" / module / "parameters" / name).st_mode) == mode
    assert os.path.samefile(link, m / "sys/kernel/debug/binder")
    kmsg = os.lstat(m / "proc" / "kmsg")
    assert stat.S_ISREG(kmsg.st_mode) and stat.S_IMODE(kmsg.st_mode) == 0o400
    ls = subprocess.run(["ls", "-lR", str(m)], capture_output=True, text=True, check=True).stdout
    assert "-rw-rw-rw- 1" in ls and "binder -> ../sys/kernel/debug/binder" in ls


def test_fsname_in_proc_mounts(vbinder_mount: Path) -> None:
    with open("/proc/mounts") as f:
        entries = [line.split() for line in f]
    assert any(e[0] == "vbinder" and e[1] == str(vbinder_mount) and e[2].startswith("fuse")
               for e in entries)


def test_tree_is_read_only(vbinder_mount: Path) -> None:
    with pytest.raises(OSError):
        (vbinder_mount / "dev" / "new").write_bytes(b"")
    with pytest.raises(OSError):
        os.mkdir(vbinder_mount / "dev" / "sub")
    with pytest.raises(OSError):
        os.unlink(vbinder_mount / "dev" / "binder")


def test_only_given_devices(tmp_path: Path) -> None:
    mnt = tmp_path / "m"
    mnt.mkdir()
    d = Daemon(mnt, tmp_path / "log", [sys.executable, "-m", "vbinder", "mount", str(mnt),
                                       "--foreground", "--devices", "binder,vndbinder"])
    try:
        assert sorted(os.listdir(mnt / "dev")) == ["binder", "binderfs", "vndbinder"]
        assert sorted(os.listdir(mnt / "dev" / "binderfs")) == [
            "binder", "binder-control", "binder_logs", "features", "vndbinder"]
    finally:
        d.stop()


def _thread_nices(pid: int) -> set[int]:
    """The nice value of every thread of ``pid`` (field 19 of /proc/PID/task/TID/stat)."""
    nices = set()
    for tid in os.listdir(f"/proc/{pid}/task"):
        stat_line = Path(f"/proc/{pid}/task/{tid}/stat").read_text()
        nices.add(int(stat_line.rsplit(")", 1)[1].split()[16]))
    return nices


@pytest.mark.skipif(os.geteuid() != 0, reason="raising a priority needs root (CAP_SYS_NICE)")
def test_daemon_runs_ahead_of_its_clients(vbinder_daemon: Daemon) -> None:
    from vbinder.fs.daemon import NICE

    assert os.getpriority(os.PRIO_PROCESS, 0) > NICE  # the test itself runs at a lower priority
    assert _thread_nices(vbinder_daemon.pid) == {NICE}  # every thread, pyfuse3's and trio's too


@pytest.mark.skipif(os.geteuid() != 0, reason="raising a priority needs root (CAP_SYS_NICE)")
def test_nice_option(tmp_path: Path) -> None:
    mine = os.getpriority(os.PRIO_PROCESS, 0)
    for value, expected in ((mine - 3, mine - 3), (mine + 3, mine)):  # only ever raised
        mnt = tmp_path / f"m{value}"
        mnt.mkdir()
        d = Daemon(mnt, tmp_path / f"log{value}",
                   [sys.executable, "-m", "vbinder", "mount", str(mnt), "--foreground", "--nice", str(value)])
        try:
            assert _thread_nices(d.pid) == {expected}
        finally:
            d.stop()


# -- device files -----------------------------------------------------------------------------------


def test_open_close(vbinder_mount: Path) -> None:
    for name in ("binder", "hwbinder", "vndbinder"):
        for flags in (os.O_RDWR, os.O_RDONLY, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC):
            fd = os.open(vbinder_mount / "dev" / name, flags)
            os.close(fd)


def test_binder_version(vbinder_mount: Path) -> None:
    fd = os.open(vbinder_mount / "dev" / "binder", os.O_RDWR)
    try:
        request = abi.encode_request(uapi.BINDER_VERSION, bytes(4))
        k = abi.key(__import__("threading").get_native_id())
        assert os.pwrite(fd, request, k) == len(request)
        reply = abi.decode_reply(os.pread(fd, 4096, k))
        assert reply.code == 0
        assert uapi.VERSION.unpack(reply.arg) == (uapi.BINDER_CURRENT_PROTOCOL_VERSION,)
        assert uapi.BINDER_CURRENT_PROTOCOL_VERSION == 8
    finally:
        os.close(fd)


def test_abi_version(vbinder_mount: Path) -> None:
    fd = os.open(vbinder_mount / "dev" / "hwbinder", os.O_RDWR)
    try:
        reply = ioctl(fd, abi.VBINDER_ABI_VERSION, bytes(4))
        assert reply.code == 0 and uapi.U32.unpack(reply.arg) == (1,)
    finally:
        os.close(fd)


def test_malformed_frame_then_ok(vbinder_mount: Path) -> None:
    fd = os.open(vbinder_mount / "dev" / "binder", os.O_RDWR)
    try:
        bad = bytearray(abi.encode_request(uapi.BINDER_VERSION, bytes(4)))
        bad[0:4] = b"XXXX"
        with pytest.raises(OSError) as e:
            os.pwrite(fd, bytes(bad), key())
        assert e.value.errno == errno.EINVAL
        with pytest.raises(OSError) as e:  # a total that disagrees with the frame
            os.pwrite(fd, abi.encode_request(uapi.BINDER_VERSION, bytes(4)) + bytes(8), key())
        assert e.value.errno == errno.EINVAL
        reply = ioctl(fd, uapi.BINDER_VERSION, bytes(4))
        assert reply.code == 0 and uapi.VERSION.unpack(reply.arg) == (8,)
    finally:
        os.close(fd)


def test_unknown_ioctl_is_einval_in_ret(vbinder_mount: Path) -> None:
    fd = os.open(vbinder_mount / "dev" / "binder", os.O_RDWR)
    try:
        assert ioctl(fd, uapi.IOWR("b", 99, 4), bytes(4)).code == -errno.EINVAL
    finally:
        os.close(fd)


@pytest.mark.parametrize("flag", [os.O_APPEND, os.O_DIRECT])
def test_refused_open_flags(vbinder_mount: Path, flag: int) -> None:
    with pytest.raises(OSError) as e:
        os.open(vbinder_mount / "dev" / "binder", os.O_RDWR | flag)
    assert e.value.errno == errno.EINVAL


def test_poll(vbinder_mount: Path) -> None:
    fd = os.open(vbinder_mount / "dev" / "binder", os.O_RDWR)
    try:
        p = select.poll()
        p.register(fd, select.POLLIN)
        # A new thread polls readable (6.1: looper_need_return); any ioctl clears that.
        assert p.poll(0) == [(fd, select.POLLIN)]
        ioctl(fd, uapi.BINDER_VERSION, bytes(4))
        assert p.poll(0) == []
        k = key()
        request = abi.encode_request(uapi.BINDER_VERSION, bytes(4))
        os.pwrite(fd, request, k)  # the reply is produced and unread: POLLIN
        assert p.poll(1000) == [(fd, select.POLLIN)]
        os.pread(fd, 4096, k)
        assert p.poll(0) == []
    finally:
        os.close(fd)


@pytest.fixture
def custom_daemon(tmp_path: Path) -> Iterator[Daemon]:
    """A daemon with test additions (tests/fs/custom_daemon.py)."""
    mnt = tmp_path / "m"
    mnt.mkdir()
    d = Daemon(mnt, tmp_path / "log", [sys.executable, str(HERE / "custom_daemon.py"), str(mnt)])
    try:
        yield d
    finally:
        d.stop()


def test_handler_bug_is_eio_not_a_dead_mount(custom_daemon: Daemon) -> None:
    fd = os.open(custom_daemon.mountpoint / "dev" / "binder", os.O_RDWR)
    try:
        with pytest.raises(OSError) as e:
            os.pwrite(fd, b"BOOM" + bytes(60), key())
        assert e.value.errno == errno.EIO
        assert ioctl(fd, uapi.BINDER_VERSION, bytes(4)).code == 0
    finally:
        os.close(fd)
    assert "write failed: answering EIO" in custom_daemon.log_text()
    assert "RuntimeError: a bug in the driver" in custom_daemon.log_text()


def test_generated_parameter_files(custom_daemon: Daemon) -> None:
    """Fact 4 (direct_io: size 0, yet cat shows the bytes) and fact 11 (echo N > file)."""
    params = custom_daemon.mountpoint / "sys/module/binder/parameters"
    param = params / "test_param"
    st = os.stat(param)
    assert st.st_size == 0 and stat.S_IMODE(st.st_mode) == 0o644
    assert stat.S_IMODE(os.stat(params / "test_ro").st_mode) == 0o444

    def sh(cmd: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, cwd=params)

    assert sh("cat test_param").stdout == "0\n"
    r = sh("echo 8 > test_param")
    assert r.returncode == 0, r.stderr
    assert sh("cat test_param").stdout == "8\n"
    r = sh("echo nonsense > test_param")
    assert r.returncode != 0 and "Invalid argument" in r.stderr
    assert sh("cat test_param").stdout == "8\n"
    r = sh("echo 1 > test_ro")  # root passes default_permissions: open refuses
    assert r.returncode != 0 and "Permission denied" in r.stderr
    assert sh("cat test_ro").stdout == "read only\n"


def _wchan(tid: int) -> str:
    try:
        with open(f"/proc/self/task/{tid}/wchan") as f:
            return f.read()
    except OSError:
        return ""


ONEWAY_TO_MANAGER = """
import os, sys
from tests.fs.fsutil import WRITE_BUF, ioctl
from vbinder import uapi
fd = os.open(sys.argv[1], os.O_RDWR)
data = 0x3000_0000
tr = uapi.TRANSACTION_DATA.pack(0, 0, 1, uapi.TF_ONE_WAY, 0, 0, 8, 0, data, 0)
write = uapi.U32.pack(uapi.BC_TRANSACTION) + tr
reply = ioctl(fd, uapi.BINDER_WRITE_READ, uapi.WRITE_READ.pack(len(write), 0, WRITE_BUF, 0, 0, 0),
              [(WRITE_BUF, write), (data, bytes(8))])
assert reply.code == 0 and uapi.WRITE_READ.unpack(reply.arg)[1] == len(write), reply
"""


def test_poll_wakes_when_work_arrives(vbinder_mount: Path) -> None:
    """A looper blocked in poll(2) on the context manager's fd wakes when a transaction comes."""
    mgr = os.open(vbinder_mount / "dev" / "binder", os.O_RDWR)
    try:
        mmap_arg = abi.VBINDER_MMAP_ARG.pack(0, (1 << 20) - 8192, abi.PROT_READ, 2)
        assert ioctl(mgr, abi.VBINDER_MMAP, mmap_arg).code == 0
        assert ioctl(mgr, uapi.BINDER_SET_CONTEXT_MGR, bytes(4)).code == 0
        result: list[list[tuple[int, int]]] = []
        tid: list[int] = []

        def looper() -> None:
            tid.append(threading.get_native_id())
            assert write_read(mgr, uapi.U32.pack(uapi.BC_ENTER_LOOPER), 0).code == 0
            p = select.poll()
            p.register(mgr, select.POLLIN)
            result.append(p.poll(0))
            result.append(p.poll(10_000))

        t = threading.Thread(target=looper)
        t.start()
        deadline = time.monotonic() + 5
        while len(result) < 1 or "poll" not in _wchan(tid[0]):
            assert time.monotonic() < deadline and t.is_alive()
            time.sleep(0.01)
        assert result[0] == []
        # The transaction comes from another process: 6.1 refuses one from the manager's own.
        sender = subprocess.run([sys.executable, "-c", ONEWAY_TO_MANAGER, str(vbinder_mount / "dev/binder")],
                                stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30,
                                env=daemon_env())
        assert sender.returncode == 0, sender.stderr
        t.join(5)
        assert not t.is_alive()
        assert result[1] == [(mgr, select.POLLIN)]
    finally:
        os.close(mgr)


def test_many_blocked_readers_do_not_freeze_the_mount(vbinder_daemon: Daemon) -> None:
    """Fact 7: each waiting read holds a pyfuse3 task; 150 of them must not use up the pool."""
    mnt = vbinder_daemon.mountpoint
    fd = os.open(mnt / "dev" / "binder", os.O_RDWR)
    errors: list[BaseException] = []
    started = threading.Semaphore(0)

    def reader() -> None:
        try:
            assert write_read(fd, uapi.U32.pack(uapi.BC_ENTER_LOOPER), 256).code == 0
            started.release()
            os.pread(fd, 24, key())  # waits until the daemon goes away
        except OSError as e:
            if e.errno != errno.ENOTCONN:
                errors.append(e)
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)
            started.release()

    threads = [threading.Thread(target=reader, daemon=True) for _ in range(150)]
    try:
        for t in threads:
            t.start()
        for _ in threads:
            assert started.acquire(timeout=10)
        time.sleep(0.3)
        other = os.open(mnt / "dev" / "hwbinder", os.O_RDWR)
        try:
            assert ioctl(other, uapi.BINDER_VERSION, bytes(4)).code == 0
            assert sorted(os.listdir(mnt)) == ["dev", "proc", "sys"]
        finally:
            os.close(other)
    finally:
        vbinder_daemon.stop()  # answers the waiting reads with ENOTCONN
        for t in threads:
            t.join(10)
        with contextlib.suppress(OSError):
            os.close(fd)
    assert not any(t.is_alive() for t in threads)
    assert not errors, errors


# -- waiting, signals and death -------------------------------------------------------------------


def _blocked_reader(mount: Path) -> subprocess.Popen[str]:
    child = subprocess.Popen([sys.executable, str(HERE / "blocked_reader.py"), str(mount / "dev/binder")],
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True, env=daemon_env())
    assert child.stdout is not None
    assert child.stdout.readline() == "waiting\n"
    wait_in_fuse(child.pid)
    return child


def _wait_state(pid: int, want: str, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while state(pid) != want:
        assert time.monotonic() < deadline, f"state {state(pid)}, not {want}"
        time.sleep(0.02)


def test_sigkill_frees_a_blocked_reader(vbinder_mount: Path) -> None:
    """Fact 8: without the watchdog a killed reader would stay in D until answered."""
    child = _blocked_reader(vbinder_mount)
    child.kill()
    child.wait(timeout=5)
    fd = os.open(vbinder_mount / "dev" / "binder", os.O_RDWR)  # the daemon still serves
    try:
        assert ioctl(fd, uapi.BINDER_VERSION, bytes(4)).code == 0
    finally:
        os.close(fd)


def test_ctrl_c_and_ctrl_z_in_a_blocked_read(vbinder_mount: Path) -> None:
    child = _blocked_reader(vbinder_mount)
    try:
        child.send_signal(signal.SIGSTOP)  # a group stop: the read is answered so that it can stop
        _wait_state(child.pid, "T")
        child.send_signal(signal.SIGCONT)  # os.pread retries: the read phase continues
        _wait_state(child.pid, "S")
        wait_in_fuse(child.pid)
        child.send_signal(signal.SIGINT)
        out, _ = child.communicate(timeout=5)
        assert out == "interrupted\n"
        assert child.returncode == 0
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


def test_kmsg(vbinder_mount: Path) -> None:
    fd = os.open(vbinder_mount / "dev" / "binder", os.O_RDWR)
    try:
        with pytest.raises(OSError):
            os.pwrite(fd, b"not a frame at all, 24+ bytes long", key())
    finally:
        os.close(fd)
    kfd = os.open(vbinder_mount / "proc" / "kmsg", os.O_RDONLY)
    try:
        text = os.read(kfd, 65536).decode()
    finally:
        os.close(kfd)
    assert "binder: " in text and "malformed frame" in text and text.endswith("\n")


def test_debugfs_reader_s_lock_lines(vbinder_mount: Path) -> None:
    """debug_mask's SPINLOCKS bit: reading state prints the locks 6.1's state_show takes for a proc
    (its inner lock over threads and nodes, its proc lock over refs, its inner lock over its todo);
    with the bit off it prints none."""
    fd = os.open(vbinder_mount / "dev" / "binder", os.O_RDWR)
    mask = vbinder_mount / "sys" / "module" / "binder" / "parameters" / "debug_mask"
    state_file = vbinder_mount / "sys" / "kernel" / "debug" / "binder" / "state"
    try:
        # (read here: a `cat` would close the binder fd at its exec, a binder_flush with lines of its own)
        mask.write_text("16384\n")
        assert f"proc {os.getpid()}\n" in state_file.read_text()
        mask.write_text("0\n")
        assert f"proc {os.getpid()}\n" in state_file.read_text()
    finally:
        os.close(fd)
    kfd = os.open(vbinder_mount / "proc" / "kmsg", os.O_RDONLY)
    try:
        text = os.read(kfd, 65536).decode()
    finally:
        os.close(kfd)
    locks = [line.split("binder: ", 1)[1] for line in text.splitlines() if "binder: _binder_" in line]
    assert locks == ["_binder_inner_proc_lock: line=6133", "_binder_inner_proc_unlock: line=6160",
                     "_binder_proc_lock: line=6165", "_binder_proc_unlock: line=6172",
                     "_binder_inner_proc_lock: line=6175", "_binder_inner_proc_unlock: line=6183"]


def test_kmsg_reader_can_be_killed(vbinder_mount: Path) -> None:
    """A blocked `cat proc/kmsg` dies of Ctrl-C (SIGINT) at once."""
    cat = subprocess.Popen(["cat", str(vbinder_mount / "proc" / "kmsg")], stdin=subprocess.DEVNULL,
                           stdout=subprocess.DEVNULL)
    wait_in_fuse(cat.pid)
    cat.send_signal(signal.SIGINT)
    assert cat.wait(timeout=5) == -signal.SIGINT


# -- the mount's life -------------------------------------------------------------------------------


def test_sigterm_unmounts_with_open_fds(vbinder_daemon: Daemon) -> None:
    fd = os.open(vbinder_daemon.mountpoint / "dev" / "binder", os.O_RDWR)
    try:
        vbinder_daemon.stop()  # asserts the daemon exited and the mount is gone
        with pytest.raises(OSError) as e:
            ioctl(fd, uapi.BINDER_VERSION, bytes(4))
        assert e.value.errno == errno.ENOTCONN
    finally:
        with contextlib.suppress(OSError):  # its flush fails with ENOTCONN too
            os.close(fd)
    assert "SIGTERM: unmounting" in vbinder_daemon.log_text()


def test_sigterm_answers_a_blocked_reader(vbinder_daemon: Daemon) -> None:
    """The daemon's shutdown answers a read that waits: ENOTCONN (decisions.md, umount), or
    ECONNABORTED where the kernel aborted the connection first (a daemon that is not root
    unmounts through fusermount3)."""
    child = _blocked_reader(vbinder_daemon.mountpoint)
    try:
        vbinder_daemon.stop()
        out, _err = child.communicate(timeout=5)
        assert out in ("error ENOTCONN\n", "error ECONNABORTED\n")
        assert child.returncode == 1
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


def test_detach_returns_once_mounted(tmp_path: Path) -> None:
    mnt = tmp_path / "m"
    mnt.mkdir()
    r = vbinder_cmd("mount", str(mnt))  # capture_output: returns only if the daemon let go of them
    try:
        assert r.returncode == 0, r.stderr
        assert os.path.ismount(mnt)
        assert sorted(os.listdir(mnt / "dev")) == ["binder", "binderfs", "hwbinder", "vndbinder"]
        fd = os.open(mnt / "dev" / "binder", os.O_RDWR)
        try:
            assert ioctl(fd, uapi.BINDER_VERSION, bytes(4)).code == 0
        finally:
            os.close(fd)
    finally:
        u = vbinder_cmd("umount", str(mnt))
    assert u.returncode == 0, u.stderr
    assert not is_mounted(mnt)


def test_mount_on_busy_mountpoint_fails(vbinder_mount: Path) -> None:
    for extra in ([], ["--foreground"]):
        r = vbinder_cmd("mount", str(vbinder_mount), *extra)
        assert r.returncode == 1
        assert "busy" in r.stderr and "already a mount" in r.stderr, r.stderr
    assert os.listdir(vbinder_mount / "dev")  # the first mount is untouched


def test_mount_on_missing_mountpoint_fails(tmp_path: Path) -> None:
    r = vbinder_cmd("mount", str(tmp_path / "nope"))
    assert r.returncode == 1 and "does not exist" in r.stderr, r.stderr


def test_umount_of_a_dead_mount(vbinder_daemon: Daemon) -> None:
    vbinder_daemon.proc.kill()
    vbinder_daemon.proc.wait()
    mnt = vbinder_daemon.mountpoint
    with pytest.raises(OSError) as e:
        os.statvfs(mnt)  # not os.stat: the root's attributes are cached
    assert e.value.errno == errno.ENOTCONN
    r = vbinder_cmd("mount", str(mnt))
    assert r.returncode == 1 and "dead mount" in r.stderr, r.stderr
    r = vbinder_cmd("umount", str(mnt))
    assert r.returncode == 0, r.stderr
    assert not is_mounted(mnt)
    assert os.path.isdir(mnt)


def test_umount_of_something_else_is_refused(tmp_path: Path) -> None:
    r = vbinder_cmd("umount", str(tmp_path))
    assert r.returncode == 1 and "not mounted" in r.stderr
