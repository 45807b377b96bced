"""What binder's numbers mean: BR and BC codes, ioctl numbers and errnos, as logs print them.

The driver's log prints return codes as decimal numbers (``transaction failed 29201``,
``ret 29189/-22``, ``ioctl c018620c ... returned -1``). This module names them, annotates log
lines (``vbinder log --decode``), explains a (BR code, errno) pair by what makes Linux 6.1 return
it (``vbinder errors``), and gives the client its exception messages
(``BR_FAILED_REPLY (29201), -EPERM``). Standard library only: the client imports it.
"""

from __future__ import annotations

import errno as _errno
import os
import re
from collections.abc import Iterable
from typing import Final

from . import abi, uapi


def _ioctl_names() -> dict[int, str]:
    return {
        **{v: n for n, v in uapi.IOCTLS.items()},
        uapi.BINDER_CTL_ADD: "BINDER_CTL_ADD",
        abi.VBINDER_ABI_VERSION: "VBINDER_ABI_VERSION",
        abi.VBINDER_MMAP: "VBINDER_MMAP",
        abi.VBINDER_MUNMAP: "VBINDER_MUNMAP",
    }


IOCTL_NAMES: Final[dict[int, str]] = _ioctl_names()

# What each code the driver answers a transaction with says (binder.h's comments, shortened).
BR_MEANING: Final[dict[str, str]] = {
    "BR_ERROR": "an error the driver reports to a reader (its int argument is the error)",
    "BR_OK": "no error (what BINDER_GET_EXTENDED_ERROR says when nothing failed)",
    "BR_TRANSACTION": "a call for one of the reader's objects",
    "BR_TRANSACTION_SEC_CTX": "a call carrying the sender's security context",
    "BR_REPLY": "the reply to the reader's call",
    "BR_DEAD_REPLY": "the call could not be delivered, or answered: the target (its process, thread "
                     "or object) is dead or dying",
    "BR_TRANSACTION_COMPLETE": "the driver took the reader's transaction or reply",
    "BR_FAILED_REPLY": "the driver refused the transaction (a bad handle, bad data, no buffer space, "
                       "a protocol error, ...)",
    "BR_FROZEN_REPLY": "the target process is frozen (BINDER_FREEZE): a sync call is refused",
    "BR_ONEWAY_SPAM_SUSPECT": "the one-way call was queued, but the target's async space is nearly full",
    "BR_NOOP": "nothing (libbinder's readers skip it)",
    "BR_SPAWN_LOOPER": "the driver asks for another looper thread",
    "BR_DEAD_BINDER": "an object the reader watches died (death notification)",
    "BR_CLEAR_DEATH_NOTIFICATION_DONE": "a death notification was cleared",
}

# Why Linux 6.1 answers a transaction with (BR code, errno): the extended error a thread reads
# (BINDER_GET_EXTENDED_ERROR), the pair failed_transaction_log prints as ``ret C/E`` and the
# "transaction call ... failed ID/C/E" line. The log lines that come with each case are quoted.
CAUSES: Final[dict[tuple[str, int], tuple[str, ...]]] = {
    ("BR_DEAD_REPLY", -_errno.EINVAL): (
        "the handle's object is dead: the process that owned it died or closed its binder fd "
        "(debug_mask 0x2: 'cannot find target node')",
        "a call to handle 0 on a device with no context manager (no service manager runs)",
    ),
    ("BR_DEAD_REPLY", -_errno.ESRCH): (
        "the target's mapped area is gone: it is exiting (its memory goes before its files) or "
        "unmapped it; the allocator logs 'binder_alloc_buf, no vma' (debug_mask 0x2: 'cannot "
        "allocate buffer: vma cleared, target dead or dying'). 3.x kernels answered this BR_FAILED_REPLY",
    ),
    ("BR_DEAD_REPLY", 0): (
        "the target process or thread died while the call was being queued ('dead process or thread')",
        "a reply to a caller whose thread is gone ('reply target not found')",
    ),
    ("BR_FROZEN_REPLY", 0): (
        "a sync call to a process frozen with BINDER_FREEZE ('frozen process or thread')",
    ),
    ("BR_FAILED_REPLY", -_errno.EINVAL): (
        "a handle the sender does not hold ('got transaction to invalid handle, N')",
        "a call to the context manager from the process that owns it",
        "a call from a process to itself ('self transactions not allowed')",
        "bad offsets: not a multiple of 8, pointing outside the data or at an invalid object "
        "('got transaction with invalid offset ...', 'invalid object type')",
        "a scatter-gather buffer too large or with a bad parent, or a bad fd array",
        "a node that asks for the sender's security context when the sender has none",
    ),
    ("BR_FAILED_REPLY", -_errno.EPROTO): (
        "a reply with no call to answer ('got reply transaction with no transaction stack')",
        "a reply or call on the wrong thread's transaction stack ('bad transaction stack')",
        "a new sync call while a call waits on the thread's todo list",
    ),
    ("BR_FAILED_REPLY", -_errno.ENOSPC): (
        "no room in the target's mapped area for the buffer ('binder_alloc_buf size N failed, no "
        "address space'): it holds too many unfreed buffers (a missing BC_FREE_BUFFER?)",
        "a one-way call beyond the target's async space, half of its area ('no async space left')",
    ),
    ("BR_FAILED_REPLY", -_errno.ENOMEM): (
        "the driver could not allocate memory for the transaction or its pages",
    ),
    ("BR_FAILED_REPLY", -_errno.EFAULT): (
        "the sender's data, offsets or scatter-gather pointers point at memory it cannot read "
        "('got transaction with invalid data ptr' / 'invalid offsets ptr')",
    ),
    ("BR_FAILED_REPLY", -_errno.EPERM): (
        "a file descriptor to a target that does not accept fds ('... but target does not allow fds')",
        "the LSM (SELinux) refused the call or the transfer of a binder or fd",
    ),
    ("BR_FAILED_REPLY", -_errno.EOPNOTSUPP): (
        "vbinder only, until it carries file descriptors: a BINDER_TYPE_FD or FDA object "
        "('got transaction with unsupported object BINDER_TYPE_FD at offset N')",
    ),
    ("BR_FAILED_REPLY", 0): (
        "3.x kernels printed 'transaction failed 29201' without an errno: any of the BR_FAILED_REPLY "
        "causes, and a target that is exiting ('binder_alloc_buf, no vma', which 6.1 answers "
        "BR_DEAD_REPLY/-ESRCH). Read BINDER_GET_EXTENDED_ERROR or failed_transaction_log for the errno",
    ),
}


def br_name(code: int) -> str | None:
    """The BR code's name (``BR_FAILED_REPLY`` for 29201), or None."""
    return uapi.BR_NAMES.get(code & 0xFFFFFFFF)


# The kernel's names where Python's errno table picks an alias (95 is EOPNOTSUPP in the kernel).
_KERNEL_NAMES: Final[dict[int, str]] = {_errno.EOPNOTSUPP: "EOPNOTSUPP", _errno.EAGAIN: "EAGAIN"}


def errno_text(value: int) -> str:
    """``-EINVAL`` for -22, ``EINVAL`` for 22; the number itself if it is no errno."""
    name = _KERNEL_NAMES.get(abs(value)) or _errno.errorcode.get(abs(value))
    if name is None:
        return str(value)
    return f"-{name}" if value < 0 else name


def return_error(command: int, param: int | None = None) -> str:
    """``BR_FAILED_REPLY (29201), -EPERM``: a failed call as the client's exceptions name it."""
    name = br_name(command) or f"BR {command}"
    text = f"{name} ({command})"
    if param:
        text += f", {errno_text(param)}"
    return text


# -- log lines ---------------------------------------------------------------------------------------

# Each: a pattern and how to annotate its match (the annotation follows the matched text).
_FAILED_3 = re.compile(r"(failed (-?\d+)/(-?\d+)/(-?\d+))")  # "call to 0:0 failed 9/29201/-22"
_RET_PAIR = re.compile(r"(ret (-?\d+)/(-?\d+))")  # failed_transaction_log "ret 29201/-22"
_FAILED_OLD = re.compile(r"(transaction failed (\d+))(?!/)")  # 3.x "transaction failed 29201, size"
_IOCTL = re.compile(r"(ioctl ([0-9a-f]+))( [0-9a-f]+ returned (-?\d+))")
_ERRNO = re.compile(r"((?:ret|returned|failed|error) (-\d+))\b(?![/\d])")


def _pair(cmd: int, param: int) -> str:
    name = br_name(cmd)
    if name is None or name == "BR_OK":
        return ""
    return f" ({name}/{errno_text(param)})" if param else f" ({name})"


def decode_line(line: str) -> str:
    """``line`` with the numbers binder prints named after them: ``ret 29189/-22
    (BR_DEAD_REPLY/-EINVAL)``, ``transaction failed 29201 (BR_FAILED_REPLY)``, ``ioctl c018620c
    (BINDER_GET_NODE_INFO_FOR_REF) ... returned -1 (-EPERM)``. Other lines come back unchanged."""
    out = _FAILED_3.sub(lambda m: m.group(1) + _pair(int(m.group(3)), int(m.group(4))), line)
    out = _RET_PAIR.sub(lambda m: m.group(1) + _pair(int(m.group(2)), int(m.group(3))), out)
    out = _FAILED_OLD.sub(lambda m: m.group(1) + _pair(int(m.group(2)), 0), out)

    def ioctl(m: re.Match[str]) -> str:
        name = IOCTL_NAMES.get(int(m.group(2), 16))
        ret = int(m.group(4))
        tail = m.group(3) + (f" ({errno_text(ret)})" if ret < 0 else "")
        return m.group(1) + (f" ({name})" if name else "") + tail

    out, ioctls = _IOCTL.subn(ioctl, out)
    if not ioctls:
        out = _ERRNO.sub(lambda m: m.group(1) + f" ({errno_text(int(m.group(2)))})"
                         if _errno.errorcode.get(-int(m.group(2))) else m.group(1), out)
    return out


# -- vbinder errors ------------------------------------------------------------------------------------

_NUMBER = re.compile(r"-?(0x[0-9a-fA-F]+|[0-9]+|[0-9a-fA-F]*[a-fA-F][0-9a-fA-F]*)")


def _parse(token: str) -> int | str | None:
    """A number (decimal, or hex with 0x or letters), or a name (BR_..., EINVAL, -EINVAL)."""
    t = token.strip().rstrip(",")
    if re.fullmatch(r"-?E[A-Z0-9]+", t):
        value = getattr(_errno, t.lstrip("-"), None)
        return -value if isinstance(value, int) and t.startswith("-") else value
    if re.fullmatch(r"(BR|BC|BINDER|VBINDER)_[A-Z0-9_]+", t):
        return t
    if _NUMBER.fullmatch(t):
        neg = t.startswith("-")
        body = t.lstrip("-")
        value = int(body, 16) if body.lower().startswith("0x") or not body.isdigit() else int(body)
        return -value if neg else value
    return None


def describe(token: str) -> tuple[str, str | None, int | None]:
    """One argument of ``vbinder errors``: (its line of explanation, BR name, errno)."""
    value = _parse(token)
    if value is None:
        return f"{token}: not a number or a name binder uses", None, None
    if isinstance(value, str):
        for table in (uapi.BR_CODES, uapi.BC_CODES):
            if value in table:
                return describe(str(table[value]))
        code = {n: v for v, n in IOCTL_NAMES.items()}.get(value)
        if code is not None:
            return describe(hex(code))
        return f"{token}: no such code", None, None
    name = br_name(value)
    if name is not None:
        meaning = BR_MEANING.get(name, "")
        return f"{token} = {name} (0x{value & 0xFFFFFFFF:x}): {meaning}", name, None
    bc = uapi.BC_NAMES.get(value & 0xFFFFFFFF)
    if bc is not None:
        return f"{token} = {bc} (0x{value & 0xFFFFFFFF:x}): a command a thread writes to the driver", None, None
    ioctl = IOCTL_NAMES.get(value & 0xFFFFFFFF)
    if ioctl is not None:
        size = uapi.ioc_size(value)
        return f"{token} = {ioctl} (0x{value & 0xFFFFFFFF:x}, argument of {size} bytes)", None, None
    if value and abs(value) in _errno.errorcode:
        err = -abs(value)
        return f"{token} = {errno_text(err)}: {os.strerror(-err)}", None, err
    if value == 0:
        return f"{token}: no error (0)", None, 0
    return f"{token}: not a BR or BC code, an ioctl number or an errno", None, None


def explain(tokens: Iterable[str]) -> list[str]:
    """The lines ``vbinder errors`` prints: each token named, then the causes of the pair."""
    lines: list[str] = []
    brs: list[str] = []
    errs: list[int] = []
    for raw in tokens:
        for token in raw.replace("/", " ").split():
            text, br, err = describe(token)
            lines.append(text)
            if br is not None:
                brs.append(br)
            if err is not None:
                errs.append(err)
    for br in brs:
        keys = [(br, e) for e in errs] or [k for k in CAUSES if k[0] == br]
        for key in keys:
            causes = CAUSES.get(key)
            label = f"{br}/{errno_text(key[1])}" if key[1] else br
            if causes is None:
                known = sorted(errno_text(e) for b, e in CAUSES if b == br and e)
                lines.append(f"{label}: Linux 6.1 does not give this pair"
                             + (f" (with {br} it gives {', '.join(known)})" if known else ""))
                continue
            lines.append(f"{label} in Linux 6.1:" if key != ("BR_FAILED_REPLY", 0) else f"{label}, no errno:")
            lines.extend(f"  - {c}" for c in causes)
    return lines
