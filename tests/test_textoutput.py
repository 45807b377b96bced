"""libbinder's Parcel::print and printHexData (vbinder/cmds/textoutput.py), on byte strings.

The rules are Debug.cpp's printHexData (16 bytes a line, four little-endian 32-bit words, one
line without offsets up to 16 bytes, a new line and ``0x%08x: `` offsets beyond, the last line
padded), typetostring for the objects' type codes, and Android 13+'s Parcel::print (a tab
before the dump, the objects after it).
"""

from __future__ import annotations

import struct

from vbinder import uapi
from vbinder.cmds.textoutput import hex_data, parcel_text, type_code


def test_one_line() -> None:
    assert hex_data(b"\0\0\0\0") == "00000000    '....'"  # the empty words still get their space
    assert hex_data(b"\x01\x02") == "0201    '..'"  # a short word: its bytes, last first
    assert hex_data(bytes(range(0x41, 0x51))) == "44434241 48474645 4c4b4a49 504f4e4d 'ABCDEFGHIJKLMNOP'"


def test_several_lines() -> None:
    data = bytes(range(0x41, 0x41 + 18))
    assert hex_data(data) == ("\n0x00000000: 44434241 48474645 4c4b4a49 504f4e4d 'ABCDEFGHIJKLMNOP'\n"
                              "0x00000010: 5251                                'QR              '")


def test_parcel_print() -> None:
    assert parcel_text(b"") == "Parcel(NULL)"
    assert parcel_text(struct.pack("<i", 7)) == "Parcel(\t00000007    '....')"
    obj = uapi.FLAT_BINDER_OBJECT.pack(uapi.BINDER_TYPE_HANDLE, 0x113, 3, 0)
    text = parcel_text(b"\0" * 4 + obj, [4])
    assert text.startswith("Parcel(\t\n0x00000000: 00000000 73682a85 00000113 00000003 ")
    assert text.endswith("'Object #0 @ 0x4: 'sh*' = 3)")


def test_type_codes() -> None:
    assert [type_code(t & 0x7F7F7F00) for t in (uapi.BINDER_TYPE_BINDER, uapi.BINDER_TYPE_WEAK_HANDLE,
                                               uapi.BINDER_TYPE_FD, uapi.BINDER_TYPE_FDA)] == \
        ["'sb*'", "'wh*'", "'fd*'", "'fda'"]
    assert type_code(0) == "0x00000000"
    assert type_code(0x61006200) == "0x61006200"  # a zero between characters: no type code
    assert type_code(0x30784100) == "0x30784100"  # '0xA' would read as a number: printed as one
