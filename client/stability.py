"""Binder stability levels (its own module: mypyc cannot compile an IntEnum used as parcel.py uses it)."""

import enum


class Stability(enum.IntEnum):
    """``Stability::Level``: the int32 written after every binder object (Android 13+ format).

    Android 14 writes the level itself (``finishFlattenBinder`` -> ``writeInt32(getRepr())``);
    only Android 12 wrapped it in a versioned ``Category`` word. A null binder carries
    UNDECLARED; a local binder of a system-partition process is marked SYSTEM when first
    flattened (``tryMarkCompilationUnit`` with ``getLocalLevel()``).
    """

    UNDECLARED = 0
    VENDOR = 0b000011
    SYSTEM = 0b001100
    VINTF = 0b111111
