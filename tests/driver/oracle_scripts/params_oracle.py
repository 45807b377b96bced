#!/usr/bin/env python3
"""What 6.1 does with writes to the binder module parameters (inside the oracle VM).

    tests/oracle/run.sh -o /tmp/out tests/driver/oracle_scripts/params_oracle.py

Writes $ORACLE_OUT/params.json: each parameter's mode and first read, and for each input
written with one write(2) to debug_mask, alloc_debug_mask and stop_on_user_error (after
resetting it to a known value): the write's result (bytes or errno name) and the value read
back. Inputs are named by their index in INPUTS (the test imports this module's list). The
Debian module names the allocator's mask ``alloc_debug_mask``; an Android kernel has it as
``binder_alloc``'s ``debug_mask`` (same code).
"""

from __future__ import annotations

import errno
import json
import os

PARAMS = "/sys/module/binder_linux/parameters"
INPUTS = [
    b"8", b"8\n", b"0x10", b"0X10", b"0x1F\n", b"0xAbC", b"010", b"08", b"0", b"00", b"+5", b"+0x5",
    b"-1", b"-0", b" 5", b"5 ", b"5\n\n", b"\n5", b"0x", b"0x\n", b"0xg", b"x", b"", b"\n", b"+", b"-",
    b"4294967295", b"4294967296", b"0xffffffff", b"0x100000000", b"037777777777", b"040000000000",
    b"18446744073709551615", b"18446744073709551616", b"99999999999999999999999",
    b"1e", b"abc", b"5\x00junk", b"++5", b"+-5", b"-+5", b"--5", b"-0x10", b"-010",
    b"2147483647", b"2147483648", b"-2147483648", b"-2147483649", b"0b101", b"5\r\n", b"\t5",
    b"7\n8", b"0x0x5", b"0" * 5000, b"1" * 5000, b"12\n" + b" " * 5000,
]


def read(name: str) -> str:
    with open(os.path.join(PARAMS, name)) as f:
        return f.read()


def write(name: str, data: bytes) -> object:
    try:
        fd = os.open(os.path.join(PARAMS, name), os.O_WRONLY)
    except OSError as e:
        return "open " + errno.errorcode[e.errno]
    try:
        return os.write(fd, data)
    except OSError as e:
        return errno.errorcode[e.errno]
    finally:
        os.close(fd)


def main() -> None:
    out: dict[str, object] = {"kernel": os.uname().release, "params": {}, "writes": []}
    for name in sorted(os.listdir(PARAMS)):
        out["params"][name] = {"mode": oct(os.stat(os.path.join(PARAMS, name)).st_mode & 0o7777),
                               "read": read(name)}
    for name, reset in (("debug_mask", b"7"), ("alloc_debug_mask", b"1"), ("stop_on_user_error", b"0")):
        for data in INPUTS:
            write(name, reset)
            res = write(name, data)
            out["writes"].append({"param": name, "input": INPUTS.index(data), "len": len(data),
                                  "repr": repr(data[:24]), "result": res, "after": read(name)})
        write(name, reset)
    out["devices_write"] = write("devices", b"x\n")
    path = os.path.join(os.environ.get("ORACLE_OUT", "."), "params.json")
    with open(path, "w") as f:
        json.dump(out, f, indent=1)
    print("wrote", path)


if __name__ == "__main__":
    main()
