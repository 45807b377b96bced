"""libbinder's text output of a parcel: ``Parcel::print`` and the ``HexDump`` it uses.

A port of ``printHexData`` (libs/binder/Debug.cpp) and ``typetostring`` for the objects'
type codes, and of ``Parcel::print`` as Android 13 on write it (``std::ostream``: a tab before
the dump, the objects after it with no new line between them), which is what ``service call``
prints after ``Result: ``.
"""

from __future__ import annotations

import struct

_FLAT_TYPE = struct.Struct("<I")
_FLAT_BINDER = struct.Struct("<Q")  # flat_binder_object.binder, at offset 8


def hex_data(buf: bytes, bytes_per_line: int = 16, single_line_cutoff: int = 16, alignment: int = 4) -> str:
    """``printHexData(0, buf, len, 16, 16, 4, false)``: one line for up to 16 bytes, else a new
    line, then lines of ``0x%08x: `` and four 32-bit words (little-endian, as numbers) and the
    bytes as characters."""
    length = len(buf)
    if length == 0:
        return ("\n" if single_line_cutoff < 0 else "") + "(empty)"
    one_line = length <= single_line_cutoff
    out = [] if one_line else ["\n"]
    pos = offset = 0
    while True:
        line = [] if one_line else [f"0x{offset:08x}: "]
        remain = length
        word = 0
        while word < bytes_per_line:
            align_offset = alignment - 1
            if 0 < remain <= align_offset:
                align_offset = remain - 1
            start = word + align_offset
            index = 0
            while index < alignment:
                if index == 0 and word > 0:
                    line.append(" ")
                if remain > 0:
                    line.append(f"{buf[pos + start - index]:02x}")
                elif not one_line:
                    line.append("  ")
                remain -= 1
                index += 1
            word += index
        remain = length
        line.append(" '")
        for index in range(bytes_per_line):
            if remain > 0:
                val = buf[pos + index]
                line.append(chr(val) if 32 <= val < 127 else ".")
            elif not one_line:
                line.append(" ")
            remain -= 1
        line.append("'")
        if length > bytes_per_line:
            line.append("\n")
        out.append("".join(line))
        if length <= bytes_per_line:
            break
        length -= bytes_per_line
        pos += bytes_per_line
        offset += bytes_per_line
    return "".join(out)


def type_code(code: int) -> str:
    """``typetostring`` (full context, not strict): ``'sb*'`` for a binder object's type masked
    with 0x7f7f7f00, else ``0x%08x``."""
    c = [(code >> s) & 0xFF for s in (24, 16, 8, 0)]
    valid = True
    zero = True
    for i in range(3):
        if c[i] == 0:
            if not zero:
                valid = False
        else:
            zero = False
        if not valid:
            break
    if zero:
        valid = False
    if valid and (c[0] != ord("0") or c[1] != ord("x")):
        chars = []
        for ch in c:
            if ch == 0:
                continue
            if 32 <= ch < 127 and ch not in (ord("'"), ord("\\")):
                chars.append(chr(ch))
            else:
                chars.append(f"\\x{ch >> 4:x}{ch & 0xF:x}")
        return "'" + "".join(chars) + "'"
    return f"0x{code:08x}"


def pointer(value: int) -> str:
    """A ``void*`` through an ostream, as bionic prints it (``%p``: 0x0 for null)."""
    return f"0x{value:x}"


def parcel_text(data: bytes | None, objects: list[int] | tuple[int, ...] = ()) -> str:
    """``Parcel::print``: ``Parcel(NULL)`` when there is no data, else the tab, the dump and
    ``Object #i @ 0x..: 'sb*' = <binder>`` for each object."""
    if not data:
        return "Parcel(NULL)"
    text = ["Parcel(\t", hex_data(data)]
    for i, off in enumerate(objects):
        flat_type = _FLAT_TYPE.unpack_from(data, off)[0]
        binder = _FLAT_BINDER.unpack_from(data, off + 8)[0]
        text.append(f"Object #{i} @ {pointer(off)}: {type_code(flat_type & 0x7F7F7F00)} = {binder}")
    text.append(")")
    return "".join(text)
