"""The service manager: Android 14's IServiceManager protocol, server and client.

The server is an ordinary process that becomes the context manager (handle 0) of its device, as
Android's servicemanager does; the client API is :func:`default_service_manager`. Transaction
codes are AIDL's, in the declaration order of ``android/os/IServiceManager.aidl``; strings are
``@utf8InCpp`` (String16 on the wire); binders carry their stability word.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable

from .binder import FIRST_CALL_TRANSACTION, BpBinder, DeadObjectError, IBinder
from .parcel import EX_ILLEGAL_ARGUMENT, EX_UNSUPPORTED_OPERATION, Parcel, RemoteException, interface_header
from .process_state import ProcessState
from .service import Proxy, Service, method

DESCRIPTOR = "android.os.IServiceManager"
GET_SERVICE = FIRST_CALL_TRANSACTION + 0
CHECK_SERVICE = FIRST_CALL_TRANSACTION + 1
ADD_SERVICE = FIRST_CALL_TRANSACTION + 2
LIST_SERVICES = FIRST_CALL_TRANSACTION + 3
REGISTER_FOR_NOTIFICATIONS = FIRST_CALL_TRANSACTION + 4
UNREGISTER_FOR_NOTIFICATIONS = FIRST_CALL_TRANSACTION + 5
IS_DECLARED = FIRST_CALL_TRANSACTION + 6
GET_DECLARED_INSTANCES = FIRST_CALL_TRANSACTION + 7

DUMP_FLAG_PRIORITY_CRITICAL = 1 << 0
DUMP_FLAG_PRIORITY_HIGH = 1 << 1
DUMP_FLAG_PRIORITY_NORMAL = 1 << 2
DUMP_FLAG_PRIORITY_DEFAULT = 1 << 3
DUMP_FLAG_PRIORITY_ALL = 0xF

log = logging.getLogger(__name__)


def _write_string_list(p: Parcel, items: list[str]) -> None:
    p.write_int32(len(items))
    for s in items:
        p.write_utf8_as_utf16(s)


def _read_string_list(p: Parcel) -> list[str]:
    n = p.read_int32()
    return [] if n < 0 else [p.read_utf8_from_utf16() or "" for _ in range(n)]


class ServiceManager(Service):
    """The server side: a name -> binder registry that forgets services whose process dies."""

    descriptor = DESCRIPTOR

    def __init__(self, device: str = "binder") -> None:
        super().__init__()
        self.header = interface_header(device)
        self.services: dict[str, tuple[IBinder, bool, int]] = {}
        self._lock = threading.Lock()

    def _lookup(self, name: str | None) -> IBinder | None:
        with self._lock:
            entry = self.services.get(name or "")
        return entry[0] if entry else None

    @method(GET_SERVICE)
    def get_service(self, data: Parcel, reply: Parcel) -> None:
        reply.write_strong_binder(self._lookup(data.read_utf8_from_utf16()))

    @method(CHECK_SERVICE)
    def check_service(self, data: Parcel, reply: Parcel) -> None:
        reply.write_strong_binder(self._lookup(data.read_utf8_from_utf16()))

    @method(ADD_SERVICE)
    def add_service(self, data: Parcel, reply: Parcel) -> None:
        name = data.read_utf8_from_utf16()
        binder = data.read_strong_binder()
        allow_isolated = data.read_bool()
        priority = data.read_int32()
        if not name or len(name) > 127 or not all(c.isalnum() or c in "_-./" for c in name):
            raise RemoteException(EX_ILLEGAL_ARGUMENT, f"Invalid service name: {name!r}")
        if binder is None:
            raise RemoteException(EX_ILLEGAL_ARGUMENT, "Null binder")
        with self._lock:
            self.services[name] = (binder, allow_isolated, priority)
        if isinstance(binder, BpBinder):
            binder.link_to_death(functools.partial(self._died, name))
        log.info("servicemanager: added %s", name)

    def _died(self, name: str, who: IBinder) -> None:
        with self._lock:
            entry = self.services.get(name)
            if entry is not None and entry[0] is who:
                del self.services[name]
                log.info("servicemanager: %s died", name)

    @method(LIST_SERVICES)
    def list_services(self, data: Parcel, reply: Parcel) -> None:
        priority = data.read_int32()
        with self._lock:
            names = sorted(n for n, (_b, _i, p) in self.services.items() if p & priority)
        _write_string_list(reply, names)

    @method(REGISTER_FOR_NOTIFICATIONS)
    def register_for_notifications(self, data: Parcel, reply: Parcel) -> None:
        raise RemoteException(EX_UNSUPPORTED_OPERATION, "registerForNotifications is not supported yet")

    @method(UNREGISTER_FOR_NOTIFICATIONS)
    def unregister_for_notifications(self, data: Parcel, reply: Parcel) -> None:
        raise RemoteException(EX_UNSUPPORTED_OPERATION, "unregisterForNotifications is not supported yet")

    @method(IS_DECLARED)
    def is_declared(self, data: Parcel, reply: Parcel) -> None:
        data.read_utf8_from_utf16()
        reply.write_bool(False)  # no VINTF manifest here

    @method(GET_DECLARED_INSTANCES)
    def get_declared_instances(self, data: Parcel, reply: Parcel) -> None:
        data.read_utf8_from_utf16()
        _write_string_list(reply, [])


class ServiceManagerProxy(Proxy):
    """The client side of IServiceManager."""

    descriptor = DESCRIPTOR

    def __init__(self, binder: IBinder, device: str = "binder") -> None:
        super().__init__(binder)
        self.header = interface_header(device)

    def call(self, code: int, write: Callable[[Parcel], None] | None = None, oneway: bool = False) -> Parcel:
        try:
            return super().call(code, write, oneway)
        except DeadObjectError:
            raise DeadObjectError("no service manager runs on this device (start one with "
                                  "`vbinder servicemanager MOUNTPOINT`)") from None

    def check_service(self, name: str) -> IBinder | None:
        """The service, or None when it is not registered."""
        binder: IBinder | None = self.call(CHECK_SERVICE, lambda p: p.write_utf8_as_utf16(name)).read_strong_binder()
        return binder

    def get_service(self, name: str, timeout: float = 5.0) -> IBinder | None:
        """The service, waiting up to ``timeout`` seconds for it to be added (as libbinder does)."""
        deadline = time.monotonic() + timeout
        while True:
            binder: IBinder | None = self.call(GET_SERVICE, lambda p: p.write_utf8_as_utf16(name)).read_strong_binder()
            if binder is not None or time.monotonic() >= deadline:
                return binder
            time.sleep(0.05)

    def add_service(self, name: str, service: IBinder, allow_isolated: bool = False,
                    dump_priority: int = DUMP_FLAG_PRIORITY_DEFAULT) -> None:
        def write(p: Parcel) -> None:
            p.write_utf8_as_utf16(name)
            p.write_strong_binder(service)
            p.write_bool(allow_isolated)
            p.write_int32(dump_priority)

        self.call(ADD_SERVICE, write)

    def list_services(self, dump_priority: int = DUMP_FLAG_PRIORITY_ALL) -> list[str]:
        return _read_string_list(self.call(LIST_SERVICES, lambda p: p.write_int32(dump_priority)))

    def is_declared(self, name: str) -> bool:
        return self.call(IS_DECLARED, lambda p: p.write_utf8_as_utf16(name)).read_bool()


def default_service_manager(process: ProcessState | None = None) -> ServiceManagerProxy:
    """The service manager of the process's device (handle 0)."""
    ps = process or ProcessState.self()
    return ServiceManagerProxy(ps.context_proxy(), ps.device)


def serve(path: str | None = None, device: str = "binder", ready: threading.Event | None = None) -> None:
    """Run a service manager on ``path`` (a device file) in this thread, forever."""
    ps = ProcessState.init(path, device)
    sm = ServiceManager(device)
    ps.become_context_manager(sm)
    log.info("servicemanager: context manager of %s", ps.transport.path)
    if ready is not None:
        ready.set()
    ps.ipc().join_thread_pool(True)
