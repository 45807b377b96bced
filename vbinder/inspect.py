"""``vbinder state``, ``vbinder log`` and ``vbinder param``: the debug files without their paths."""

from __future__ import annotations

import argparse
import errno
import os
import sys

from vbinder_client.device import vbinder_mounts

from .driver.log import AllocDebug, Debug
from .driver.profile import DEBUG_BITS_3_4
from .explain import decode_line
from .fs.mounts import MountError

DEBUGFS = "sys/kernel/debug/binder"
PARAMS = {
    "debug_mask": "sys/module/binder/parameters/debug_mask",
    "stop_on_user_error": "sys/module/binder/parameters/stop_on_user_error",
    "devices": "sys/module/binder/parameters/devices",
    "alloc_debug_mask": "sys/module/binder_alloc/parameters/debug_mask",
    "proc_no_lock": "sys/module/binder/parameters/proc_no_lock",  # the 3.x profile's
}


def _bit_names(flags: type) -> tuple[str, ...]:
    """The names of a class of mask bits (the driver's Debug, AllocDebug), by bit number."""
    bits = {getattr(flags, n): n for n in dir(flags) if n.isupper()}
    return tuple(bits[1 << i] for i in range(len(bits)))


# debug_mask bits as binder.c names them, for a readable `vbinder param`.
DEBUG_BITS = _bit_names(Debug)
ALLOC_BITS = _bit_names(AllocDebug)


def find_mount(explicit: str | None) -> str:
    """The vbinder mount to read: ``explicit``, or the only one in /proc/mounts."""
    if explicit:
        return explicit
    mounts = vbinder_mounts()
    if len(mounts) == 1:
        return mounts[0]
    if not mounts:
        raise MountError("no vbinder mount (mount one with `vbinder mount DIR`)")
    raise MountError(f"several vbinder mounts ({', '.join(mounts)}): choose one with --mount")


def _bits(value: int, names: tuple[str, ...]) -> str:
    set_ = [n for i, n in enumerate(names) if value & (1 << i)]
    return " | ".join(set_) if set_ else "none"


def _color(text: str, code: str) -> str:
    return f"\033[{code}m{text}\033[0m" if sys.stdout.isatty() else text


def _highlight(line: str) -> str:
    """On a terminal: log levels and failures stand out."""
    if not sys.stdout.isatty():
        return line
    if "failed" in line or "ERROR" in line or "<3>" in line:
        return _color(line, "31")
    if " BC_" in line or " BR_" in line:
        return _color(line, "36")
    return line


def state(mount: str, name: str) -> int:
    path = os.path.join(mount, DEBUGFS, name)
    try:
        with open(path) as f:
            sys.stdout.write(f.read())
    except FileNotFoundError:
        print(f"vbinder state: no {name} in {os.path.join(mount, DEBUGFS)}", file=sys.stderr)
        return 1
    return 0


def log(mount: str | None, follow: bool, grep: str | None, decode: bool = False, source: str | None = None) -> int:
    """Print the mount's proc/kmsg, or ``source`` (a file, - for stdin); ``decode`` names numbers."""
    if source == "-":
        fd = os.dup(sys.stdin.fileno())
    elif source is not None:
        fd = os.open(source, os.O_RDONLY)
    else:
        assert mount is not None
        fd = os.open(os.path.join(mount, "proc", "kmsg"), os.O_RDONLY | (0 if follow else os.O_NONBLOCK))
    buf = b""
    try:
        while True:
            try:
                chunk = os.read(fd, 65536)
            except BlockingIOError:
                break  # nothing new: without --follow, done
            buf += chunk
            *lines, buf = buf.split(b"\n")
            if not chunk and buf:
                lines, buf = [*lines, buf], b""
            for raw in lines:
                line = raw.decode(errors="replace")
                if grep is None or grep in line:
                    print(_highlight(decode_line(line) if decode else line), flush=follow)
            if not chunk:
                break
    except KeyboardInterrupt:
        pass
    finally:
        os.close(fd)
    return 0


def param(mount: str, name: str | None, value: str | None) -> int:
    if name is None:
        legacy = os.path.exists(os.path.join(mount, PARAMS["proc_no_lock"]))  # a 3.x profile's mount
        for n, rel in PARAMS.items():
            if not os.path.exists(os.path.join(mount, rel)):
                continue  # not a parameter of this mount's driver
            with open(os.path.join(mount, rel)) as f:
                text = f.read().strip()
            extra = ""
            if n in ("debug_mask", "alloc_debug_mask"):
                names = ALLOC_BITS if n == "alloc_debug_mask" else DEBUG_BITS_3_4 if legacy else DEBUG_BITS
                extra = f"  ({_bits(int(text), names)})"
            print(f"{n:<20} {text}{extra}")
        return 0
    known = PARAMS.get(name)
    if known is None:
        print(f"vbinder param: no parameter {name!r} (one of {', '.join(PARAMS)})", file=sys.stderr)
        return 2
    path = os.path.join(mount, known)
    if value is None:
        with open(path) as f:
            sys.stdout.write(f.read())
        return 0
    try:
        with open(path, "w") as f:
            f.write(value + "\n")
    except OSError as e:
        why = {errno.EINVAL: "not a valid value", errno.ERANGE: "out of range",
               errno.EACCES: "not writable (read-only, or you are not root)"}.get(e.errno or 0, e.strerror)
        print(f"vbinder param: {name} = {value!r}: {why}", file=sys.stderr)
        return 1
    return 0


def main(args: argparse.Namespace) -> int:
    if args.command == "log" and args.input is not None:
        try:
            return log(None, args.follow, args.grep, args.decode, args.input)
        except OSError as e:
            print(f"vbinder log: {args.input}: {e.strerror}", file=sys.stderr)
            return 1
    mount = find_mount(args.mount)
    if args.command == "state":
        return state(mount, args.file)
    if args.command == "log":
        return log(mount, args.follow, args.grep, args.decode)
    return param(mount, args.name, args.value)
