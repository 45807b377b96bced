"""The watchdog of waiting reads (DESIGN.md "Waiting, signals and death").

A client thread blocked in a FUSE read stays stuck, even when it gets SIGKILL, until the daemon
answers (platform fact 8). So while reads wait, one periodic scan of /proc checks each waiting
thread: gone, a deliverable signal pending (its own, or its group's and not blocked by it), or a
group stop under way (a thread of its group in state T) ends the wait. The scan runs every
100 ms while it is cheap, and stretches so that it stays under about 2% of a core.
"""

from __future__ import annotations

import errno
import logging
import time
from collections.abc import Callable

import trio

from .host import Host, ThreadStatus

log = logging.getLogger(__name__)

INTERVAL = 0.1
CPU_SHARE = 0.02
MAX_INTERVAL = 2.0


class Watch:
    """One waiting read: the thread ``tid`` waits, or (``tid`` None) any thread of ``tgid``.

    The watchdog ends the wait by setting ``result`` (an errno, or 0 for end of file) and calling
    ``wake`` (a device read's direct wakeup) or else cancelling ``scope`` (made on first use).
    """

    __slots__ = ("tid", "tgid", "result", "wake", "_scope")

    def __init__(self, tid: int | None, tgid: int | None, wake: Callable[[], None] | None = None) -> None:
        self.tid = tid
        self.tgid = tgid
        self.result: int | None = None
        self.wake = wake
        self._scope: trio.CancelScope | None = None

    @property
    def scope(self) -> trio.CancelScope:
        if self._scope is None:
            self._scope = trio.CancelScope()
        return self._scope

    def end(self, result: int) -> None:
        if self.result is None:
            self.result = result
            if self.wake is not None:
                self.wake()
            else:
                self.scope.cancel()


class Watchdog:
    """Holds the waiting reads and scans their threads."""

    def __init__(self, host: Host, interval: float = INTERVAL) -> None:
        self.host = host
        self.interval = interval
        self.watches: set[Watch] = set()
        self._changed = trio.Event()
        self.scans = 0

    def add(self, watch: Watch) -> None:
        """Watch a waiting read (on the per-call path: no work when the scan is already due)."""
        self.watches.add(watch)
        if not self._changed.is_set():
            self._changed.set()

    def discard(self, watch: Watch) -> None:
        self.watches.discard(watch)

    def end_all(self, result: int) -> None:
        """Answer every waiting read with ``result`` (shutdown)."""
        for w in list(self.watches):
            w.end(result)

    async def run(self) -> None:
        """Scan while there are waiters; sleep until one arrives otherwise."""
        while True:
            if not self.watches:
                self._changed = trio.Event()
                await self._changed.wait()
            t0 = time.perf_counter()
            try:
                self.scan()
            except Exception:  # a bug here must not stop the watchdog
                log.exception("watchdog scan failed")
            spent = time.perf_counter() - t0
            await trio.sleep(min(MAX_INTERVAL, max(self.interval, spent / CPU_SHARE)))

    def scan(self) -> None:
        """One pass over all waiting reads."""
        self.scans += 1
        statuses: dict[int, ThreadStatus | None] = {}
        stopped: dict[int, bool] = {}

        def status(tid: int) -> ThreadStatus | None:
            if tid not in statuses:
                statuses[tid] = self.host.status(tid)
            return statuses[tid]

        def group_stopped(tgid: int) -> bool:
            if tgid not in stopped:
                stopped[tgid] = "T" in self.host.thread_states(tgid)
            return stopped[tgid]

        for w in list(self.watches):
            if w.result is not None:
                continue
            if w.tid is not None:
                st = status(w.tid)
                if st is None or st.state in ("Z", "X"):
                    w.end(errno.EINTR)  # the thread is gone: nobody will read the answer
                elif st.deliverable() or group_stopped(st.tgid):
                    w.end(errno.EINTR)
            elif w.tgid is not None:
                self._scan_group(w)

    def _scan_group(self, w: Watch) -> None:
        """A read watched through its opener's process: any thread's signal interrupts it."""
        assert w.tgid is not None
        alive = False
        for tid in self.host.tids(w.tgid):
            st = self.host.status(tid)
            if st is None or st.state in ("Z", "X"):
                continue
            alive = True
            if st.deliverable() or st.state == "T":
                w.end(errno.EINTR)
                return
        if not alive:
            w.end(0)  # the process exited: end of file
