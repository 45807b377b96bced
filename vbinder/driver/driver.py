"""The driver: global state shared by every device (6.1's file-scope statics of binder.c)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from typing import Protocol

from .. import abi
from .binderfs import Binderfs
from .context import Context
from .device import DeviceFile
from .errors import BinderError, Waiter
from .log import DEFAULT_ALLOC_DEBUG_MASK, DEFAULT_DEBUG_MASK, Debug, Log
from .node import Node
from .params import Params
from .process import Proc
from .profile import LINUX_6_1, Profile
from .stats import Obj, Stats
from .trace import Tracer
from .transaction_log import TransactionLog

DEFAULT_DEVICES = ("binder", "hwbinder", "vndbinder")


class Host(Protocol):
    """What the driver asks of the host: about its tasks (the I/O layer reads /proc), and the open
    files that transactions carry (BINDER_TYPE_FD/FDA), which only the I/O layer can touch.

    The core holds files as opaque numbers (``file`` >= 0) that the host gave it; it asks the
    host to take them from a sender, to hand them to a receiver and to close them, and never
    does anything else with them (docs/abi-fds.md).
    """

    def tgid(self, tid: int) -> int | None: ...

    def start_time(self, tid: int) -> int | None: ...

    def features(self) -> int:
        """The device ABI extensions the host provides (VBINDER_FEATURES bits: FEATURE_FDS)."""
        ...

    def fd_channel(self, proc: Proc) -> bytes | int:
        """VBINDER_FD_CHANNEL's answer for the open file of ``proc``, or -errno."""
        ...

    def slot(self, proc: Proc) -> int:
        """VBINDER_SLOT's answer for the open file of ``proc``: its slot's region size, or -errno
        (docs/abi-slot.md; the slot itself is the I/O layer's)."""
        ...

    def begin_fds(self, proc: Proc, tid: int, seq: int) -> None:
        """Thread ``tid``'s request number ``seq`` with staged fds starts: its files become
        takeable."""
        ...

    def end_fds(self, proc: Proc, tid: int) -> None:
        """That request's write phase is over: what it did not take is closed."""
        ...

    def take_file(self, proc: Proc, tid: int, fd: int) -> int:
        """fget(fd) for thread ``tid``'s transaction: a file, or -errno (-EBADF: not an fd the
        thread staged; -EOPNOTSUPP: the open file has no fd channel; -EMFILE: too many held)."""
        ...

    def close_file(self, file: int) -> None:
        """fput: the core is done with ``file``."""
        ...

    def deliver_files(self, proc: Proc, tid: int, files: list[int], debug_id: int, offsets: list[int]) -> int:
        """Hand ``files`` to the process of ``proc`` (its thread ``tid`` reads the transaction
        ``debug_id``; ``offsets``: where in its buffer each fd number goes): the delivery's tag
        (> 0), after which the files are the host's, or -errno when the process cannot take them
        (the files are still the core's). The host prints 6.1's ``fd fixup`` lines and traces
        ``binder_transaction_fd_recv`` once the process says which fds it installed."""
        ...


class Driver:
    """All binder devices of one mount: contexts, procs, the debug-id counter, stats and logs."""

    def __init__(self, devices: Sequence[str] | None = None, debug_mask: int = DEFAULT_DEBUG_MASK,
                 alloc_debug_mask: int = DEFAULT_ALLOC_DEBUG_MASK, host: Host | None = None,
                 clock: Callable[[], float] = time.monotonic, ratelimit: bool | None = None,
                 profile: Profile = LINUX_6_1) -> None:
        """``devices``: the profile's unless given; ``ratelimit``: the profile's kernel's unless given."""
        self.profile = profile
        self.devices = list(devices if devices is not None else profile.devices)
        self.contexts = {name: Context(name) for name in self.devices}
        self.binderfs = Binderfs(list(self.contexts.values()))  # dev/binderfs: the same devices, and more
        self.log = Log(debug_mask, alloc_debug_mask, clock=clock, ratelimit=ratelimit, profile=profile)
        self.host = host
        # The tracepoints (sys/kernel/tracing); thread names come from the host, if it reads them.
        self.trace = Tracer(clock, os.cpu_count() or 1, getattr(host, "comm", None))
        self.procs: list[Proc] = []  # binder_procs: newest first
        # pid -> the proc whose debugfs entry proc/<pid> is: binder_open creates one only when no
        # proc of that pid exists; binder_release of that proc removes it, even if others remain.
        self.debugfs_procs: dict[int, Proc] = {}
        self.dead_nodes: dict[Node, None] = {}
        self.stats = Stats()
        self.transaction_log = TransactionLog()
        self.failed_transaction_log = TransactionLog()
        self.last_id = 0
        self._held: list[Waiter] = []  # reads of calls held by stop_on_user_error
        self._next_mmap = abi.MMAP_BASE
        self.params = Params(self)
        self.params.user_error_wait.append(self._release_held)

    def hold_waiter(self) -> Waiter:
        """A waiter woken when stop_on_user_error drops below 2 (binder_user_error_wait)."""
        w = Waiter()
        self._held.append(w)
        return w

    def _release_held(self) -> None:
        held, self._held = self._held, []
        for w in held:
            w.wake()

    def next_id(self) -> int:
        """atomic_inc_return(&binder_last_id): debug ids of nodes, refs and transactions."""
        self.last_id += 1
        return self.last_id

    def pick_mmap_address(self, size: int) -> int:
        """A page-aligned address in the mapped-area range, different for every mapping."""
        addr = self._next_mmap
        if addr + size > abi.MMAP_END:
            addr = abi.MMAP_BASE
        self._next_mmap = addr + size + (1 << 20)  # a gap, so that areas never touch
        return addr

    def open(self, device: str | Context, tgid: int, tid: int, euid: int, nonblock: bool = False,
             secctx: bytes | None = None) -> DeviceFile:
        """binder_open: a new proc for ``tgid`` on ``device``, a name or a binderfs device's
        context (``secctx``: its LSM context, NUL-ended)."""
        ctx = device if isinstance(device, Context) else self.contexts.get(device)
        if ctx is None:
            raise BinderError(19, f"no binder device {device!r}")  # ENODEV
        self.log.debug(Debug.OPEN_CLOSE, "%s: %d:%d", "binder_open", tgid, tid)
        proc = Proc(self, ctx, tgid, euid, secctx)
        self.stats.obj_created[Obj.PROC] += 1
        if not any(p.pid == tgid for p in self.procs):
            self.debugfs_procs[tgid] = proc
        self.procs.insert(0, proc)
        return DeviceFile(proc, nonblock)

    def procs_of(self, pid: int) -> list[Proc]:
        return [p for p in self.procs if p.pid == pid]
