"""dev/binderfs through a real mount: 6.1's binderfs, as the oracle's ``run.sh -B`` showed it.

binderfs_probe.py prints what a binderfs shows and does (its tree and modes, features, the
results of BINDER_CTL_ADD with good and bad names, unlink, rename, chmod, binder_logs); its
output on the real 6.1 binderfs is tests/fs/expected/binderfs_probe.txt (re-run there by
tests/kernel/test_binderfs_on_kernel.py), and vbinder must print the same.
"""

from __future__ import annotations

import errno
import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.support import daemon_env, fuse_usable
from vbinder import abi, uapi
from vbinder.driver.binderfs import MAX_DEVICES, Binderfs, ControlFile
from vbinder.driver.context import Context

HERE = Path(__file__).resolve().parent
PROBE = HERE / "binderfs_probe.py"
EXPECTED = HERE / "expected" / "binderfs_probe.txt"

pytestmark = pytest.mark.skipif(fuse_usable() is not None, reason=str(fuse_usable()))


def test_binderfs_is_the_kernels(vbinder_mount: Path) -> None:
    """The probe prints on vbinder what it printed on the real 6.1 binderfs."""
    r = subprocess.run([sys.executable, str(PROBE), str(vbinder_mount / "dev" / "binderfs")], capture_output=True,
                       text=True, timeout=120, env=daemon_env(), stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == EXPECTED.read_text().splitlines()


def test_a_new_device_carries_calls(vbinder_mount: Path) -> None:
    """A device BINDER_CTL_ADD made is a binder context of its own: a service manager and a
    client on it talk, and nothing of it shows on dev/binder's context."""
    from vbinder_client.binderfs import add_device

    root = vbinder_mount / "dev" / "binderfs"
    assert add_device("calls", str(root / "binder-control"))[1] == 4  # after control, binder, hwbinder, vndbinder
    env = dict(daemon_env(), BINDER_DEVICE=str(root / "calls"))
    sm = subprocess.Popen([sys.executable, "-m", "vbinder", "servicemanager"], env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, stdin=subprocess.DEVNULL)
    try:
        assert sm.stdout is not None
        assert any("context manager of" in line for line in iter(sm.stdout.readline, ""))
        r = subprocess.run([sys.executable, "-m", "vbinder", "service", "check", "manager"], env=env,
                           capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
        assert r.stdout == "Service manager: found\n", r.stderr
        state = (root / "binder_logs" / "state").read_text()
        assert "context calls" in state and "context binder" not in state
    finally:
        sm.terminate()
        sm.wait(10)


def test_binder_logs_proc_follows_the_procs(vbinder_mount: Path) -> None:
    """binder_logs/proc/PID comes with a process's first open and goes with it, as debugfs's."""
    from vbinder_client.device import open_transport

    procs = vbinder_mount / "dev" / "binderfs" / "binder_logs" / "proc"
    t = open_transport(str(vbinder_mount / "dev" / "binderfs" / "binder"))
    try:
        assert os.listdir(procs) == [str(os.getpid())]
        text = (procs / str(os.getpid())).read_text()
        assert text == (vbinder_mount / "sys/kernel/debug/binder/proc" / str(os.getpid())).read_text()
        assert f"proc {os.getpid()}\ncontext binder\n" in text
    finally:
        t.close()
    assert os.listdir(procs) == []


def test_only_binderfs_devices_change(vbinder_mount: Path) -> None:
    """dev/binder stays as it was (no chmod, no unlink); binderfs's own files refuse writes."""
    with pytest.raises(PermissionError):
        os.chmod(vbinder_mount / "dev" / "binder", 0o600)
    with pytest.raises(PermissionError):
        os.unlink(vbinder_mount / "dev" / "binder")
    root = vbinder_mount / "dev" / "binderfs"
    with pytest.raises(OSError) as e:
        os.rename(root / "binder", vbinder_mount / "dev" / "moved")  # out of binderfs
    assert e.value.errno in (errno.EPERM, errno.EXDEV)
    with pytest.raises(PermissionError):
        (root / "features" / "extended_error").write_text("0")
    os.chmod(root / "hwbinder", 0o600)
    assert stat.S_IMODE(os.stat(root / "hwbinder").st_mode) == 0o600


# -- the driver's model, with no mount ------------------------------------------------------------


def _control() -> ControlFile:
    return ControlFile(Binderfs([Context("binder")]))


def _add(f: ControlFile, name: bytes, tid: int = 7) -> tuple[int, bytes]:
    assert f.write(abi.key(tid), abi.encode_request(uapi.BINDER_CTL_ADD, uapi.BINDERFS_DEVICE.pack(name, 0, 0))) \
        in (name, None)
    reply = abi.decode_reply(f.read(abi.key(tid), 1 << 16))
    return reply.code, reply.arg


def test_control_frames() -> None:
    f = _control()
    assert _add(f, b"one") == (0, uapi.BINDERFS_DEVICE.pack(b"one", 246, 2))
    # a reply must be read before the next request, as on a device file
    f.write(abi.key(7), abi.encode_request(abi.VBINDER_ABI_VERSION, bytes(4)))
    with pytest.raises(Exception) as e:
        f.write(abi.key(7), abi.encode_request(abi.VBINDER_ABI_VERSION, bytes(4)))
    assert getattr(e.value, "errno", None) == errno.EBUSY
    assert abi.decode_reply(f.read(abi.key(7), 100)).arg == uapi.U32.pack(abi.ABI_VERSION)
    for bad in (b"junk", abi.encode_request(uapi.BINDER_CTL_ADD, b"short")[:20]):
        with pytest.raises(Exception) as e:
            f.write(abi.key(7), bad)
        assert getattr(e.value, "errno", None) == errno.EINVAL
    with pytest.raises(Exception) as e:  # a chunk of a split frame: binder-control takes whole ones
        f.write(abi.key(7) + 24, b"x" * 8)
    assert getattr(e.value, "errno", None) == errno.EINVAL
    f.write(abi.key(8), abi.encode_request(uapi.BINDER_VERSION, bytes(4)))  # not binder-control's
    assert abi.decode_reply(f.read(abi.key(8), 100)).code == -errno.EINVAL
    with pytest.raises(Exception) as e:  # no reply to read: a plain read(2), EINVAL as the kernel's
        f.read(abi.key(8), 100)
    assert getattr(e.value, "errno", None) == errno.EINVAL


def test_device_limit() -> None:
    f = _control()
    for i in range(MAX_DEVICES - 1):
        assert _add(f, b"d%d" % i)[0] == 0
    assert _add(f, b"one too many") == (-errno.ENOSPC, b"")


def test_threads_keep_their_replies() -> None:
    f = _control()
    results: dict[int, tuple[int, bytes]] = {}

    def one(tid: int) -> None:
        results[tid] = _add(f, b"t%d" % tid, tid)

    threads = [threading.Thread(target=one, args=(tid,)) for tid in range(100, 110)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(uapi.BINDERFS_DEVICE.unpack(arg)[0].rstrip(b"\0") for _ret, arg in results.values()) == \
        sorted(b"t%d" % tid for tid in range(100, 110))
