"""``vbinder dumpsys``: AOSP's ``dumpsys`` (frameworks/native/cmds/dumpsys/dumpsys.cpp, main.cpp).

    dumpsys [-t TIMEOUT] [--priority LEVEL] [--clients] [--dump] [--pid] [--thread]
            [--help | -l | --skip SERVICES | [-w] SERVICE [ARGS]]

Its output, as dumpsys.cpp writes it: ``Currently running services:`` and the names; around each
service's dump when it dumps more than one, the ``DUMP OF SERVICE NAME:`` header and the
``--------- 0.012s was the duration of dumpsys NAME, ending at: ...`` footer; ``*** SERVICE
'NAME' DUMP TIMEOUT (10000ms) EXPIRED ***`` (twice, as dumpsys writes it to the fd and to cout)
when a dump outlasts ``-t``/``-T``; ``Can't find service: NAME``; exit 0, 255 (-1) for a usage
error, 20 without a service manager. ``--pid`` asks the object its pid (DEBUG_PID_TRANSACTION);
``--thread`` and ``--clients`` read the binder debug files as libbinderdebug does
(``binder_logs/proc/PID`` in binderfs, else debugfs's ``proc/PID``: on a vbinder mount, the
mount's). A service's dump is ``IBinder::dump`` (DUMP_TRANSACTION with the pipe's write end),
which needs file descriptors in transactions.
"""

from __future__ import annotations

import getopt
import os
import select
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

PROG = "dumpsys"
DUMP_FLAG_PRIORITY_CRITICAL = 1
DUMP_FLAG_PRIORITY_HIGH = 2
DUMP_FLAG_PRIORITY_NORMAL = 4
DUMP_FLAG_PRIORITY_DEFAULT = 8
DUMP_FLAG_PRIORITY_ALL = 15
DUMP_FLAG_PROTO = 16
PRIORITIES = {"CRITICAL": DUMP_FLAG_PRIORITY_CRITICAL, "HIGH": DUMP_FLAG_PRIORITY_HIGH,
              "NORMAL": DUMP_FLAG_PRIORITY_NORMAL}  # PriorityDumper::PRIORITY_ARG_*
TYPE_DUMP, TYPE_PID, TYPE_STABILITY, TYPE_THREAD, TYPE_CLIENTS = 1, 2, 4, 8, 16
LONG = ["help", "clients", "dump", "pid", "priority=", "proto", "skip", "stability", "thread"]
USAGE = (
    "usage: dumpsys\n"
    "         To dump all services.\n"
    "or:\n"
    "       dumpsys [-t TIMEOUT] [--priority LEVEL] [--clients] [--dump] [--pid] [--thread] [--help | -l | "
    "--skip SERVICES | [-w] SERVICE [ARGS]]\n"
    "         --help: shows this help\n"
    "         -l: only list services, do not dump them\n"
    "         -t TIMEOUT_SEC: TIMEOUT to use in seconds instead of default 10 seconds\n"
    "         -T TIMEOUT_MS: TIMEOUT to use in milliseconds instead of default 10 seconds\n"
    "         --clients: dump client PIDs instead of usual dump\n"
    "         --dump: ask the service to dump itself (this is the default)\n"
    "         --pid: dump PID instead of usual dump\n"
    "         --proto: filter services that support dumping data in proto format. Dumps\n"
    "               will be in proto format.\n"
    "         --priority LEVEL: filter services based on specified priority\n"
    "               LEVEL must be one of CRITICAL | HIGH | NORMAL\n"
    "         --skip SERVICES: dumps all services but SERVICES (comma-separated list)\n"
    "         --stability: dump binder stability information instead of usual dump\n"
    "         --thread: dump thread usage instead of usual dump\n"
    "         -w: wait for service indefinitely to be ready before dumping\n"
    "         SERVICE [ARGS]: dumps only service SERVICE, optionally passing ARGS to it\n")


class DumpError(Exception):
    """A status a dump step ends with (dumpsys reports it and goes on)."""


# -- libbinderdebug -------------------------------------------------------------------------------------


def proc_files(device: str, pid: int) -> list[str]:
    """Where libbinderdebug looks for a process's binder state: binderfs's binder_logs/proc/PID,
    then /d/binder/proc/PID (debugfs); on a vbinder mount, the mount's copies of both."""
    root = ""
    from vbinder_client.device import vbinder_mounts

    for mount in vbinder_mounts():
        if os.path.abspath(device).startswith(mount.rstrip("/") + "/"):
            root = mount
    return [f"{root}/dev/binderfs/binder_logs/proc/{pid}", f"{root}/sys/kernel/debug/binder/proc/{pid}"]


def scan_context(device: str, pid: int, context: str, each_line: Callable[[str], None]) -> None:
    """scanBinderContext: each line of ``pid``'s section for ``context``; OSError if unreadable."""
    text = None
    error: OSError | None = None
    for path in proc_files(device, pid):
        try:
            with open(path) as f:
                text = f.read()
            break
        except OSError as e:
            error = error or e
    if text is None:
        raise error or FileNotFoundError(pid)
    desired = False
    for line in text.splitlines():
        if line.startswith("context"):
            desired = line.split(" ")[-1] == context
            continue
        if desired:
            each_line(line)


def binder_pid_info(device: str, pid: int, context: str) -> tuple[int, int]:
    """getBinderPidInfo: (threads in use, looper threads) from ``  thread N: l XY`` lines: X is
    the state (1: waiting in the driver, 2: poll), Y the looper kind (0: not a looper)."""
    usage = count = 0

    def line(text: str) -> None:
        nonlocal usage, count
        if text.startswith("  thread "):
            pos = text.find("l ")
            if pos >= 0 and len(text) > pos + 3:
                if text[pos + 3] == "0":  # a thread that called into binder, not a looper
                    return
                if text[pos + 2] != "1":
                    usage += 1
                count += 1

    scan_context(device, pid, context, line)
    return usage, count


def binder_client_pids(device: str, pid: int, service_pid: int, handle: int, context: str) -> list[int]:
    """getBinderClientPids: the node ``pid``'s ref ``handle`` points at, then the pids after
    ``proc`` on that node's line in ``service_pid``'s state."""
    node = -1

    def ref(text: str) -> None:
        nonlocal node
        if not text.startswith("  ref "):
            return
        tokens = text.split()
        if len(tokens) > 5 and tokens[3].lstrip("-").isdigit() and int(tokens[3]) == handle \
                and tokens[5].lstrip("-").isdigit():
            node = int(tokens[5])

    scan_context(device, pid, context, ref)
    pids: list[int] = []
    if node < 0:
        return pids

    def node_line(text: str) -> None:
        if not text.startswith("  node "):
            return
        tokens = text.split()
        if tokens[1] == "work" or tokens[1][:-1] != str(node):
            return
        in_pids = False
        for token in tokens:
            if token == "proc":
                in_pids = True
            elif in_pids and token.lstrip("-").isdigit():
                pids.append(int(token))

    scan_context(device, service_pid, context, node_line)
    return pids


# -- the command ----------------------------------------------------------------------------------------


class Dumpsys:
    def __init__(self, sm: Any, device: str, context: str) -> None:
        self.sm = sm
        self.device = device
        self.context = context
        self.out = sys.stdout
        self.err = sys.stderr

    def write(self, text: str) -> None:
        self.out.write(text)
        self.out.flush()

    def main(self, argv: Sequence[str]) -> int:
        services: list[str] = []
        args: list[str] = []
        skipped: list[str] = []
        show_list_only = skip_services = wait_for_service = as_proto = False
        dump_type = 0
        timeout_ms = 10000
        priority = DUMP_FLAG_PRIORITY_ALL
        try:
            opts, rest = getopt.getopt(list(argv), "t:T:lw", LONG)
        except getopt.GetoptError as e:
            self.err.write(f"{PROG}: {e}\n\n{USAGE}")
            return 255
        for opt, value in opts:
            if opt == "--skip":
                skip_services = True
            elif opt == "--proto":
                as_proto = True
            elif opt == "--help":
                self.err.write(USAGE)
                return 0
            elif opt == "--priority":
                if value not in PRIORITIES:
                    self.err.write("\n" + USAGE)
                    return 255
                priority = PRIORITIES[value]
            elif opt in ("--dump", "--pid", "--stability", "--thread", "--clients"):
                dump_type |= {"--dump": TYPE_DUMP, "--pid": TYPE_PID, "--stability": TYPE_STABILITY,
                              "--thread": TYPE_THREAD, "--clients": TYPE_CLIENTS}[opt]
            elif opt in ("-t", "-T"):
                number = value.strip() if value.strip().lstrip("+-").isdigit() else None
                ms = int(number) * (1000 if opt == "-t" else 1) if number is not None else 0
                if number is None or ms <= 0:
                    what = "seconds" if opt == "-t" else "milliseconds"
                    self.err.write(f"Error: invalid timeout({what}) number: '{value}'\n")
                    return 255
                timeout_ms = ms
            elif opt == "-l":
                show_list_only = True
            elif opt == "-w":
                wait_for_service = True
        dump_type = dump_type or TYPE_DUMP
        for i, arg in enumerate(rest):
            if skip_services:
                skipped.append(arg)
            elif i == 0:
                services.append(arg)
            else:
                args.append(arg)
                as_proto = as_proto or arg == "--proto"
        if (skip_services and not skipped) or (wait_for_service and not services) or \
                (show_list_only and (services or skipped)):
            self.err.write(USAGE)
            return 255
        if not services or show_list_only:
            services = self.list_services(priority, as_proto)
            args = self.service_args(args, as_proto, priority)
        n = len(services)
        if n > 1 or show_list_only:
            self.write("Currently running services:\n")
            for name in services:
                if self.sm.check_service(name) is not None:
                    self.write(f"  {name}{' (skipped)' if name in skipped else ''}\n")
        if show_list_only:
            return 0
        for name in services:
            if name in skipped:
                continue
            self.dump_one(name, args, dump_type, timeout_ms, priority, n > 1, as_proto, wait_for_service)
        return 0

    def list_services(self, priority: int, as_proto: bool) -> list[str]:
        names = sorted(self.sm.list_services(priority))
        if as_proto:
            proto = set(self.sm.list_services(DUMP_FLAG_PROTO))
            names = [n for n in names if n in proto]
        return names

    @staticmethod
    def service_args(args: list[str], as_proto: bool, priority: int) -> list[str]:
        """setServiceArgs: --proto, -a, --dump-priority LEVEL in front of the user's."""
        if as_proto:
            args = ["--proto", *args]
        if priority in (DUMP_FLAG_PRIORITY_ALL, DUMP_FLAG_PRIORITY_NORMAL, DUMP_FLAG_PRIORITY_DEFAULT):
            args = ["-a", *args]
        if priority in (DUMP_FLAG_PRIORITY_CRITICAL, DUMP_FLAG_PRIORITY_HIGH, DUMP_FLAG_PRIORITY_NORMAL):
            level = next(k for k, v in PRIORITIES.items() if v == priority)
            args = ["--dump-priority", level, *args]
        return args

    def dump_one(self, name: str, args: list[str], dump_type: int, timeout_ms: int, priority: int,
                 separator: bool, as_proto: bool, wait: bool) -> None:
        service = self.sm.get_service(name, timeout=float("inf")) if wait else self.sm.check_service(name)
        if service is None:
            self.err.write(f"Can't find service: {name}\n")
            return
        read_end, write_end = os.pipe()
        worker = threading.Thread(target=self.dump_thread, args=(service, name, args, dump_type, write_end),
                                  daemon=True, name=f"dumpsys {name}")
        worker.start()
        if separator:
            self.write_header(name, priority)
        start = time.monotonic()
        timed_out = self.copy(read_end, timeout_ms)
        if timed_out and not as_proto:
            self.write(f"\n*** SERVICE '{name}' DUMP TIMEOUT ({timeout_ms}ms) EXPIRED ***\n\n")
        elapsed = time.monotonic() - start
        if timed_out:  # std::cout's copy of the message
            self.write(f"\n*** SERVICE '{name}' DUMP TIMEOUT ({timeout_ms}ms) EXPIRED ***\n\n")
        if separator:
            ending = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime())
            self.write(f"--------- {elapsed:.3f}s was the duration of dumpsys {name}, ending at: {ending}\n")
        if not timed_out:
            worker.join()
        os.close(read_end)  # a detached dump that outlived its time writes into a closed pipe

    def write_header(self, name: str, priority: int) -> None:
        msg = "-" * 79 + "\n"
        if priority in (DUMP_FLAG_PRIORITY_ALL, DUMP_FLAG_PRIORITY_NORMAL, DUMP_FLAG_PRIORITY_DEFAULT):
            msg += f"DUMP OF SERVICE {name}:\n"
        else:
            level = next(k for k, v in PRIORITIES.items() if v == priority)
            msg += f"DUMP OF SERVICE {level} {name}:\n"
        self.write(msg)

    def copy(self, fd: int, timeout_ms: int) -> bool:
        """writeDump: copy the pipe to stdout until EOF; True when the time ran out first."""
        end = time.monotonic() + timeout_ms / 1000
        while True:
            left = end - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                return True
            chunk = os.read(fd, 4096)
            if not chunk:
                return False
            self.out.flush()
            os.write(self.out.fileno(), chunk)

    def dump_thread(self, service: Any, name: str, args: list[str], dump_type: int, fd: int) -> None:
        """What dumpsys's thread writes to the pipe, in its order; errors go to stderr."""
        steps: list[tuple[int, str, Callable[[], str]]] = [
            (TYPE_PID, "dumping PID", lambda: self.pid_text(service, dump_type == TYPE_PID)),
            (TYPE_STABILITY, "dumping stability", lambda: f"Stability: {self.stability(service)}\n"),
            (TYPE_THREAD, "dumping thread info", lambda: self.threads_text(service)),
            (TYPE_CLIENTS, "dumping clients info", lambda: self.clients_text(service)),
        ]
        try:
            for flag, context, step in steps:
                if dump_type & flag:
                    try:
                        os.write(fd, step().encode())
                    except (DumpError, OSError) as e:
                        self.err.write(f"Error with service '{name}' while {context}: {e}\n")
            if dump_type & TYPE_DUMP:
                try:
                    self.dump(service, fd, args)
                except (DumpError, OSError) as e:
                    self.err.write(f"Error with service '{name}' while dumping: {e}\n")
        finally:
            os.close(fd)

    @staticmethod
    def dump(service: Any, fd: int, args: list[str]) -> None:
        dump = getattr(service, "dump", None)
        if dump is None:
            raise DumpError("DUMP_TRANSACTION needs file descriptors in transactions, "
                            "which this vbinder does not carry yet")
        try:
            status = dump(fd, args)
        except Exception as e:  # noqa: BLE001 - dumpsys reports the status and goes on
            raise DumpError(f"{type(e).__name__}: {e}") from None
        if status:
            raise DumpError(str(status))

    @staticmethod
    def debug_pid(service: Any) -> int:
        try:
            return int(service.debug_pid())
        except Exception as e:  # noqa: BLE001 - getDebugPid's status
            raise DumpError(f"{type(e).__name__}: {e}") from None

    def pid_text(self, service: Any, exclusive: bool) -> str:
        pid = self.debug_pid(service)
        return f"{pid}\n" if exclusive else f"Service host process PID: {pid}\n"

    def threads_text(self, service: Any) -> str:
        usage, count = binder_pid_info(self.device, self.debug_pid(service), self.context)
        return f"Threads in use: {usage}/{count}\n"

    def clients_text(self, service: Any) -> str:
        from vbinder_client import BpBinder

        if not isinstance(service, BpBinder):
            return "Client PIDs are not available for local binders.\n"
        service_pid = self.debug_pid(service)
        me = os.getpid()
        pids = binder_client_pids(self.device, me, service_pid, service.handle, self.context)
        return "Client PIDs: " + ", ".join(str(p) for p in pids if p != me) + "\n"

    @staticmethod
    def stability(service: Any) -> str:
        """Stability::debugToString: the level its parcel said (vbinder's proxies keep none: system)."""
        return "system stability"


def main(argv: Sequence[str] | None = None) -> int:
    from vbinder_client import ProcessState, default_service_manager

    args = list(sys.argv[1:] if argv is None else argv)
    try:
        ps = ProcessState.self()
        ps.start_thread_pool()
        if not ps.context_proxy().ping():
            raise OSError("no service manager runs on the device")
        sm = default_service_manager(ps)
    except (OSError, ValueError) as e:
        print(f"{PROG}: {e}", file=sys.stderr)
        print(f"{PROG}: Unable to get default service manager!", file=sys.stderr)
        return 20
    context = os.path.basename(ps.transport.path)
    return Dumpsys(sm, ps.transport.path, context).main(args)
