"""Binder stability levels (its own module: mypyc cannot compile an IntEnum used as parcel.py uses it)."""

import enum


class Stability(enum.IntEnum):
    """``Stability::Level``: what the int32 written after every binder object says.

    Android 11 and 14 on write the level itself (``finishFlattenBinder`` ->
    ``writeInt32(getRepr())``); Android 12 and 13 wrap it in a versioned ``Category`` word
    (:func:`vbinder_client.parcel.set_wire_format`). A null binder carries
    UNDECLARED; a local binder of a system-partition process is marked SYSTEM when first
    flattened (``tryMarkCompilationUnit`` with ``getLocalLevel()``).
    """

    UNDECLARED = 0
    VENDOR = 0b000011
    SYSTEM = 0b001100
    VINTF = 0b111111
