"""Every struct size, offset, ioctl number and code of vbinder.uapi against the kernel header.

The expectation is tests/oracle/samples/abi_from_linux_libc_dev_6.1.187.txt: a C compile of
linux/android/binder.h from linux-libc-dev 6.1.187 (DESIGN.md, Conventions).
"""

from __future__ import annotations

import re

from tests.support import ORACLE_SAMPLES
from vbinder import uapi

SAMPLE = ORACLE_SAMPLES / "abi_from_linux_libc_dev_6.1.187.txt"


def _sample() -> str:
    return SAMPLE.read_text()


def test_struct_sizes() -> None:
    sizes = dict(re.findall(r"^sizeof struct (\w+)\s+(\d+)$", _sample(), re.M))
    assert sizes, "no sizes in the sample"
    for name, size in sizes.items():
        assert uapi.SIZES[name] == int(size), name
    assert set(sizes) == set(uapi.SIZES)


def test_transaction_data_offsets() -> None:
    line = re.search(r"^offsetof tr\.(.*)$", _sample(), re.M)
    assert line is not None
    pairs = dict(zip(line.group(1).split()[::2], map(int, line.group(1).split()[1::2]), strict=True))
    assert pairs == uapi.TR_OFFSETS


def test_ioctls_codes_and_object_types() -> None:
    values = {n: int(v, 16) for n, v in re.findall(r"^((?:BINDER|BR|BC)_\w+)\s+(0x[0-9a-f]+)$", _sample(), re.M)}
    assert len(values) > 60
    for name, value in values.items():
        assert getattr(uapi, name) == value, name
    # every 6.1 code we define is in the header, and no more (6.1 has no BR_TRANSACTION_PENDING_FROZEN)
    ours = {**uapi.BR_CODES, **uapi.BC_CODES, **uapi.IOCTLS, **uapi.OBJECT_TYPES}
    assert set(ours) == set(values)
    version = re.search(r"^BINDER_CURRENT_PROTOCOL_VERSION (\d+)$", _sample(), re.M)
    assert version is not None and int(version.group(1)) == uapi.BINDER_CURRENT_PROTOCOL_VERSION
