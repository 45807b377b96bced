"""The real Linux 6.1 binder driver, in the oracle's qemu VM (``tests/oracle``).

``tests/oracle`` is a copy of ``shared/oracle``'s runner (run.sh, setup.sh, the VM's /init),
so that a checkout carries what its tests need wherever it is cloned; its generated files (the
Debian kernel, the initramfs, the run directories) go to :data:`STATE`, shared by every checkout
of a user. ``make test``'s bootstrap installs the tools it needs (as root); the first run here
downloads and prepares the kernel (about 30 s), under a lock so that checkouts testing at once
do not trip over each other.

:func:`unavailable` says why the VM cannot run here; :func:`run` runs one payload in it.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
ORACLE = REPO / "tests" / "oracle"
RUN = ORACLE / "run.sh"
STATE = Path(os.environ.get("ORACLE_STATE")
             or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "vbinder" / "oracle")
TOOLS = ("qemu-system-x86_64", "cpio", "depmod", "apt-get", "dpkg-deb")
SETUP_TIMEOUT = 900
# `make test` sets this in CI: a kernel side that cannot run fails the run instead of skipping.
REQUIRE = "VBINDER_REQUIRE_KERNEL"

_prepared: str | None | bool = False  # False: not tried yet; None: ready; str: why not


SBIN = ("/usr/local/sbin", "/usr/sbin", "/sbin")  # depmod's home; not on a user's PATH


def _path() -> str:
    path = os.environ.get("PATH", "")
    return os.pathsep.join([path, *(d for d in SBIN if d not in path.split(os.pathsep))])


def env(binderfs: bool = False) -> dict[str, str]:
    """The environment of run.sh: the state directory, and no binderfs module unless asked
    (``binderfs``: setup.sh builds it, once, if it is missing)."""
    out = dict(os.environ, PATH=_path())
    out["ORACLE_STATE"] = str(STATE)
    if binderfs:
        out["ORACLE_NO_BINDERFS"] = "0"
    else:
        out.setdefault("ORACLE_NO_BINDERFS", "1")
    return out


BINDERFS_MODULE = STATE / "build" / "binderfs-mod" / "binder_linux.ko"
_binderfs_prepared: str | None | bool = False


def _missing_tools() -> list[str]:
    missing = [t for t in TOOLS if shutil.which(t, path=_path()) is None]
    if not Path("/bin/busybox").exists() and not Path("/usr/bin/busybox").exists():
        missing.append("busybox (busybox-static)")
    if not Path("/usr/include/linux/android/binder.h").exists():
        missing.append("linux-libc-dev")
    return missing


def unavailable() -> str | None:
    """Why the kernel's VM cannot run here (None: it can, and is set up)."""
    global _prepared
    if _prepared is not False:
        return _prepared if isinstance(_prepared, str) else None
    missing = _missing_tools()
    if missing:
        _prepared = (f"the oracle VM needs {', '.join(missing)}: `make test` installs them as root "
                     "(scripts/bootstrap.sh --test)")
        return _prepared
    STATE.mkdir(parents=True, exist_ok=True)
    with open(STATE / ".setup.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one setup at a time, across checkouts
        r = subprocess.run([str(ORACLE / "setup.sh")], env=env(), stdin=subprocess.DEVNULL,
                           capture_output=True, text=True, timeout=SETUP_TIMEOUT)
    if r.returncode != 0:
        _prepared = f"the oracle's setup.sh failed (exit {r.returncode}):\n{r.stderr[-3000:]}"
        return _prepared
    _prepared = None
    return None


def binderfs_unavailable() -> str | None:
    """Why the VM's binderfs variant (``run.sh -B``) cannot run here (None: it can).

    Its module is binder_linux.ko rebuilt with binderfs from the same Debian source (setup.sh,
    with ORACLE_NO_BINDERFS=0: it downloads linux-source and the headers, about a minute, once).
    """
    global _binderfs_prepared
    why = unavailable()
    if why is not None:
        return why
    if _binderfs_prepared is not False:
        return _binderfs_prepared if isinstance(_binderfs_prepared, str) else None
    with open(STATE / ".setup.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        r = subprocess.run([str(ORACLE / "setup.sh")], env=env(binderfs=True), stdin=subprocess.DEVNULL,
                           capture_output=True, text=True, timeout=SETUP_TIMEOUT)
    if r.returncode != 0 or not BINDERFS_MODULE.exists():
        _binderfs_prepared = (f"the oracle's binderfs module could not be built (setup.sh exit {r.returncode}):\n"
                              f"{r.stderr[-3000:]}")
        return _binderfs_prepared
    _binderfs_prepared = None
    return None


def run(payload: Sequence[str], *, timeout: int = 300, devices: str = "binder",
        python: str = sys.executable, extra_env: dict[str, str] | None = None,
        binderfs: bool = False) -> subprocess.CompletedProcess[str]:
    """Run ``payload`` (a Python script and its arguments) in a fresh VM; its output and exit code.

    The payload runs as root with ``python``, cwd the checkout, ``/dev/binder`` (and ``devices``)
    the real driver's; with ``binderfs``, in a real binderfs at ``/dev/binderfs`` (``run.sh -B``;
    see :func:`binderfs_unavailable`). Exit 125 means the VM failed, 124 that the payload timed out.
    """
    cmd = [str(RUN), "-p", python, "-t", str(timeout), "-d", devices, *(["-B"] if binderfs else [])]
    for k, v in (extra_env or {}).items():
        cmd += ["-e", f"{k}={v}"]
    cmd += list(payload)
    return subprocess.run(cmd, env=env(binderfs), cwd=REPO, stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, timeout=timeout + 240)
