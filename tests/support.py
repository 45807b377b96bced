"""Test support: a vbinder daemon mounted in a subprocess (DESIGN.md "Conventions")."""

from __future__ import annotations

import atexit
import functools
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# Why tests/client/test_aidl_aosp.py did not compare with Android's aidl (tests/conftest.py's banner)
AIDL_SKIPPED: list[str] = []
# Why tests/integration/test_traffic.py did not drive a browser, tmux or dot (the same banner)
TOOLS_SKIPPED: list[str] = []

# The real 6.1 driver's outputs (a copy of shared/oracle/samples: debugfs, dmesg, the uapi layout)
ORACLE_SAMPLES = REPO / "tests" / "oracle" / "samples"
MOUNT_TIMEOUT = 15.0
STOP_TIMEOUT = 10.0


def daemon_env() -> dict[str, str]:
    """The environment of daemon subprocesses: this checkout first on the import path."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), *filter(None, [env.get("PYTHONPATH")])])
    return env


def as_user(uid: int) -> tuple[list[str], dict[str, str]]:
    """The command (setpriv and an interpreter) and environment that run Python code as ``uid``.

    The other user may not be able to read this checkout (cloned under /root, or in a
    ``mktemp -d`` directory, mode 0700), nor run its venv's interpreter: its code runs from a
    world-readable copy of the pure-Python packages (:func:`user_kit`) with an interpreter that
    user can run.
    """
    kit = user_kit()
    env = dict(os.environ, PYTHONPATH=str(kit))
    env.pop("VIRTUAL_ENV", None)
    return ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", _user_python(uid)], env


@functools.cache
def user_kit() -> Path:
    """A world-readable copy of vbinder, vbinder_client and the tests' helpers (pure Python)."""
    kit = Path(tempfile.mkdtemp(prefix="vbinder-kit-"))
    atexit.register(shutil.rmtree, kit, True)
    skip = shutil.ignore_patterns("__pycache__", "expected", "oracle", "*.json", "*.c", "*.so")
    shutil.copytree(REPO / "vbinder", kit / "vbinder", ignore=skip)
    shutil.copytree(REPO / "client", kit / "vbinder_client", ignore=skip)
    shutil.copytree(REPO / "tests", kit / "tests", ignore=skip)
    for path in [kit, *kit.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return kit


@functools.cache
def _user_python(uid: int) -> str:
    """An interpreter (3.11 or newer) that ``uid`` can run: the venv's base, else the system's."""
    for candidate in (getattr(sys, "_base_executable", sys.executable), shutil.which("python3") or "",
                      "/usr/bin/python3"):
        if candidate and subprocess.run(
                ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", candidate, "-c",
                 "import sys; sys.exit(sys.version_info < (3, 11))"], capture_output=True, cwd="/").returncode == 0:
            return candidate
    raise RuntimeError(f"no Python 3.11+ that uid {uid} can run")


def fuse_usable() -> str | None:
    """Why FUSE tests cannot run here, or None."""
    if not os.path.exists("/dev/fuse"):
        return "no /dev/fuse"
    if not os.access("/dev/fuse", os.R_OK | os.W_OK):
        return "no access to /dev/fuse"
    return None


def is_mounted(path: Path) -> bool:
    """In /proc/self/mountinfo (unlike os.path.ismount, also true for a dead mount)."""
    from vbinder.fs.mounts import find_mount

    return find_mount(str(path)) is not None


def force_unmount(path: Path) -> None:
    subprocess.run(["fusermount3", "-u", "-z", str(path)], stdin=subprocess.DEVNULL,
                   capture_output=True, check=False)


class Daemon:
    """A ``vbinder mount --foreground`` subprocess and its mount."""

    def __init__(self, mountpoint: Path, log: Path, argv: list[str] | None = None) -> None:
        self.mountpoint = mountpoint
        self.log = log
        cmd = argv or [sys.executable, "-m", "vbinder", "mount", str(mountpoint), "--foreground"]
        with open(log, "wb") as out:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                         env=daemon_env())
        deadline = time.monotonic() + MOUNT_TIMEOUT
        while not os.path.ismount(mountpoint):
            if self.proc.poll() is not None:
                raise RuntimeError(f"the daemon exited ({self.proc.returncode}):\n{self.log_text()}")
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"no mount after {MOUNT_TIMEOUT} s:\n{self.log_text()}")
            time.sleep(0.02)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        """SIGTERM, then check that the daemon exited and the mount is gone."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"the daemon ignored SIGTERM:\n{self.log_text()}") from None
        if is_mounted(self.mountpoint):
            force_unmount(self.mountpoint)
            raise AssertionError(f"SIGTERM left the mount behind:\n{self.log_text()}")

    def kill(self) -> None:
        """SIGKILL and clean up the dead mount it leaves."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if is_mounted(self.mountpoint):
            force_unmount(self.mountpoint)
