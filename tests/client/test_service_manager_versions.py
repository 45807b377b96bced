"""The service manager of each Android release, 11 to 16, on the wire, against AOSP's definitions.

AOSP's ``frameworks/native/libs/binder/aidl/android/os/IServiceManager.aidl`` declares the
methods in the order that gives their codes (FIRST_CALL_TRANSACTION + index); :data:`AOSP` is
that order per release, as the release branches have it (read with the search tool: the
android-13.0.0, android-15.0.0_r3 and android-16.0.0_r2 files, the mirrors of main, and
rsbinder's pins of Android 15's two numberings, hub/numbering_pins.rs):

- 11 (API 30): getService .. isDeclared, then registerClientCallback, tryUnregisterService;
- 12 (API 31, 32): + getDeclaredInstances, updatableViaApex after isDeclared, getServiceDebugInfo last;
- 13 (API 33): + getConnectionInfo after updatableViaApex;
- 14 (API 34): + getUpdatableNames after updatableViaApex;
- 15 (API 35, from android-15.0.0_r6; r1 to r5 speak 14's): getService2 at index 1, so every
  later code moves up one, and checkService answers a ``Service`` union;
- 16 (API 36): checkService answers an IBinder again, and checkService2 (a Service) follows it.

The bytes below are built from Parcel.cpp's rules (test_aidl_wire.py cites them) and
Stability.{h,cpp}: the word after a binder object is its level (SYSTEM = 12) on 11 and 14 on,
and on 12 and 13 a ``Category`` {version 1, reserved, level} read as an int32, 0x0C000001
(UNDECLARED with version 1, 0x00000001, for a null binder).
"""

# ruff: noqa: N802 - IServiceManager's method names

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import Any

import pytest
from vbinder_client import IBinder, Parcel
from vbinder_client.errors import BadParcelableException
from vbinder_client.parcel import set_wire_format
from vbinder_client.service_manager import ServiceManager, ServiceManagerProxy, server_class, transaction_codes

from vbinder import uapi

RELEASES = (11, 12, 13, 14, 15, 16)
_BASE = ["getService", "checkService", "addService", "listServices", "registerForNotifications",
         "unregisterForNotifications", "isDeclared"]
_TAIL = ["registerClientCallback", "tryUnregisterService"]
AOSP: dict[int, list[str]] = {
    11: _BASE + _TAIL,
    12: _BASE + ["getDeclaredInstances", "updatableViaApex"] + _TAIL + ["getServiceDebugInfo"],
    13: _BASE + ["getDeclaredInstances", "updatableViaApex", "getConnectionInfo"] + _TAIL + ["getServiceDebugInfo"],
    14: _BASE + ["getDeclaredInstances", "updatableViaApex", "getUpdatableNames", "getConnectionInfo"] + _TAIL
    + ["getServiceDebugInfo"],
}
AOSP[15] = ["getService", "getService2"] + AOSP[14][1:]
AOSP[16] = ["getService", "getService2", "checkService", "checkService2"] + AOSP[14][2:]

SYSTEM = 0b001100
DEFAULT = 8  # DUMP_FLAG_PRIORITY_DEFAULT


def i32(v: int) -> bytes:
    return struct.pack("<i", v)


def s16(s: str) -> bytes:
    units = s.encode("utf-16-le") + b"\0\0"
    return i32(len(s)) + units + b"\0" * (-len(units) % 4)


TOKEN = struct.pack("<IiI", 0x80000000, -1, 0x53595354) + s16("android.os.IServiceManager")
OK = i32(0)


def stability(release: int, level: int) -> bytes:
    return i32((level << 24) | 1 if release in (12, 13) else level)


def handle(release: int, h: int) -> bytes:
    return uapi.FLAT_BINDER_OBJECT.pack(uapi.BINDER_TYPE_HANDLE, 0, h, 0) + stability(release, SYSTEM)


def null_binder(release: int) -> bytes:
    return uapi.FLAT_BINDER_OBJECT.pack(uapi.BINDER_TYPE_BINDER, 19, 0, 0) + stability(release, 0)


def service_union(binder: bytes, lazy: bool = False) -> bytes:
    """A returned ``Service`` (writeParcelable: int32 1, then the union) holding serviceWithMetadata
    (tag 0), a structured parcelable (int32 1, its size counting itself, its fields)."""
    body = binder + i32(int(lazy))
    return i32(1) + i32(0) + i32(1) + i32(4 + len(body)) + body


class Remote(IBinder):
    """A binder the test sends: it flattens to a handle, as a proxy does."""

    def __init__(self, h: int) -> None:
        self.handle = h

    def flatten(self) -> tuple[int, int, int, int]:
        return uapi.BINDER_TYPE_HANDLE, 0, self.handle, 0


class Wire(IBinder):
    """Between the proxy and a service manager: keeps each call's code and bytes."""

    def __init__(self, server: Any) -> None:
        self.server = server
        self.calls: list[tuple[int, bytes, bytes]] = []

    def transact(self, code: int, data: Parcel, flags: int = 0) -> Parcel | None:
        reply = Parcel()
        request = Parcel(data.data(), data.objects())
        request.binder_resolver = _as_remote  # as a process resolves a received handle: a proxy
        self.server.dispatch(code, request, reply, flags)
        self.calls.append((code, data.data(), reply.data()))
        back = Parcel(reply.data(), reply.objects())
        back.binder_resolver = _as_remote
        return back


def _as_remote(obj: Any, _stability: int) -> Remote:
    return Remote(obj.value)


@pytest.fixture(params=RELEASES)
def release(request: pytest.FixtureRequest) -> Iterator[int]:
    set_wire_format(request.param)  # what ProcessState(android=N) sets for the process
    try:
        yield request.param
    finally:
        set_wire_format(16)


def pair(release: int) -> tuple[ServiceManagerProxy, Wire]:
    server = ServiceManager("binder", android=release)
    wire = Wire(server)
    return ServiceManagerProxy(wire, "binder", android=release), wire


def code(release: int, method: str) -> int:
    return 1 + AOSP[release].index(method)


def test_transaction_codes_are_aosps(release: int) -> None:
    assert transaction_codes(release) == {m: i + 1 for i, m in enumerate(AOSP[release])}
    server = ServiceManager("binder", android=release)
    assert type(server) is server_class(release) and server.android == release


def test_add_get_and_check_on_the_wire(release: int) -> None:
    sm, wire = pair(release)
    sm.add_service("echo", Remote(5))
    assert wire.calls[-1] == (code(release, "addService"),
                              TOKEN + s16("echo") + handle(release, 5) + i32(0) + i32(DEFAULT), OK)

    got = sm.get_service("echo", timeout=0)
    assert isinstance(got, Remote) and got.handle == 5
    lookup = "getService2" if release >= 15 else "getService"
    answer = service_union(handle(release, 5)) if release >= 15 else handle(release, 5)
    assert wire.calls[-1] == (code(release, lookup), TOKEN + s16("echo"), OK + answer)

    assert sm.check_service("missing") is None
    check = {15: "checkService", 16: "checkService2"}.get(release, "checkService")
    missing = service_union(null_binder(release)) if release >= 15 else null_binder(release)
    assert wire.calls[-1] == (code(release, check), TOKEN + s16("missing"), OK + missing)


def test_list_and_debug_info_on_the_wire(release: int) -> None:
    sm, wire = pair(release)
    sm.add_service("b", Remote(6))
    sm.add_service("a", Remote(7))
    assert sm.list_services() == ["a", "b"]
    assert wire.calls[-1] == (code(release, "listServices"), TOKEN + i32(15), OK + i32(2) + s16("a") + s16("b"))
    if release < 12:
        assert "getServiceDebugInfo" not in transaction_codes(release)
        return
    info = sm.get_service_debug_info()
    pid = info[0][1]
    assert [name for name, _pid in info] == ["a", "b"]
    entry = s16("a") + i32(pid)
    assert wire.calls[-1][:2] == (code(release, "getServiceDebugInfo"), TOKEN)
    assert wire.calls[-1][2].startswith(OK + i32(2) + i32(1) + i32(4 + len(entry)) + entry)


def test_lazy_services_say_so_from_15_on() -> None:
    """addService's FLAG_IS_LAZY_SERVICE comes back as ServiceWithMetadata.isLazyService."""
    set_wire_format(16)
    sm, wire = pair(16)
    sm.add_service("lazy", Remote(3), dump_priority=DEFAULT | 1 << 30)
    assert sm.check_service("lazy") is not None
    assert wire.calls[-1][2] == OK + service_union(handle(16, 3), lazy=True)
    assert sm.list_services() == ["lazy"]


@pytest.mark.parametrize(("client", "server"), [(14, 16), (16, 14), (14, 15)])
def test_another_releases_client_fails_loudly(client: int, server: int) -> None:
    """Codes moved between releases: a 14 client's addService (3) is 15's checkService and 16's
    checkService; the server reads a name, finds more data and answers EX_BAD_PARCELABLE
    (enforceNoDataAvail) instead of registering anything."""
    server_sm = ServiceManager("binder", android=server)
    sm = ServiceManagerProxy(Wire(server_sm), "binder", android=client)
    with pytest.raises(BadParcelableException):
        sm.add_service("x", Remote(4))
    assert server_sm.services == {}


@pytest.mark.parametrize(("writer", "reader"), [(12, 11), (11, 12), (13, 14), (16, 13)])
def test_the_stability_word_of_another_release_is_refused(writer: int, reader: int) -> None:
    """Android 12 and 13's Category word is no level to 11 and 14+, and their plain level has
    wire-protocol version 0 for 12 and 13 (Stability::setRepr refuses both: BAD_TYPE)."""
    from vbinder_client.parcel import ParcelError

    try:
        set_wire_format(writer)
        p = Parcel()
        p.write_strong_binder(Remote(1))
        set_wire_format(reader)
        with pytest.raises(ParcelError):
            Parcel(p.data(), p.objects()).read_strong_binder()
    finally:
        set_wire_format(16)
