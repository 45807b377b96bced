"""``vbinder service``: AOSP's ``service`` (frameworks/native/cmds/service/service.cpp).

    service [-h|-?]
    service list
    service check SERVICE
    service call SERVICE CODE [i32 N | u32 N | i64 N | u64 N | f N | d N | s16 STR | null
                               | fd f | nfd n | afd f ] ...

The output is service.cpp's, line for line: ``Found N services:`` and ``N\\tNAME: [IFACE]`` (the
interface from INTERFACE_TRANSACTION), ``Service NAME: found``/``not found``, ``Result:
Parcel(...)`` (libbinder's Parcel::print, :mod:`.textoutput`), its messages on stderr, and its
exit codes: 0, 10 for a usage error or an unknown service, 20 without a service manager. Its
quirks too: the arguments before a bad one are still sent, and ``-x`` is reported by getopt and
answered with the usage and exit 0. The device is the client's ($BINDER_DEVICE, the one vbinder
mount, ...); the service manager's release is the process's ($VBINDER_ANDROID).
"""

from __future__ import annotations

import mmap
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any, TextIO

from .textoutput import parcel_text

PROG = "service"
USAGE = (
    "Usage: {p} [-h|-?]\n"
    "       {p} list\n"
    "       {p} check SERVICE\n"
    "       {p} call SERVICE CODE [i32 N | i64 N | f N | d N | s16 STR | null | fd f | nfd n | afd f ] ...\n"
    "Options:\n"
    "   i32: Write the 32-bit integer N into the send parcel.\n"
    "   u32: Write the unsigned 32-bit integer N (decimal) into the send parcel.\n"
    "   i64: Write the 64-bit integer N into the send parcel.\n"
    "   u64: Write the unsigned 64-bit integer N (decimal) into the send parcel.\n"
    "     f: Write the 32-bit single-precision number N into the send parcel.\n"
    "     d: Write the 64-bit double-precision number N into the send parcel.\n"
    "   s16: Write the UTF-16 string STR into the send parcel.\n"
    "  null: Write a null binder into the send parcel.\n"
    "    fd: Write a file descriptor for the file f into the send parcel.\n"
    "   nfd: Write the file descriptor n into the send parcel.\n"
    "   afd: Write an ashmem file descriptor for a region containing the data from\n"
    "          file f into the send parcel.\n"
)


# -- C's number parsing, as service.cpp uses it ---------------------------------------------------


def _leading(text: str, digits: str, sign: bool = True) -> str:
    """The number strto* would parse at the start of ``text`` (after spaces), or ""."""
    s = text.lstrip(" \t\n\v\f\r")
    i = 0
    if sign and i < len(s) and s[i] in "+-":
        i += 1
    j = i
    while j < len(s) and s[j] in digits:
        j += 1
    return s[:j] if j > i else ""


def _wrap(value: int, bits: int, signed: bool) -> int:
    value &= (1 << bits) - 1
    return value - (1 << bits) if signed and value >> (bits - 1) else value


def atoi(text: str) -> int:
    """C's atoi: leading digits, 0 if none, wrapped to an int32."""
    n = _leading(text, "0123456789")
    return _wrap(int(n), 32, True) if n else 0


def atoll(text: str) -> int:
    n = _leading(text, "0123456789")
    return _wrap(int(n), 64, True) if n else 0


def strtoul(text: str, bits: int) -> int:
    """strtoul/strtoull base 10: a negative number wraps, as C's does."""
    n = _leading(text, "0123456789")
    if not n:
        return 0
    value = int(n)
    if value < 0:
        value = (1 << bits) + value
    return min(value, (1 << bits) - 1)


def atof(text: str) -> float:
    s = text.lstrip(" \t\n\v\f\r")
    for end in range(len(s), 0, -1):
        try:
            return float(s[:end])
        except ValueError:
            continue
    return 0.0


# -- the command ----------------------------------------------------------------------------------------


class Service:
    """One run of the command: its service manager, and where it writes."""

    def __init__(self, out: TextIO, err: TextIO) -> None:
        self.out = out
        self.err = err

    def main(self, argv: Sequence[str]) -> int:
        wants_usage = False
        result = 0
        optind = 0
        while optind < len(argv) and argv[optind].startswith("-") and argv[optind] != "-":
            if argv[optind] == "--":
                optind += 1
                break
            for ch in argv[optind][1:]:
                if ch not in "h?":
                    self.err.write(f"{PROG}: unknown option -- {ch}\n")  # getopt's own message
                wants_usage = True
            optind += 1

        sm = self._service_manager()
        if sm is None:
            self.err.write(f"{PROG}: Unable to get default service manager!\n")
            return 20
        if optind >= len(argv):
            wants_usage = True
        elif not wants_usage:
            command = argv[optind]
            if command == "check":
                optind += 1
                if optind < len(argv):
                    found = _check(sm, argv[optind]) is not None
                    self.out.write(f"Service {argv[optind]}: {'found' if found else 'not found'}\n")
                else:
                    self.err.write(f"{PROG}: No service specified for check\n")
                    wants_usage, result = True, 10
            elif command == "list":
                names = _list(sm)
                self.out.write(f"Found {len(names)} services:\n")
                for i, name in enumerate(names):
                    service = _check(sm, name)
                    self.out.write(f"{i}\t{name}: [{_descriptor(service)}]\n")
            elif command == "call":
                optind += 1
                if optind + 1 < len(argv):
                    wants_usage, result = self._call(sm, argv, optind)
                else:
                    self.err.write(f"{PROG}: No service specified for call\n" if optind < len(argv) else
                                   f"{PROG}: No code specified for call\n")
                    wants_usage, result = True, 10
            else:
                self.err.write(f"{PROG}: Unknown command {command}\n")
                wants_usage, result = True, 10
        if wants_usage:
            self.out.write(USAGE.format(p=PROG))
        return result

    def _service_manager(self) -> Any:
        """defaultServiceManager(), or None when there is no device or no service manager on it."""
        from vbinder_client import ProcessState, default_service_manager

        try:
            ps = ProcessState.self()
            if not ps.context_proxy().ping():
                return None
            return default_service_manager(ps)
        except (OSError, ValueError) as e:
            self.err.write(f"{PROG}: {e}\n")
            return None

    def _call(self, sm: Any, argv: Sequence[str], optind: int) -> tuple[bool, int]:
        from vbinder_client import Parcel

        name = argv[optind]
        service = _check(sm, name)
        descriptor = _descriptor(service)
        code = atoi(argv[optind + 1])
        optind += 2
        if service is None or not descriptor:
            self.err.write(f"{PROG}: Service {name} does not exist\n")
            return False, 10
        data = Parcel()
        data.write_interface_token(descriptor)
        wants_usage, result = False, 0
        writers: dict[str, tuple[str, Callable[[str], None]]] = {
            "i32": ("integer", lambda a: data.write_int32(atoi(a))),
            "u32": ("unsigned integer", lambda a: data.write_uint32(strtoul(a, 32))),
            "i64": ("integer", lambda a: data.write_int64(atoll(a))),
            "u64": ("unsigned integer", lambda a: data.write_uint64(strtoul(a, 64))),
            "s16": ("string", lambda a: data.write_string16(a)),
            "f": ("number", lambda a: data.write_float(atof(a))),
            "d": ("number", lambda a: data.write_double(atof(a))),
            "fd": ("path", lambda a: self._fd(data, a, ashmem=False)),
            "afd": ("path", lambda a: self._fd(data, a, ashmem=True)),
            "nfd": ("file descriptor", lambda a: _write_fd(data, atoi(a))),
        }
        while optind < len(argv):
            kind = argv[optind]
            if kind == "null":
                optind += 1
                data.write_strong_binder(None)
                continue
            if kind not in writers:
                self.err.write(f"{PROG}: unknown option {kind}\n")
                wants_usage, result = True, 10
                break
            what, write = writers[kind]
            optind += 1
            if optind >= len(argv):
                self.err.write(f"{PROG}: no {what} supplied for '{kind}'\n")
                wants_usage, result = True, 10
                break
            try:
                write(argv[optind])
            except _ArgError as e:
                self.err.write(f"{PROG}: {e}\n")
                wants_usage, result = True, 10
                break
            optind += 1
        # As service.cpp: a bad argument ends the list, and the call goes with what came before it.
        reply = _transact(service, code, data)
        self.out.write(f"Result: {parcel_text(reply.data() if reply is not None else None, _objects(reply))}\n")
        return wants_usage, result

    def _fd(self, data: Any, path: str, ashmem: bool) -> None:
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            raise _ArgError(f"could not open{' or stat' if ashmem else ''} '{path}'") from None
        if not ashmem:
            _write_fd(data, fd)
            return
        # ashmem_create_region("test", size) + mmap + read: a memfd holding the file's bytes
        size = os.fstat(fd).st_size
        afd = os.memfd_create("test")
        os.ftruncate(afd, size)
        if size:
            with mmap.mmap(afd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE) as region:
                region[:] = os.read(fd, size).ljust(size, b"\0")
        os.close(fd)
        _write_fd(data, afd)


class _ArgError(Exception):
    """An argument service.cpp refuses (its message follows ``service: ``)."""


def _write_fd(data: Any, fd: int) -> None:
    """writeFileDescriptor(fd, takeOwnership): needs the client's file descriptors."""
    write = getattr(data, "write_file_descriptor", None)
    if write is None:
        raise _ArgError("file descriptors need a vbinder that carries them in transactions")
    write(fd, True)


def _check(sm: Any, name: str) -> Any:
    """checkService: the binder, or None, also when the call fails (a service manager of another
    Android release answers with an exception: ServiceManagerShim returns nullptr)."""
    try:
        return sm.check_service(name)
    except Exception:  # noqa: BLE001 - libbinder's answer to any failure here is "no service"
        return None


def _list(sm: Any) -> list[str]:
    """listServices: the names, or none when the call fails (ServiceManagerShim returns {})."""
    try:
        return list(sm.list_services())
    except Exception:  # noqa: BLE001 - as _check
        return []


def _descriptor(service: Any) -> str:
    """getInterfaceDescriptor(): INTERFACE_TRANSACTION's answer, "" if the call fails."""
    if service is None:
        return ""
    try:
        return str(service.interface_descriptor())
    except Exception:  # noqa: BLE001 - a dead or refusing service has no descriptor, as in libbinder
        return ""


def _transact(service: Any, code: int, data: Any) -> Any:
    """service->transact(code, data, &reply): the reply, or None (an empty parcel) on failure."""
    try:
        return service.transact(code & 0xFFFFFFFF, data)
    except Exception:  # noqa: BLE001 - service.cpp prints the (empty) reply whatever transact said
        return None


def _objects(reply: Any) -> list[int]:
    return list(reply.objects()) if reply is not None else []


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        return Service(sys.stdout, sys.stderr).main(args)
    finally:
        sys.stdout.flush()

