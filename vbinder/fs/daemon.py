"""Running a mount: the driver, the tree and the handlers in one trio thread.

``serve`` mounts, runs pyfuse3's loop with the watchdog and the signal handler beside it, and
unmounts lazily on SIGINT/SIGTERM/SIGHUP (clients may still hold fds; their calls then fail
with ENOTCONN).
"""

from __future__ import annotations

import errno
import functools
import logging
import os
import signal
from collections.abc import Callable

import pyfuse3
import trio

from ..driver import Driver, debugfs
from ..driver.profile import DEFAULT as DEFAULT_KERNEL
from ..driver.profile import profile
from ..malloc import keep_large_buffers
from . import binderfs
from .fd_channel import FdChannels
from .host import Host
from .mounts import FSNAME, MountError, find_mount, is_attached
from .ops import Operations
from .tracefs import LogSource, build_tracefs
from .tree import Tree
from .watchdog import Watchdog

log = logging.getLogger(__name__)

# Each request in flight holds one pyfuse3 task, and every idle looper thread of every client
# holds one (platform fact 7).
MAX_TASKS = 10_000
MIN_TASKS = 32  # idle worker tasks kept: fewer means a task spawned per request under load
DEBUGFS = "sys/kernel/debug/binder"
SHUTDOWN_GRACE = 5.0
DETACH_CHECK = 0.5  # seconds between checks that the mount is still attached
SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
# The daemon's nice value when it may raise its priority (root: CAP_SYS_NICE). It stands in for
# the kernel, whose binder work runs in its callers' own time slices; at their priority, a busy
# set of clients takes the CPU from the one process that serves them all (docs/decisions.md).
NICE = -10
# How the driver's deferred work (flush, release: a kworker in the kernel) shows in traces.
WORKER_NAME = "kworker/binder"


def raise_priority(nice: int = NICE) -> None:
    """Give this thread, and the threads it starts later, the nice value ``nice`` if that is a
    higher priority than it has and it is allowed; otherwise leave it."""
    try:
        if os.getpriority(os.PRIO_PROCESS, 0) > nice:
            os.setpriority(os.PRIO_PROCESS, 0, nice)
    except OSError as e:
        log.debug("priority left as it is: %s", e)


def make_driver(devices: list[str] | None, debug_mask: int, host: Host, kernel: str = DEFAULT_KERNEL,
                ratelimit: bool | None = None) -> Driver:
    """The driver core, as the profile ``kernel`` has it (its devices, unless ``devices``; its
    kernel's rate limiting, unless ``ratelimit``)."""
    return Driver(devices=devices, debug_mask=debug_mask, host=host, ratelimit=ratelimit, profile=profile(kernel))


# Replaceable, for tests that serve a core with faults injected.
driver_factory: Callable[..., Driver] = make_driver


def _rendered(render: Callable[[Driver], str], driver: Driver) -> bytes:
    return render(driver).encode(errors="surrogateescape")  # a binderfs device's name is any bytes


def build_tree(driver: Driver, uid: int, gid: int) -> Tree:
    """The tree of DESIGN.md, with a device file for each of the driver's devices.

    Debugfs and parameter files are ``tree.add_generated(path, read, write)`` calls on the driver's
    printers and parameters.
    """
    tree = Tree(uid, gid)
    for name in driver.devices:
        tree.add_device(f"dev/{name}", name)
    tree.mkdir("sys/kernel/debug/binder/proc")
    logs = {name: functools.partial(_rendered, render, driver)
            for name, render in (("state", debugfs.render_state), ("stats", debugfs.render_stats),
                                 ("transactions", debugfs.render_transactions),
                                 ("transaction_log", debugfs.render_transaction_log),
                                 ("failed_transaction_log", debugfs.render_failed_transaction_log))}
    for name, read in logs.items():
        tree.add_generated(f"{DEBUGFS}/{name}", read, mode=0o444)
    if driver.profile.newer_uapi:  # (3.x had no binderfs)
        binderfs.build(tree, driver, logs)  # dev/binderfs: binder-control, binder_logs/, features/
    for param in driver.params:
        tree.add_generated(param.path, param.read, param.write if param.writable else None, mode=param.mode)
    tree.add_symlink("proc/binder", "../sys/kernel/debug/binder")
    tree.add_stream("proc/kmsg", LogSource(driver.log))
    build_tracefs(tree, driver.trace)
    return tree


def mount_options(allow_other: bool) -> set[str]:
    options = {f"fsname={FSNAME}", f"subtype={FSNAME}", "default_permissions"}
    if allow_other:
        options.add("allow_other")
    return options


def serve(mountpoint: str, devices: list[str] | None, debug_mask: int, allow_other: bool = False,
          verbose: bool = False, ready: Callable[[], None] | None = None, nice: int | None = None,
          kernel: str = DEFAULT_KERNEL, ratelimit: bool | None = None) -> None:
    """Mount at ``mountpoint`` and serve until unmounted or signalled.

    ``ready`` is called once the mount answers requests. Raises MountError when mounting fails.
    ``nice``: the priority to take if allowed (:func:`raise_priority`; None: :data:`NICE`), before
    any thread starts. ``kernel``: the driver's profile (vbinder.driver.profile); ``devices`` None:
    the profile's.
    """
    raise_priority(NICE if nice is None else nice)
    keep_large_buffers()
    host = Host(fds=FdChannels())
    driver = driver_factory(devices, debug_mask, host, kernel=kernel, ratelimit=ratelimit)
    devices = driver.devices
    if verbose:
        klog = logging.getLogger("vbinder.kmsg")
        driver.log.listeners.append(klog.info)
    driver.trace.set_worker(os.getpid(), WORKER_NAME)
    ops = Operations(driver, build_tree(driver, os.getuid(), os.getgid()), host, Watchdog(host))

    # A signal between the mount and its handler would leave a dead mount (fact 10): hold them.
    signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)
    try:
        try:
            pyfuse3.init(ops, mountpoint, mount_options(allow_other))
        except RuntimeError as e:
            raise MountError(f"cannot mount at {mountpoint}: {e} (see libfuse's message above)") from None
        log.info("mounted %s at %s (devices %s)", FSNAME, mountpoint, ",".join(devices))
        m = find_mount(mountpoint)
        dev = m.dev if m is not None else ""
        try:
            trio.run(_main, ops, mountpoint, ready, dev)
        finally:
            if host.fds is not None:
                host.fds.close()
            # Not when the mount was detached already (libfuse would print an error).
            pyfuse3.close(unmount=not dev or is_attached(dev))
            log.info("unmounted %s", mountpoint)
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, SIGNALS)


async def _main(ops: Operations, mountpoint: str, ready: Callable[[], None] | None, dev: str = "") -> None:
    async with trio.open_nursery() as nursery:
        await nursery.start(_handle_signals, ops, nursery.cancel_scope)
        nursery.start_soon(ops.watchdog.run)
        if ops.host.fds is not None:
            nursery.start_soon(ops.host.fds.serve)
        if dev:
            nursery.start_soon(_watch_detach, ops, dev)
        if ready is not None:
            nursery.start_soon(_announce, mountpoint, ready)
        await pyfuse3.main(min_tasks=MIN_TASKS, max_tasks=MAX_TASKS)
        nursery.cancel_scope.cancel()


async def _handle_signals(ops: Operations, scope: trio.CancelScope,
                          task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    """The first signal stops the loop gracefully; a second one, or a stuck loop, cancels it."""
    with trio.open_signal_receiver(*SIGNALS) as signals:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, SIGNALS)
        task_status.started()
        async for signum in signals:
            log.info("%s: unmounting", signal.Signals(signum).name)
            ops.shutdown()
            pyfuse3.terminate()
            break
        with trio.move_on_after(SHUTDOWN_GRACE):
            async for _signum in signals:
                break
        log.warning("stopping without waiting for handlers")
        scope.cancel()


async def _watch_detach(ops: Operations, dev: str) -> None:
    """Stop once the mount is detached (``vbinder umount`` is a lazy unmount).

    Without this, the FUSE connection would live on for as long as clients hold files open, and
    clients blocked in calls would wait for ever: stopping answers them ENOTCONN, as SIGTERM does,
    and closing the connection fails whatever they do next the same way.
    """
    while True:
        await trio.sleep(DETACH_CHECK)
        try:
            attached = is_attached(dev)
        except OSError:
            continue
        if not attached:
            log.info("the mount was detached: stopping")
            ops.shutdown()
            pyfuse3.terminate()
            return


async def _announce(mountpoint: str, ready: Callable[[], None]) -> None:
    """Call ``ready`` once a stat of the mount's root has made the round trip."""
    try:
        await trio.to_thread.run_sync(os.stat, mountpoint, abandon_on_cancel=True)
    except OSError as e:
        log.error("the mount does not answer: %s", os.strerror(e.errno or errno.EIO))
        return
    ready()
