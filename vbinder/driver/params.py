"""The module parameters of 6.1's binder, as /sys/module/*/parameters files.

``binder``: ``debug_mask`` (uint, 0644), ``stop_on_user_error`` (int, 0644, with
binder_set_stop_on_user_error as setter) and ``devices`` (charp, 0444); ``binder_alloc``:
``debug_mask`` (uint, 0644). Their values live in the driver's :class:`~.log.Log`. The 3.x
profile has 3.4's: ``debug_mask`` (binder.c's one mask), ``proc_no_lock`` (bool) and
``stop_on_user_error``.

A read gives param_get_uint/int/charp's text. A write is what a write(2) to the sysfs file does
(kernfs_fop_write_iter, sysfs_kf_write, param_attr_store, param_set_uint/int): at most one page
is taken, an empty write does nothing, the text ends at the first NUL, and it is parsed by
kstrtouint/kstrtoint with base 0 (lib/kstrtox.c): decimal, ``0x`` hex, ``0`` octal, one
leading ``+`` (or ``-`` for int), one trailing newline. Garbage raises BinderError(EINVAL), a
value out of range BinderError(ERANGE) (as the oracle shows), and the value stays unchanged.
"""

from __future__ import annotations

import errno
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from .errors import BinderError

if TYPE_CHECKING:
    from .driver import Driver

PAGE_SIZE = 4096
_U64 = (1 << 64) - 1


# -- lib/kstrtox.c ------------------------------------------------------------------------------


def _at(s: bytes, i: int) -> int:
    """s[i] of a NUL-terminated C string."""
    return s[i] if i < len(s) else 0


def _isxdigit(c: int) -> bool:
    return 0x30 <= c <= 0x39 or 0x61 <= (c | 0x20) <= 0x66


def _parse_integer_fixup_radix(s: bytes, base: int) -> tuple[int, int]:
    """_parse_integer_fixup_radix: the base (0: from the prefix) and where the digits start."""
    if base == 0:
        if _at(s, 0) == 0x30:  # '0'
            base = 16 if (_at(s, 1) | 0x20) == 0x78 and _isxdigit(_at(s, 2)) else 8
        else:
            base = 10
    if base == 16 and _at(s, 0) == 0x30 and (_at(s, 1) | 0x20) == 0x78:
        return base, 2
    return base, 0


def _parse_integer(s: bytes, pos: int, base: int) -> tuple[int, int, bool]:
    """_parse_integer: the value of the digits at ``pos``, how many there are, and whether it
    overflowed 64 bits."""
    res = 0
    rv = 0
    overflow = False
    while True:
        c = _at(s, pos + rv)
        lc = c | 0x20
        if 0x30 <= c <= 0x39:
            val = c - 0x30
        elif 0x61 <= lc <= 0x66:
            val = lc - 0x61 + 10
        else:
            break
        if val >= base:
            break
        if res >> 60 and res > (_U64 - val) // base:
            overflow = True
        res = (res * base + val) & _U64
        rv += 1
    return res, rv, overflow


def _kstrtoull(s: bytes, base: int) -> int:
    """_kstrtoull: _parse_integer_fixup_radix, _parse_integer, then one optional newline."""
    base, pos = _parse_integer_fixup_radix(s, base)
    res, rv, overflow = _parse_integer(s, pos, base)
    if overflow:
        raise BinderError(errno.ERANGE, "number out of range")
    if rv == 0:
        raise BinderError(errno.EINVAL, "not a number")
    pos += rv
    if _at(s, pos) == 0x0A:  # '\n'
        pos += 1
    if _at(s, pos):
        raise BinderError(errno.EINVAL, "trailing characters")
    return res


def kstrtoull(s: bytes, base: int = 0) -> int:
    """kstrtoull: one leading '+' allowed."""
    if _at(s, 0) == 0x2B:  # '+'
        s = s[1:]
    return _kstrtoull(s, base)


def _s64(x: int) -> int:
    x &= _U64
    return x - (1 << 64) if x >> 63 else x


def kstrtoll(s: bytes, base: int = 0) -> int:
    """kstrtoll: a leading '-' (then no '+'), or what kstrtoull takes."""
    if _at(s, 0) == 0x2D:  # '-'
        tmp = _kstrtoull(s[1:], base)
        if _s64(-tmp) > 0:
            raise BinderError(errno.ERANGE, "number out of range")
        return _s64(-tmp)
    tmp = kstrtoull(s, base)
    if _s64(tmp) < 0:
        raise BinderError(errno.ERANGE, "number out of range")
    return tmp


def kstrtouint(s: bytes, base: int = 0) -> int:
    """kstrtouint: kstrtoull, then the value must fit 32 bits."""
    tmp = kstrtoull(s, base)
    if tmp > 0xFFFFFFFF:
        raise BinderError(errno.ERANGE, "number out of range")
    return tmp


def kstrtoint(s: bytes, base: int = 0) -> int:
    """kstrtoint: kstrtoll, then the value must fit a signed 32-bit int."""
    tmp = kstrtoll(s, base)
    if not -(1 << 31) <= tmp < (1 << 31):
        raise BinderError(errno.ERANGE, "number out of range")
    return tmp


def strtobool(s: bytes) -> bool:
    """param_set_bool of 3.x (strtobool): y, Y or 1 is true, n, N or 0 false, else EINVAL."""
    c = _at(s, 0)
    if c in (0x79, 0x59, 0x31):  # y Y 1
        return True
    if c in (0x6E, 0x4E, 0x30):  # n N 0
        return False
    raise BinderError(errno.EINVAL, "not a boolean")


# -- parameters ---------------------------------------------------------------------------------


class Param:
    """One parameter file: ``read()`` gives its text, ``write(data)`` stores like a write(2)."""

    def __init__(self, module: str, name: str, mode: int, get: Callable[[], bytes],
                 store: Callable[[bytes], None] | None = None) -> None:
        self.module = module
        self.name = name
        self.mode = mode
        self._get = get
        self._store = store

    @property
    def path(self) -> str:
        """Its path below the mount: ``sys/module/<module>/parameters/<name>``."""
        return f"sys/module/{self.module}/parameters/{self.name}"

    @property
    def writable(self) -> bool:
        """Whether the file has a store at all (kernfs refuses an open for writing otherwise)."""
        return self._store is not None and bool(self.mode & 0o222)

    def read(self) -> bytes:
        """param_attr_show: the value's text, with its newline."""
        return self._get()

    def write(self, data: bytes) -> int:
        """One write(2): returns the bytes taken (at most a page); raises BinderError.

        EACCES for a read-only parameter (kernfs_fop_open), EINVAL/ERANGE from the parse.
        """
        if not self.writable:
            raise BinderError(errno.EACCES, f"{self.name} is read-only")
        data = data[:PAGE_SIZE]  # kernfs_fop_write_iter: no atomic_write_len, one page
        if not data:
            return 0  # sysfs_kf_write
        assert self._store is not None
        self._store(data.split(b"\0", 1)[0])  # the buffer is a C string
        return len(data)  # param_attr_store returns the whole length


class Params:
    """All parameter files of the driver, by (module, name).

    ``user_error_wait`` is 6.1's binder_user_error_wait: the callables in it are run when a
    write to ``stop_on_user_error`` leaves the value below 2 (the I/O layer lets held calls run).
    """

    def __init__(self, driver: Driver) -> None:
        self.driver = driver
        self.user_error_wait: list[Callable[[], None]] = []
        self.proc_no_lock = False
        log = driver.log

        def set_debug_mask(s: bytes) -> None:
            log.set_debug_mask(kstrtouint(s))

        def get_debug_mask() -> bytes:
            return b"%u\n" % (log.debug_mask if driver.profile.alloc_module else log.debug_param)

        def set_alloc_debug_mask(s: bytes) -> None:
            log.alloc_debug_mask = kstrtouint(s)

        def set_stop_on_user_error(s: bytes) -> None:
            """binder_set_stop_on_user_error: param_set_int, then wake (even if that failed)."""
            error: BinderError | None = None
            try:
                log.stop_on_user_error = kstrtoint(s)
            except BinderError as e:
                error = e
            if log.stop_on_user_error < 2:
                for wake in list(self.user_error_wait):
                    wake()
            if error is not None:
                raise error

        def set_proc_no_lock(s: bytes) -> None:
            self.proc_no_lock = strtobool(s)

        params = [
            Param("binder", "debug_mask", 0o644, get_debug_mask, set_debug_mask),
            Param("binder", "stop_on_user_error", 0o644, lambda: b"%d\n" % log.stop_on_user_error,
                  set_stop_on_user_error),
        ]
        if driver.profile.alloc_module:  # 6.1: binder_alloc is a module of its own, devices a parameter
            devices = ",".join(driver.devices)
            params += [
                Param("binder", "devices", 0o444, lambda: devices.encode() + b"\n"),
                Param("binder_alloc", "debug_mask", 0o644, lambda: b"%u\n" % log.alloc_debug_mask,
                      set_alloc_debug_mask),
            ]
        else:  # 3.x: the debugfs printers' proc_no_lock (bool, S_IWUSR | S_IRUGO)
            params.insert(1, Param("binder", "proc_no_lock", 0o644,
                                   lambda: b"Y\n" if self.proc_no_lock else b"N\n", set_proc_no_lock))
        self._params: dict[tuple[str, str], Param] = {(p.module, p.name): p for p in params}

    def __iter__(self) -> Iterator[Param]:
        return iter(self._params.values())

    def get(self, module: str, name: str) -> Param:
        """The parameter ``name`` of ``module`` (KeyError if there is none)."""
        return self._params[(module, name)]

    def read(self, module: str, name: str) -> bytes:
        return self.get(module, name).read()

    def write(self, module: str, name: str, data: bytes) -> int:
        return self.get(module, name).write(data)
