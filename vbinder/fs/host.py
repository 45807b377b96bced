"""What the daemon learns about client threads from /proc (DESIGN.md "Identity", "Waiting")."""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .. import fdabi

if TYPE_CHECKING:
    from ..driver.process import Proc
    from .fd_channel import FdChannels


@dataclass(slots=True, frozen=True)
class ThreadStatus:
    """The fields of ``/proc/<tid>/status`` that the watchdog needs."""

    tgid: int
    state: str  # one letter: R, S, D, T, t, Z, ...
    sigpnd: int  # signals pending for this thread
    shdpnd: int  # signals pending for the thread group
    sigblk: int  # signals this thread blocks

    def deliverable(self) -> bool:
        """True when a signal pending for this thread, or its group, is not blocked by it."""
        return bool((self.sigpnd | self.shdpnd) & ~self.sigblk)


def read_status(tid: int, proc: str = "/proc") -> ThreadStatus | None:
    """Parse ``/proc/<tid>/status``; None when the thread is gone."""
    try:
        with open(f"{proc}/{tid}/status", "rb") as f:
            text = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    except OSError:
        return None
    fields: dict[bytes, bytes] = {}
    for line in text.splitlines():
        name, sep, value = line.partition(b":")
        if sep:
            fields[name] = value.strip()
    try:
        return ThreadStatus(
            tgid=int(fields[b"Tgid"]),
            state=fields[b"State"][:1].decode(),
            sigpnd=int(fields[b"SigPnd"], 16),
            shdpnd=int(fields[b"ShdPnd"], 16),
            sigblk=int(fields[b"SigBlk"], 16),
        )
    except (KeyError, ValueError):
        return None


def thread_states(tgid: int, proc: str = "/proc") -> list[str]:
    """The state letter of every thread of process ``tgid`` (empty when it is gone)."""
    try:
        tids = os.listdir(f"{proc}/{tgid}/task")
    except OSError:
        return []
    states = []
    for tid in tids:
        try:
            with open(f"{proc}/{tgid}/task/{tid}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        # "pid (comm) S ...": comm may contain spaces and parentheses; the state follows the last ')'.
        rest = stat[stat.rfind(b")") + 2:]
        if rest:
            states.append(chr(rest[0]))
    return states


class Host:
    """The driver's view of the host's threads, read from /proc (the ``host`` given to Driver), and
    of the files transactions carry, through the fd channels (``fds``; None: no fd channel)."""

    def __init__(self, proc: str = "/proc", fds: FdChannels | None = None) -> None:
        self.proc = proc
        self.fds = fds

    # -- files (docs/abi-fds.md) -------------------------------------------------------------------

    def features(self) -> int:
        return fdabi.FEATURE_FDS | fdabi.FEATURE_SLOT if self.fds is not None else 0

    def fd_channel(self, proc: Proc) -> bytes | int:
        return self.fds.fd_channel(proc) if self.fds is not None else -errno.EINVAL

    def slot(self, proc: Proc) -> int:
        return self.fds.slot(proc) if self.fds is not None else -errno.EINVAL

    def begin_fds(self, proc: Proc, tid: int, seq: int) -> None:
        if self.fds is not None:
            self.fds.begin_fds(proc, tid, seq)

    def end_fds(self, proc: Proc, tid: int) -> None:
        if self.fds is not None:
            self.fds.end_fds(proc, tid)

    def take_file(self, proc: Proc, tid: int, fd: int) -> int:
        return self.fds.take_file(proc, tid, fd) if self.fds is not None else -errno.EOPNOTSUPP

    def close_file(self, file: int) -> None:
        if self.fds is not None:
            self.fds.close_file(file)

    def deliver_files(self, proc: Proc, tid: int, files: list[int], debug_id: int, offsets: list[int]) -> int:
        if self.fds is None:
            return -errno.EMFILE
        return self.fds.deliver_files(proc, tid, files, debug_id, offsets)

    def release(self, proc: Proc) -> None:
        """The open file of ``proc`` was released."""
        if self.fds is not None:
            self.fds.release(proc)

    # -- tasks -------------------------------------------------------------------------------------

    def tgid(self, tid: int) -> int | None:
        """The process (thread group) of thread ``tid``, or None when it is gone."""
        status = read_status(tid, self.proc)
        return status.tgid if status is not None else None

    def start_time(self, tid: int) -> int | None:
        """Field 22 of ``/proc/<tid>/stat`` (start time in clock ticks), or None when it is gone."""
        try:
            with open(f"{self.proc}/{tid}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            return None
        fields = stat[stat.rfind(b")") + 2:].split()
        try:
            return int(fields[19])  # fields[0] is field 3 (state)
        except (IndexError, ValueError):
            return None

    def comm(self, tid: int) -> str | None:
        """The thread's name (``/proc/<tid>/comm``), or None when it is gone."""
        try:
            with open(f"{self.proc}/{tid}/comm", "rb") as f:
                return f.read().rstrip(b"\n").decode(errors="replace") or None
        except OSError:
            return None

    def status(self, tid: int) -> ThreadStatus | None:
        return read_status(tid, self.proc)

    def mm_gone(self, tgid: int) -> bool:
        """The process has dropped its memory (it is exiting, or gone): its mappings are closed.

        A task without an mm has no ``VmSize`` line in its status (exit_mm runs before exit_files).
        """
        try:
            with open(f"{self.proc}/{tgid}/status", "rb") as f:
                return b"\nVmSize:" not in f.read()
        except OSError:
            return True

    def security_context(self, tid: int) -> bytes | None:
        """The LSM context binder would send for ``tid`` (NUL-ended), or None when no LSM gives one."""
        try:
            with open(f"{self.proc}/{tid}/attr/current", "rb") as f:
                ctx = f.read().rstrip(b"\n\0")
        except OSError:
            return None
        return ctx + b"\0" if ctx else None

    def thread_states(self, tgid: int) -> list[str]:
        return thread_states(tgid, self.proc)

    def tids(self, tgid: int) -> list[int]:
        """The threads of process ``tgid`` (empty when it is gone)."""
        try:
            return [int(t) for t in os.listdir(f"{self.proc}/{tgid}/task")]
        except OSError:
            return []
