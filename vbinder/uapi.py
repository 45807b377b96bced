"""Binder UAPI: ioctl numbers, BC/BR codes, object types and struct layouts (64-bit, protocol 8).

The values are Linux 6.1's ``include/uapi/linux/android/binder.h``; a test checks every one of
them against ``shared/oracle/samples/abi_from_linux_libc_dev_6.1.187.txt``. Standard library only:
the client imports this module where pyfuse3 and trio are absent.
"""

from __future__ import annotations

import struct
from typing import Final

# --- ioctl encoding (asm-generic/ioctl.h) -----------------------------------------------------

IOC_NONE: Final = 0
IOC_WRITE: Final = 1
IOC_READ: Final = 2


def _ioc(direction: int, kind: str, nr: int, size: int) -> int:
    return (direction << 30) | (size << 16) | (ord(kind) << 8) | nr


def IO(kind: str, nr: int) -> int:  # noqa: N802 - kernel macro name
    return _ioc(IOC_NONE, kind, nr, 0)


def IOW(kind: str, nr: int, size: int) -> int:  # noqa: N802
    return _ioc(IOC_WRITE, kind, nr, size)


def IOR(kind: str, nr: int, size: int) -> int:  # noqa: N802
    return _ioc(IOC_READ, kind, nr, size)


def IOWR(kind: str, nr: int, size: int) -> int:  # noqa: N802
    return _ioc(IOC_READ | IOC_WRITE, kind, nr, size)


def ioc_size(cmd: int) -> int:
    return (cmd >> 16) & 0x3FFF


def ioc_dir(cmd: int) -> int:
    return (cmd >> 30) & 0x3


def ioc_nr(cmd: int) -> int:
    return cmd & 0xFF


# --- struct layouts -----------------------------------------------------------------------------

WRITE_READ: Final = struct.Struct("<QQQQQQ")  # write_size, write_consumed, write_buffer, read_*
TRANSACTION_DATA: Final = struct.Struct("<QQIIiIQQQQ")  # target, cookie, code, flags, pid, euid, sizes, ptrs
TRANSACTION_DATA_SECCTX: Final = struct.Struct("<64sQ")
TRANSACTION_DATA_SG: Final = struct.Struct("<64sQ")
FLAT_BINDER_OBJECT: Final = struct.Struct("<IIQQ")  # type, flags, binder/handle, cookie
FD_OBJECT: Final = struct.Struct("<IIQQ")
BUFFER_OBJECT: Final = struct.Struct("<IIQQQQ")  # type, flags, buffer, length, parent, parent_offset
FD_ARRAY_OBJECT: Final = struct.Struct("<IIQQQ")  # type, pad, num_fds, parent, parent_offset
HANDLE_COOKIE: Final = struct.Struct("<IQ")  # __packed
PTR_COOKIE: Final = struct.Struct("<QQ")
PRI_PTR_COOKIE: Final = struct.Struct("<iIQQ")
PRI_DESC: Final = struct.Struct("<iI")
NODE_DEBUG_INFO: Final = struct.Struct("<QQII")
NODE_INFO_FOR_REF: Final = struct.Struct("<IIIIII")
FREEZE_INFO: Final = struct.Struct("<III")
FROZEN_STATUS_INFO: Final = struct.Struct("<III")
EXTENDED_ERROR: Final = struct.Struct("<IIi")
VERSION: Final = struct.Struct("<i")
U32: Final = struct.Struct("<I")
S32: Final = struct.Struct("<i")
U64: Final = struct.Struct("<Q")

# Sizes as the kernel's sizeof() reports them.
SIZES: Final[dict[str, int]] = {
    "binder_write_read": WRITE_READ.size,
    "binder_transaction_data": TRANSACTION_DATA.size,
    "binder_transaction_data_secctx": TRANSACTION_DATA_SECCTX.size,
    "binder_transaction_data_sg": TRANSACTION_DATA_SG.size,
    "flat_binder_object": FLAT_BINDER_OBJECT.size,
    "binder_fd_object": FD_OBJECT.size,
    "binder_buffer_object": BUFFER_OBJECT.size,
    "binder_fd_array_object": FD_ARRAY_OBJECT.size,
    "binder_handle_cookie": HANDLE_COOKIE.size,
    "binder_ptr_cookie": PTR_COOKIE.size,
    "binder_pri_ptr_cookie": PRI_PTR_COOKIE.size,
    "binder_node_debug_info": NODE_DEBUG_INFO.size,
    "binder_node_info_for_ref": NODE_INFO_FOR_REF.size,
    "binder_freeze_info": FREEZE_INFO.size,
    "binder_frozen_status_info": FROZEN_STATUS_INFO.size,
    "binder_extended_error": EXTENDED_ERROR.size,
}

# Offsets inside binder_transaction_data, as offsetof() reports them.
TR_OFFSETS: Final[dict[str, int]] = {
    "code": 16, "flags": 20, "sender_pid": 24, "sender_euid": 28,
    "data_size": 32, "offsets_size": 40, "data": 48,
}

# --- ioctls ---------------------------------------------------------------------------------------

BINDER_CURRENT_PROTOCOL_VERSION: Final = 8

BINDER_WRITE_READ: Final = IOWR("b", 1, WRITE_READ.size)
BINDER_SET_IDLE_TIMEOUT: Final = IOW("b", 3, 8)
BINDER_SET_MAX_THREADS: Final = IOW("b", 5, 4)
BINDER_SET_IDLE_PRIORITY: Final = IOW("b", 6, 4)
BINDER_SET_CONTEXT_MGR: Final = IOW("b", 7, 4)
BINDER_THREAD_EXIT: Final = IOW("b", 8, 4)
BINDER_VERSION: Final = IOWR("b", 9, 4)
BINDER_GET_NODE_DEBUG_INFO: Final = IOWR("b", 11, NODE_DEBUG_INFO.size)
BINDER_GET_NODE_INFO_FOR_REF: Final = IOWR("b", 12, NODE_INFO_FOR_REF.size)
BINDER_SET_CONTEXT_MGR_EXT: Final = IOW("b", 13, FLAT_BINDER_OBJECT.size)
BINDER_FREEZE: Final = IOW("b", 14, FREEZE_INFO.size)
BINDER_GET_FROZEN_INFO: Final = IOWR("b", 15, FROZEN_STATUS_INFO.size)
BINDER_ENABLE_ONEWAY_SPAM_DETECTION: Final = IOW("b", 16, 4)
BINDER_GET_EXTENDED_ERROR: Final = IOWR("b", 17, EXTENDED_ERROR.size)

IOCTLS: Final[dict[str, int]] = {
    name: value for name, value in globals().items()
    if name.startswith("BINDER_") and isinstance(value, int) and name != "BINDER_CURRENT_PROTOCOL_VERSION"
}

# linux/android/binderfs.h (not binder.h, so not in IOCTLS): binder-control's one ioctl creates a
# device in a binderfs mount.
BINDERFS_MAX_NAME: Final = 255
BINDERFS_DEVICE: Final = struct.Struct(f"<{BINDERFS_MAX_NAME + 1}sII")  # name, major, minor
BINDER_CTL_ADD: Final = IOWR("b", 1, BINDERFS_DEVICE.size)

# --- BR (driver -> user) and BC (user -> driver) ------------------------------------------------

BR_ERROR: Final = IOR("r", 0, 4)
BR_OK: Final = IO("r", 1)
BR_TRANSACTION_SEC_CTX: Final = IOR("r", 2, TRANSACTION_DATA_SECCTX.size)
BR_TRANSACTION: Final = IOR("r", 2, TRANSACTION_DATA.size)
BR_REPLY: Final = IOR("r", 3, TRANSACTION_DATA.size)
BR_ACQUIRE_RESULT: Final = IOR("r", 4, 4)
BR_DEAD_REPLY: Final = IO("r", 5)
BR_TRANSACTION_COMPLETE: Final = IO("r", 6)
BR_INCREFS: Final = IOR("r", 7, PTR_COOKIE.size)
BR_ACQUIRE: Final = IOR("r", 8, PTR_COOKIE.size)
BR_RELEASE: Final = IOR("r", 9, PTR_COOKIE.size)
BR_DECREFS: Final = IOR("r", 10, PTR_COOKIE.size)
BR_ATTEMPT_ACQUIRE: Final = IOR("r", 11, PRI_PTR_COOKIE.size)
BR_NOOP: Final = IO("r", 12)
BR_SPAWN_LOOPER: Final = IO("r", 13)
BR_FINISHED: Final = IO("r", 14)
BR_DEAD_BINDER: Final = IOR("r", 15, 8)
BR_CLEAR_DEATH_NOTIFICATION_DONE: Final = IOR("r", 16, 8)
BR_FAILED_REPLY: Final = IO("r", 17)
BR_FROZEN_REPLY: Final = IO("r", 18)
BR_ONEWAY_SPAM_SUSPECT: Final = IO("r", 19)

BC_TRANSACTION: Final = IOW("c", 0, TRANSACTION_DATA.size)
BC_REPLY: Final = IOW("c", 1, TRANSACTION_DATA.size)
BC_ACQUIRE_RESULT: Final = IOW("c", 2, 4)
BC_FREE_BUFFER: Final = IOW("c", 3, 8)
BC_INCREFS: Final = IOW("c", 4, 4)
BC_ACQUIRE: Final = IOW("c", 5, 4)
BC_RELEASE: Final = IOW("c", 6, 4)
BC_DECREFS: Final = IOW("c", 7, 4)
BC_INCREFS_DONE: Final = IOW("c", 8, PTR_COOKIE.size)
BC_ACQUIRE_DONE: Final = IOW("c", 9, PTR_COOKIE.size)
BC_ATTEMPT_ACQUIRE: Final = IOW("c", 10, PRI_DESC.size)
BC_REGISTER_LOOPER: Final = IO("c", 11)
BC_ENTER_LOOPER: Final = IO("c", 12)
BC_EXIT_LOOPER: Final = IO("c", 13)
BC_REQUEST_DEATH_NOTIFICATION: Final = IOW("c", 14, HANDLE_COOKIE.size)
BC_CLEAR_DEATH_NOTIFICATION: Final = IOW("c", 15, HANDLE_COOKIE.size)
BC_DEAD_BINDER_DONE: Final = IOW("c", 16, 8)
BC_TRANSACTION_SG: Final = IOW("c", 17, TRANSACTION_DATA_SG.size)
BC_REPLY_SG: Final = IOW("c", 18, TRANSACTION_DATA_SG.size)

BR_CODES: Final[dict[str, int]] = {
    n: v for n, v in globals().items() if n.startswith("BR_") and isinstance(v, int)
}
BC_CODES: Final[dict[str, int]] = {
    n: v for n, v in globals().items() if n.startswith("BC_") and isinstance(v, int)
}
BR_NAMES: Final[dict[int, str]] = {v: n for n, v in BR_CODES.items()}
BC_NAMES: Final[dict[int, str]] = {v: n for n, v in BC_CODES.items()}

# Names by _IOC_NR, as the kernel's stats tables print them (6.1: 20 BR, 19 BC).
BR_STAT_NAMES: Final[tuple[str, ...]] = tuple(
    "BR_TRANSACTION" if nr == 2 else next(n for n, v in BR_CODES.items() if ioc_nr(v) == nr)
    for nr in range(20)
)
BC_STAT_NAMES: Final[tuple[str, ...]] = tuple(
    next(n for n, v in BC_CODES.items() if ioc_nr(v) == nr) for nr in range(19)
)

# --- objects and flags -----------------------------------------------------------------------------

B_TYPE_LARGE: Final = 0x85


def _pack_chars(c1: str, c2: str, c3: str, c4: int) -> int:
    return (ord(c1) << 24) | (ord(c2) << 16) | (ord(c3) << 8) | c4


BINDER_TYPE_BINDER: Final = _pack_chars("s", "b", "*", B_TYPE_LARGE)
BINDER_TYPE_WEAK_BINDER: Final = _pack_chars("w", "b", "*", B_TYPE_LARGE)
BINDER_TYPE_HANDLE: Final = _pack_chars("s", "h", "*", B_TYPE_LARGE)
BINDER_TYPE_WEAK_HANDLE: Final = _pack_chars("w", "h", "*", B_TYPE_LARGE)
BINDER_TYPE_FD: Final = _pack_chars("f", "d", "*", B_TYPE_LARGE)
BINDER_TYPE_FDA: Final = _pack_chars("f", "d", "a", B_TYPE_LARGE)
BINDER_TYPE_PTR: Final = _pack_chars("p", "t", "*", B_TYPE_LARGE)

OBJECT_TYPES: Final[dict[str, int]] = {
    n: v for n, v in globals().items() if n.startswith("BINDER_TYPE_") and isinstance(v, int)
}

FLAT_BINDER_FLAG_PRIORITY_MASK: Final = 0xFF
FLAT_BINDER_FLAG_ACCEPTS_FDS: Final = 0x100
FLAT_BINDER_FLAG_TXN_SECURITY_CTX: Final = 0x1000
BINDER_BUFFER_FLAG_HAS_PARENT: Final = 0x01

TF_ONE_WAY: Final = 0x01
TF_ROOT_OBJECT: Final = 0x04
TF_STATUS_CODE: Final = 0x08
TF_ACCEPT_FDS: Final = 0x10
TF_CLEAR_BUF: Final = 0x20
TF_UPDATE_TXN: Final = 0x40
