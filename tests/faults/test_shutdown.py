"""Shutdown with clients blocked in calls (issue "Nothing stuck, nothing lost": shutdown).

``vbinder umount`` or SIGTERM while clients are blocked in binder calls: the clients get an error
(ENOTCONN), not a hang; the mount is detached even while they hold their files open; a new mount
on the same directory works at once. A daemon killed with SIGKILL leaves a dead mount that
``vbinder umount`` removes. (tests/fs/test_fs_mount.py has the same for a raw blocked reader and
no clients; these use real client processes in calls.)
"""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.faults.conftest import Server
from tests.faults.support import DEATH_BOUND, assert_gone, kill_all, read_line, spawn_peer
from tests.fs.fsutil import ioctl, wait_in_fuse
from tests.support import Daemon, daemon_env, force_unmount, fuse_usable, is_mounted
from vbinder import uapi

pytestmark = pytest.mark.skipif(fuse_usable() is not None, reason=str(fuse_usable()))

STOP_BOUND = 10.0


def vbinder_cmd(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "vbinder", *args], stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, timeout=30, env=daemon_env())


class Scene:
    """A daemon, a server (the context manager) and clients blocked in calls it holds."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.mnt = tmp / "mnt"
        self.mnt.mkdir()
        self.daemon = Daemon(self.mnt, tmp / "daemon.log")
        self.dev = str(self.mnt / "dev" / "binder")
        self.server = Server(self.dev, tmp)
        self.clients: list[subprocess.Popen[str]] = []
        for i in range(3):
            p = spawn_peer("blocked", self.dev, "60000", log=tmp / f"blocked{i}.err")
            self.clients.append(p)
            assert read_line(p) == "calling\n", (tmp / f"blocked{i}.err").read_text()
        # a looper blocked waiting for work, on another device
        self.looper = subprocess.Popen([sys.executable, str(Path(__file__).parent.parent / "fs" / "blocked_reader.py"),
                                        str(self.mnt / "dev" / "hwbinder")], stdin=subprocess.DEVNULL,
                                       stdout=subprocess.PIPE, text=True, env=daemon_env())
        assert read_line(self.looper) == "waiting\n"
        for p in [*self.clients, self.looper]:
            wait_in_fuse(p.pid)

    def all(self) -> list[subprocess.Popen[str]]:
        return [*self.clients, self.looper, self.server.proc]

    def assert_clients_failed(self) -> None:
        """Every blocked client got an error and exited, none hangs: ENOTCONN, or ECONNABORTED
        for a request in flight when the kernel aborts the connection (the server, busy in its
        own code holding the calls, finds out when it next reads)."""
        for p in [*self.clients, self.looper]:
            assert_gone(p, DEATH_BOUND)
            assert p.returncode != 0
        for i in range(len(self.clients)):
            err = (self.tmp / f"blocked{i}.err").read_text()
            assert "[Errno 107]" in err or "[Errno 103]" in err, err

    def close(self) -> None:
        kill_all(*self.all())
        if self.daemon.proc.poll() is None:
            self.daemon.proc.kill()
            self.daemon.proc.wait()
        if is_mounted(self.mnt):
            force_unmount(self.mnt)


@pytest.fixture
def scene(tmp_path: Path) -> Iterator[Scene]:
    s = Scene(tmp_path)
    try:
        yield s
    finally:
        s.close()


def _new_mount_works(mnt: Path) -> None:
    """A new mount on the same directory, at once (while the old daemon may still be finishing)."""
    r = vbinder_cmd("mount", str(mnt))
    assert r.returncode == 0, r.stderr
    try:
        fd = os.open(mnt / "dev" / "binder", os.O_RDWR)
        try:
            assert ioctl(fd, uapi.BINDER_VERSION, bytes(4)).code == 0
        finally:
            os.close(fd)
    finally:
        u = vbinder_cmd("umount", str(mnt))
        assert u.returncode == 0, u.stderr


def test_umount_with_clients_blocked_in_calls(scene: Scene) -> None:
    r = vbinder_cmd("umount", str(scene.mnt))
    assert r.returncode == 0, r.stderr
    assert not is_mounted(scene.mnt)  # detached at once, while clients hold their files
    _new_mount_works(scene.mnt)
    scene.assert_clients_failed()
    scene.daemon.proc.wait(STOP_BOUND)  # the daemon saw the detach and stopped
    assert "the mount was detached: stopping" in scene.daemon.log_text()


def test_sigterm_with_clients_blocked_in_calls(scene: Scene) -> None:
    scene.daemon.proc.send_signal(signal.SIGTERM)
    scene.assert_clients_failed()
    scene.daemon.proc.wait(STOP_BOUND)
    assert not is_mounted(scene.mnt)
    _new_mount_works(scene.mnt)


def test_daemon_sigkill_with_clients_blocked_in_calls_then_recovery(scene: Scene) -> None:
    scene.daemon.proc.kill()
    scene.daemon.proc.wait()
    scene.assert_clients_failed()  # the kernel aborts the connection: ENOTCONN
    with pytest.raises(OSError) as e:
        os.statvfs(scene.mnt)
    assert e.value.errno == errno.ENOTCONN
    r = vbinder_cmd("mount", str(scene.mnt))
    assert r.returncode == 1 and "dead mount" in r.stderr, r.stderr
    r = vbinder_cmd("umount", str(scene.mnt))
    assert r.returncode == 0, r.stderr
    assert not is_mounted(scene.mnt)
    _new_mount_works(scene.mnt)
