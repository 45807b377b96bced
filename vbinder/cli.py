"""The ``vbinder`` command: ``mount``, ``umount``, ``servicemanager``, ``aidl``, ``run``, ``state``, ``log``,
``param``, ``errors``, and Android's ``service``, ``dumpsys`` and ``ping`` (vbinder/cmds)."""

from __future__ import annotations

import argparse
import logging
import os
import re
import select
import sys
import time
from collections.abc import Sequence

from .driver.profile import ALIASES, PROFILES
from .driver.profile import DEFAULT as DEFAULT_KERNEL
from .fs.mounts import MountError, check_mountable, unmount

DEFAULT_DEVICES = "binder,hwbinder,vndbinder"
READY_TIMEOUT = 60.0
DEFAULT_DEBUG_MASK = 7  # binder.c 6.1: USER_ERROR | FAILED_TRANSACTION | DEAD_TRANSACTION

log = logging.getLogger("vbinder")


def _devices(text: str) -> list[str]:
    names = [n for n in text.split(",") if n]
    if not names:
        raise argparse.ArgumentTypeError("at least one device")
    for n in names:
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", n) or n in (".", ".."):
            raise argparse.ArgumentTypeError(f"bad device name {n!r}")
    if len(set(names)) != len(names):
        raise argparse.ArgumentTypeError("a device is named twice")
    return names


def _mask(text: str) -> int:
    try:
        value = int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 <= value < 1 << 32:
        raise argparse.ArgumentTypeError("out of range (u32)")
    return value


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="vbinder", description="Android's binder driver, served over FUSE.")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    m = sub.add_parser("mount", help="mount vbinder at MOUNTPOINT",
                       description="Mount vbinder at MOUNTPOINT: MOUNTPOINT/dev/binder and the rest of the "
                                   "tree. Returns once the mount is ready, unless --foreground.")
    m.add_argument("mountpoint", metavar="MOUNTPOINT")
    m.add_argument("--devices", type=_devices, default=None,
                   help=f"comma-separated device names (default {DEFAULT_DEVICES}; binder for --kernel 3.4)")
    m.add_argument("--kernel", choices=[*PROFILES, *ALIASES], default=DEFAULT_KERNEL, metavar="VERSION",
                   help="the binder driver to serve: 6.1 (default), or 3.4 (alias 3.x: the staging driver "
                        "of the Android kernels the seeds quote; docs/profiles.md)")
    m.add_argument("--ratelimit", action=argparse.BooleanOptionalAction, default=None,
                   help="limit the log to 10 lines per 5 s per call site, as 6.1 does (the default with "
                        "--kernel 6.1; --no-ratelimit keeps every line)")
    m.add_argument("--debug-mask", type=_mask, default=DEFAULT_DEBUG_MASK, metavar="N",
                   help="binder's debug_mask parameter (default %(default)s)")
    m.add_argument("--foreground", "-f", action="store_true",
                   help="stay in the foreground; Ctrl-C or SIGTERM unmounts")
    m.add_argument("--allow-other", action="store_true",
                   help="let other users use the mount (a user other than root needs user_allow_other "
                        "in /etc/fuse.conf)")
    m.add_argument("--verbose", "-v", action="store_true",
                   help="copy the driver's log lines (proc/kmsg) to the daemon's log")
    m.add_argument("--nice", type=int, metavar="N",
                   help="the daemon's nice value, taken when it is a higher priority and allowed "
                        "(root); default -10: the daemon serves every client, as the kernel would")
    m.add_argument("--log-file", metavar="FILE",
                   help="the daemon's log (default: stderr; nowhere once detached)")

    u = sub.add_parser("umount", help="unmount the vbinder mount at MOUNTPOINT (also a dead one)")
    u.add_argument("mountpoint", metavar="MOUNTPOINT")

    s = sub.add_parser("servicemanager", help="run a service manager (the context manager of a device)",
                       description="Become the context manager (handle 0) of MOUNTPOINT/dev/DEVICE and serve "
                                   "Android's IServiceManager protocol until killed, as Android's servicemanager.")
    s.add_argument("mountpoint", metavar="MOUNTPOINT", nargs="?",
                   help="the vbinder mount (default: the one vbinder mount, or $BINDER_DEVICE)")
    s.add_argument("--device", default="binder", help="binder (default) or vndbinder")
    s.add_argument("--android", type=int, metavar="N", choices=(11, 12, 13, 14, 15, 16),
                   help="speak Android N's IServiceManager, 11 to 16 (default $VBINDER_ANDROID, else 16); "
                        "clients choose theirs with ProcessState.init(android=N) or $VBINDER_ANDROID")

    a = sub.add_parser("aidl", help="compile AIDL files to Python modules",
                       description="Write a Python module per AIDL type (a package per AIDL package) under "
                                   "OUTDIR, as Android's aidl writes Java or C++. Give every file to compile; "
                                   "imports are found in the -I directories.")
    a.add_argument("files", metavar="FILE.aidl", nargs="+")
    a.add_argument("-I", "--include", action="append", default=[], metavar="DIR",
                   help="where imported types' files are (DIR/p/q/Foo.aidl for p.q.Foo); repeatable")
    a.add_argument("-o", "--out", default=".", metavar="OUTDIR", help="where the modules go (default: .)")
    a.add_argument("--prefix", default="", metavar="PACKAGE",
                   help="the Python package the AIDL packages go in (default: none, p.q.Foo is p/q/Foo.py)")
    a.add_argument("--version", type=int, metavar="N", help="the interfaces' version (getInterfaceVersion)")
    a.add_argument("--hash", metavar="HASH", help="the interfaces' hash (getInterfaceHash)")

    t = sub.add_parser("trace", help="record the binder events (a file Perfetto opens), or draw a recorded trace")
    tsub = t.add_subparsers(dest="trace_command", required=True, metavar="ACTION")
    r = tsub.add_parser("record", help="record the mount's binder events into a systrace file Perfetto opens",
                        description="Record every binder event of the mount (a tracefs instance of its own) "
                                    "until COMMAND exits, --duration passes or Ctrl-C, into FILE.")
    r.add_argument("--output", "-o", default="trace.txt", metavar="FILE", help="default trace.txt")
    r.add_argument("--duration", type=float, metavar="S", help="stop after S seconds")
    r.add_argument("--mount", "-m", metavar="MOUNTPOINT", help="the vbinder mount (default: the one in /proc/mounts)")
    r.add_argument("--all-events", action="store_true",
                   help="every binder event (default: those Perfetto's binder importer reads)")
    r.add_argument("cmd", nargs=argparse.REMAINDER, metavar="-- COMMAND", help="run COMMAND while recording")
    dg = tsub.add_parser("diagram", help="draw a recorded trace as a sequence diagram (SVG or HTML)")
    dg.add_argument("file", metavar="FILE")
    dg.add_argument("--output", "-o", required=True, metavar="OUT", help="OUT.svg or OUT.html (zoom and scroll)")

    tp = sub.add_parser("top", help="a live view of the transactions going through the driver")
    tp.add_argument("--mount", "-m", metavar="MOUNTPOINT", help="the vbinder mount (default: the one in /proc/mounts)")
    tp.add_argument("--process", "-p", metavar="PID|NAME", help="only calls from or to this process")
    tp.add_argument("--interface", "-i", metavar="TEXT", help="only calls whose interface contains TEXT")
    tp.add_argument("--failures", "-f", action="store_true", help="only calls that failed")
    tp.add_argument("--once", metavar="S", type=float, help="watch S seconds, print one screen and exit")

    g = sub.add_parser("graph", help="draw the object graph of the driver's state (processes, nodes, refs)")
    g.add_argument("--mount", "-m", metavar="MOUNTPOINT", help="the vbinder mount (default: the one in /proc/mounts)")
    g.add_argument("--output", "-o", default="binder-graph.svg", metavar="OUT.svg",
                   help="default binder-graph.svg (.dot writes the graph's source)")

    run = sub.add_parser("run", help="run an unmodified binder program on a mount (the preload library)",
                       description="Run PROGRAM (and every process it starts) with the preload library, which "
                                   "makes the mount's device files behave as the kernel's /dev/binder: "
                                   "/dev/binder, /dev/hwbinder, /dev/vndbinder and /dev/binderfs/NAME are the "
                                   "mount's, and their ioctls and mmap are the kernel's.")
    run.add_argument("--mount", "-m", metavar="MOUNTPOINT",
                   help="the vbinder mount (default: $VBINDER_MOUNT, or the one in /proc/mounts)")
    run.add_argument("--print-library", action="store_true",
                   help="print the library's path (for LD_PRELOAD=... and VBINDER_MOUNT=... by hand) and exit")
    run.add_argument("program", nargs=argparse.REMAINDER, metavar="PROGRAM [ARGS...]")

    for name, help_ in (("state", "print debugfs state (or another debugfs file with --file)"),
                        ("log", "print the driver's log (proc/kmsg)"),
                        ("param", "show or set module parameters")):
        c = sub.add_parser(name, help=help_)
        c.add_argument("--mount", "-m", metavar="MOUNTPOINT",
                       help="the vbinder mount (default: the one in /proc/mounts)")
        if name == "state":
            c.add_argument("--file", default="state",
                           help="state, stats, transactions, transaction_log, failed_transaction_log or proc/PID")
        elif name == "log":
            c.add_argument("--follow", "-f", action="store_true", help="keep printing new lines")
            c.add_argument("--grep", metavar="TEXT", help="only lines containing TEXT")
            c.add_argument("--decode", "-d", action="store_true",
                           help="name the numbers binder prints (ret 29189/-22 (BR_DEAD_REPLY/-EINVAL))")
            c.add_argument("--input", "-i", metavar="FILE",
                           help="read this log (- for stdin: a device's dmesg, say) instead of the mount's")
        else:
            c.add_argument("name", nargs="?", help="debug_mask, stop_on_user_error, devices or "
                                                  "alloc_debug_mask (binder_alloc's debug_mask)")
            c.add_argument("value", nargs="?", help="a new value (as for echo VALUE > the file)")
    for name, help_ in (("service", "Android's service: list, check NAME, call NAME CODE [ARGS...]"),
                        ("dumpsys", "Android's dumpsys: list services, dump them (-l, -t SECONDS, --pid, ...)"),
                        ("ping", "PING_TRANSACTION to a service: ping [-c COUNT] NAME")):
        c = sub.add_parser(name, help=help_, add_help=False)  # their own arguments (vbinder/cmds)
        c.add_argument("args", nargs=argparse.REMAINDER)
    e = sub.add_parser("errors", help="explain binder's numbers: BR codes, errnos, ioctls (vbinder errors 29189 -22)",
                       description="Name each number (a BR or BC code, an ioctl number, an errno; decimal, "
                                   "hex or a name) and say what makes Linux 6.1 answer a call with a BR code "
                                   "and an errno, as logs print them (ret 29189/-22, failed 9/29201/-22, "
                                   "transaction failed 29201).")
    e.add_argument("numbers", metavar="NUMBER", nargs="+")
    return p


# Commands that parse their own arguments as Android's do (vbinder/cmds): `vbinder service call ...`
ANDROID_COMMANDS = ("service", "dumpsys", "ping")


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ANDROID_COMMANDS:
        import importlib

        try:
            code: int = importlib.import_module(f".cmds.{argv[0]}", __package__).main(argv[1:])
            return code
        except BrokenPipeError:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 128 + 13
    args = parser().parse_args(argv)
    try:
        if args.command == "umount":
            unmount(args.mountpoint)
            return 0
        if args.command == "servicemanager":
            return _servicemanager(args)
        if args.command == "aidl":
            return _aidl(args)
        if args.command == "errors":
            from .explain import explain

            print("\n".join(explain(args.numbers)))
            return 0
        if args.command == "run":
            from . import run

            return run.main(args)
        if args.command in ("state", "log", "param"):
            from . import inspect

            return inspect.main(args)
        if args.command in ("trace", "top", "graph"):
            return _tools(args)
        return _mount(args)
    except MountError as e:
        print(f"vbinder: {e}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # the reader went away (`vbinder errors 29201 | head -1`): as SIGPIPE would
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 128 + 13


def _tools(args: argparse.Namespace) -> int:
    from .inspect import find_mount

    if args.command == "trace" and args.trace_command == "diagram":
        from .tools import diagram

        return diagram.main(args.file, args.output)
    mount = find_mount(args.mount)
    if args.command == "trace":
        from .tools import record

        command = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
        return record.main(mount, args.output, args.duration, command, args.all_events)
    if args.command == "top":
        from .tools import top

        return top.main(mount, args.process, args.interface, args.failures, args.once)
    from .tools import graph

    return graph.main(mount, args.output)


def _servicemanager(args: argparse.Namespace) -> int:
    from vbinder_client.device import find_device
    from vbinder_client.errors import TransportError
    from vbinder_client.service_manager import serve

    logging.basicConfig(level=logging.INFO, format="%(asctime)s servicemanager[%(process)d] %(message)s")
    path = os.path.join(args.mountpoint, "dev", args.device) if args.mountpoint else None
    try:
        serve(find_device(path, args.device), args.device, android=args.android)
    except (TransportError, OSError, ValueError) as e:
        print(f"vbinder servicemanager: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    return 0


def _aidl(args: argparse.Namespace) -> int:
    from vbinder_client.aidl import AidlError, compile_to
    from vbinder_client.aidl.codegen import Options

    if args.version is not None and args.version < 1:
        print("vbinder aidl: --version must be an integer greater than 0", file=sys.stderr)
        return 1
    try:
        compile_to(args.files, args.out, args.include, Options(args.prefix, args.version, args.hash))
    except AidlError as e:
        print(e, file=sys.stderr)
        return 1
    return 0


def _setup_logging(args: argparse.Namespace, stream: object = None) -> None:
    fmt = "%(asctime)s vbinder[%(process)d] %(levelname)s %(name)s: %(message)s"
    handler: logging.Handler
    if args.log_file:
        handler = logging.FileHandler(args.log_file)
    else:
        handler = logging.StreamHandler(stream or sys.stderr)  # type: ignore[arg-type]
    handler.setFormatter(logging.Formatter(fmt))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)


def _mount(args: argparse.Namespace) -> int:
    mountpoint = os.path.abspath(args.mountpoint)
    check_mountable(mountpoint, args.allow_other)
    try:
        from .fs import daemon  # pyfuse3 and trio: only the daemon needs them
    except ImportError as e:
        raise MountError(f"{e}: install the daemon's dependencies (scripts/bootstrap.sh, or "
                         "pip install 'vbinder[daemon]')") from None
    if args.foreground:
        _setup_logging(args)
        daemon.serve(mountpoint, args.devices, args.debug_mask, args.allow_other, args.verbose,
                     ready=lambda: log.info("ready: %s (Ctrl-C to unmount)", mountpoint), nice=args.nice,
                     kernel=args.kernel, ratelimit=args.ratelimit)
        return 0
    return _detach(args, mountpoint)


def _detach(args: argparse.Namespace, mountpoint: str) -> int:
    """Fork the daemon (before trio and pyfuse3 start) and wait until it says ready, or fails."""
    r, w = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # the daemon
        os.close(r)
        os._exit(_daemon_child(args, mountpoint, w))
    os.close(w)
    chunks = []
    deadline = time.monotonic() + READY_TIMEOUT
    while (left := deadline - time.monotonic()) > 0 and select.select([r], [], [], left)[0]:
        if not (chunk := os.read(r, 4096)):
            break
        chunks.append(chunk)
    else:
        os.close(r)
        raise MountError(f"the daemon (pid {pid}) was not ready after {READY_TIMEOUT:.0f} s")
    os.close(r)
    answer = b"".join(chunks).decode(errors="replace")
    if answer.startswith("ready"):
        print(f"vbinder: mounted at {mountpoint} (daemon pid {pid}); "
              f"unmount with: vbinder umount {args.mountpoint}", file=sys.stderr)
        return 0
    os.waitpid(pid, 0)
    raise MountError(answer.removeprefix("error: ").strip() or "the daemon exited before the mount was ready")


def _daemon_child(args: argparse.Namespace, mountpoint: str, w: int) -> int:
    """The detached daemon: serve, telling the parent on ``w`` "ready" or what went wrong."""
    pipe: int | None = w

    def tell(message: str) -> None:
        nonlocal pipe
        if pipe is not None:
            try:
                os.write(pipe, message.encode())
            except OSError:
                pass  # the parent is gone
            os.close(pipe)
            pipe = None

    try:
        os.setsid()
        devnull = os.open(os.devnull, os.O_RDWR)
        os.dup2(devnull, 0)
        _setup_logging(args)
        if not args.log_file:
            logging.getLogger().setLevel(logging.WARNING)  # the caller's terminal: problems only

        def ready() -> None:
            tell("ready\n")
            # Let go of the caller's terminal or pipes: logging continues to --log-file only.
            if not args.log_file:
                logging.getLogger().handlers[:] = [logging.NullHandler()]
            os.dup2(devnull, 1)
            os.dup2(devnull, 2)

        from .fs import daemon

        daemon.serve(mountpoint, args.devices, args.debug_mask, args.allow_other, args.verbose,
                     ready=ready, nice=args.nice, kernel=args.kernel, ratelimit=args.ratelimit)
        return 0
    except MountError as e:
        tell(f"error: {e}\n")
    except BaseException as e:  # noqa: BLE001 - the parent must hear of any failure
        logging.getLogger("vbinder").exception("the daemon failed")
        tell(f"error: the daemon failed: {type(e).__name__}: {e}\n")
    return 1
