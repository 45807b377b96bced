"""How the kernel's printf conversions print values, as debugfs and the log need them.

``%pK`` pointers: 6.1 (kptr_restrict 0) prints a 32-bit keyed hash of the address in 16 hex
digits (``00000000`` then 8 digits) and NULL as 16 zeros. vbinder prints the same shape: a
BLAKE2b hash, under a fixed key, of the object's identity (``id()``, for a transaction or a death
notification) or of the value (a buffer's user address), so the same object or address prints the
same value in every file for as long as it lives, a NULL pointer prints ``0000000000000000`` and
nothing else prints 0.
"""

from __future__ import annotations

from hashlib import blake2b
from typing import Final

U64_MASK: Final = (1 << 64) - 1
_PK_KEY: Final = b"vbinder %pK"
_NULL: Final = "0000000000000000"


def pk(value: int) -> str:
    """``%pK`` of the address ``value``: 16 hex digits, a 32-bit hash; NULL prints as zeros."""
    if not value:
        return _NULL
    h = int.from_bytes(blake2b((value & U64_MASK).to_bytes(8, "little"), digest_size=4, key=_PK_KEY).digest(),
                       "little")
    return f"{h or 1:016x}"


def pk_obj(obj: object | None) -> str:
    """``%pK`` of a kernel object's address: hashed from the object's identity."""
    return _NULL if obj is None else pk(id(obj))


def size_t(x: int) -> int:
    """``x`` as a size_t (wraps at 2**64). Only values outside [0, 2**64) meet the 64-bit mask,
    which compiled code can apply only to a boxed int: the usual sizes stay native."""
    return x & U64_MASK if x < 0 or x >> 64 else x


def d32(x: int) -> int:
    """A 32-bit int as ``%d`` prints it."""
    x &= 0xFFFFFFFF
    return x - (1 << 32) if x >> 31 else x


def u32(x: int) -> int:
    """A 32-bit value as ``%u`` prints it."""
    return x & 0xFFFFFFFF


def zd(x: int) -> int:
    """A size_t as ``%zd`` prints it (signed)."""
    x = size_t(x)
    return x - (1 << 64) if x >> 63 else x
