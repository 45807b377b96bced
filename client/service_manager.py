"""The service manager: Android 14's IServiceManager protocol, server and client.

The server is an ordinary process that becomes the context manager (handle 0) of its device, as
Android's servicemanager does; the client API is :func:`default_service_manager`. The protocol
is the project's own AIDL description of Android 14's interface
(``interfaces/android14/android/os/IServiceManager.aidl``, compiled by ``vbinder aidl`` into the
module beside it): its transaction codes, ``@utf8InCpp`` strings (String16 on the wire), and
binders with their stability word.
"""

# ruff: noqa: N802, N803 - the methods ServiceManager implements have IServiceManager.aidl's names

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from .binder import BpBinder, DeadObjectError, IBinder
from .errors import IllegalArgumentException, UnsupportedOperationException
from .interfaces.android14.android.os.ConnectionInfo import ConnectionInfo
from .interfaces.android14.android.os.IClientCallback import IClientCallback
from .interfaces.android14.android.os.IServiceCallback import IServiceCallback
from .interfaces.android14.android.os.IServiceManager import IServiceManager
from .interfaces.android14.android.os.ServiceDebugInfo import ServiceDebugInfo
from .ipc_thread_state import calling_pid
from .parcel import interface_header
from .process_state import ProcessState

DESCRIPTOR = IServiceManager.DESCRIPTOR
GET_SERVICE = IServiceManager.TRANSACTION_getService
CHECK_SERVICE = IServiceManager.TRANSACTION_checkService
ADD_SERVICE = IServiceManager.TRANSACTION_addService
LIST_SERVICES = IServiceManager.TRANSACTION_listServices
REGISTER_FOR_NOTIFICATIONS = IServiceManager.TRANSACTION_registerForNotifications
UNREGISTER_FOR_NOTIFICATIONS = IServiceManager.TRANSACTION_unregisterForNotifications
IS_DECLARED = IServiceManager.TRANSACTION_isDeclared
GET_DECLARED_INSTANCES = IServiceManager.TRANSACTION_getDeclaredInstances

DUMP_FLAG_PRIORITY_CRITICAL = IServiceManager.DUMP_FLAG_PRIORITY_CRITICAL
DUMP_FLAG_PRIORITY_HIGH = IServiceManager.DUMP_FLAG_PRIORITY_HIGH
DUMP_FLAG_PRIORITY_NORMAL = IServiceManager.DUMP_FLAG_PRIORITY_NORMAL
DUMP_FLAG_PRIORITY_DEFAULT = IServiceManager.DUMP_FLAG_PRIORITY_DEFAULT
DUMP_FLAG_PRIORITY_ALL = IServiceManager.DUMP_FLAG_PRIORITY_ALL

log = logging.getLogger(__name__)
T = TypeVar("T")


class _Entry:
    __slots__ = ("binder", "allow_isolated", "dump_priority", "pid")

    def __init__(self, binder: IBinder, allow_isolated: bool, dump_priority: int, pid: int) -> None:
        self.binder = binder
        self.allow_isolated = allow_isolated
        self.dump_priority = dump_priority
        self.pid = pid


class ServiceManager(IServiceManager.Stub):
    """The server side: a name -> binder registry that forgets services whose process dies."""

    def __init__(self, device: str = "binder") -> None:
        super().__init__()
        self.header = interface_header(device)
        self.services: dict[str, _Entry] = {}
        self._lock = threading.Lock()

    def _lookup(self, name: str) -> IBinder | None:
        with self._lock:
            entry = self.services.get(name)
        return entry.binder if entry else None

    def getService(self, name: str) -> IBinder | None:
        return self._lookup(name)

    def checkService(self, name: str) -> IBinder | None:
        return self._lookup(name)

    def addService(self, name: str, service: IBinder, allowIsolated: bool, dumpPriority: int) -> None:
        if not name or len(name) > 127 or not all(c.isalnum() or c in "_-./" for c in name):
            raise IllegalArgumentException(f"Invalid service name: {name!r}")
        with self._lock:
            self.services[name] = _Entry(service, allowIsolated, dumpPriority, calling_pid())
        if isinstance(service, BpBinder):
            service.link_to_death(lambda who: self._died(name, who))
        log.info("servicemanager: added %s", name)

    def _died(self, name: str, who: IBinder) -> None:
        with self._lock:
            entry = self.services.get(name)
            if entry is not None and entry.binder is who:
                del self.services[name]
                log.info("servicemanager: %s died", name)

    def listServices(self, dumpPriority: int) -> list[str]:
        with self._lock:
            return sorted(n for n, e in self.services.items() if e.dump_priority & dumpPriority)

    def registerForNotifications(self, name: str, callback: IServiceCallback) -> None:
        raise UnsupportedOperationException("registerForNotifications is not supported yet")

    def unregisterForNotifications(self, name: str, callback: IServiceCallback) -> None:
        raise UnsupportedOperationException("unregisterForNotifications is not supported yet")

    def isDeclared(self, name: str) -> bool:
        return False  # no VINTF manifest here

    def getDeclaredInstances(self, iface: str) -> list[str]:
        return []

    def updatableViaApex(self, name: str) -> str | None:
        return None  # no APEXes here

    def getUpdatableNames(self, apexName: str) -> list[str]:
        return []

    def getConnectionInfo(self, name: str) -> ConnectionInfo | None:
        return None  # no RPC binder services here

    def registerClientCallback(self, name: str, service: IBinder, callback: IClientCallback) -> None:
        raise UnsupportedOperationException("registerClientCallback is not supported yet")

    def tryUnregisterService(self, name: str, service: IBinder) -> None:
        raise UnsupportedOperationException("tryUnregisterService is not supported yet")

    def getServiceDebugInfo(self) -> list[ServiceDebugInfo]:
        with self._lock:
            return [ServiceDebugInfo(name, e.pid) for name, e in sorted(self.services.items())]


class ServiceManagerProxy:
    """The client side of IServiceManager, with libbinder's conveniences (``get_service`` waits)."""

    def __init__(self, binder: IBinder, device: str = "binder") -> None:
        self.binder = binder
        self.remote = IServiceManager.Stub.as_interface(binder)
        if isinstance(self.remote, IServiceManager.Stub):  # a service manager in this very process
            return
        self.remote.header = interface_header(device)  # type: ignore[attr-defined]

    @staticmethod
    def _call(fn: Callable[[], T]) -> T:
        try:
            return fn()
        except DeadObjectError:
            raise DeadObjectError("no service manager runs on this device (start one with "
                                  "`vbinder servicemanager MOUNTPOINT`)") from None

    def check_service(self, name: str) -> IBinder | None:
        """The service, or None when it is not registered."""
        return self._call(lambda: self.remote.checkService(name))

    def get_service(self, name: str, timeout: float = 5.0) -> IBinder | None:
        """The service, waiting up to ``timeout`` seconds for it to be added (as libbinder does)."""
        deadline = time.monotonic() + timeout
        while True:
            binder = self._call(lambda: self.remote.getService(name))
            if binder is not None or time.monotonic() >= deadline:
                return binder
            time.sleep(0.05)

    def add_service(self, name: str, service: IBinder, allow_isolated: bool = False,
                    dump_priority: int = DUMP_FLAG_PRIORITY_DEFAULT) -> None:
        self._call(lambda: self.remote.addService(name, service, allow_isolated, dump_priority))

    def list_services(self, dump_priority: int = DUMP_FLAG_PRIORITY_ALL) -> list[str]:
        return self._call(lambda: self.remote.listServices(dump_priority))

    def is_declared(self, name: str) -> bool:
        return self._call(lambda: self.remote.isDeclared(name))


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
