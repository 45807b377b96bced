"""Large buffers without page faults: glibc malloc's thresholds for processes that copy payloads.

A binder call of 1 MiB copies its payload several times in each Python process it crosses (the
frame, the parcel, the bytes each slice makes). glibc serves an allocation of 128 KiB or more with
a fresh ``mmap`` and returns it with ``munmap`` when freed, and gives free heap memory back to the
kernel past 128 KiB: so every such copy touches fresh pages, one page fault each (256 for 1 MiB).
Raising both thresholds keeps those buffers in the heap, reused. Measured (docs/decisions.md,
"Speed"): a 1 MiB - 64 KiB echo between two ``vbinder_client`` processes took 7.4-7.7 ms, 3.1-3.4
ms with the daemon and both clients tuned, and the daemon's CPU per call halved.

The daemon tunes itself; ``vbinder_client`` tunes the process that opens a vbinder device unless
``VBINDER_MALLOC=0`` is in the environment. The benchmark's floor stays as it is (issue 21 fixes
it); tuned the same way, its 1 MiB round trip fell from about 4.0 to 1.5 ms. A process keeps up to
TRIM_THRESHOLD of freed memory instead of returning it. Standard library only: clients import it.
"""

from __future__ import annotations

import ctypes
import os
from typing import Final

M_TRIM_THRESHOLD: Final = -1
M_MMAP_THRESHOLD: Final = -3
MMAP_THRESHOLD: Final = 32 << 20  # glibc's largest (DEFAULT_MMAP_THRESHOLD_MAX on 64-bit)
TRIM_THRESHOLD: Final = 64 << 20

_done: list[bool] = []


def keep_large_buffers() -> bool:
    """Raise this process's mmap and trim thresholds (once); whether they are raised. Without
    glibc (no ``mallopt``), or with ``VBINDER_MALLOC=0`` in the environment, nothing changes."""
    if _done:
        return _done[0]
    ok = False
    if os.environ.get("VBINDER_MALLOC") != "0":
        try:
            mallopt = ctypes.CDLL(None).mallopt
        except (OSError, AttributeError):
            mallopt = None
        if mallopt is not None:
            mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
            mallopt.restype = ctypes.c_int
            ok = bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
    _done.append(ok)
    return ok
