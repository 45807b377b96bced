"""The service manager: IServiceManager of Android 11 to 16, server and client.

The server is an ordinary process that becomes the context manager (handle 0) of its device, as
Android's servicemanager does; the client API is :func:`default_service_manager`. Each release's
protocol is the project's own AIDL description of its interface
(``interfaces/androidNN/android/os/IServiceManager.aidl``, compiled by ``vbinder aidl`` into the
modules beside it): its transaction codes (Android 15 inserts getService2, 16 checkService2, so
the later codes move), ``@utf8InCpp`` strings (String16 on the wire) and binders with their
stability word (whose format the process's release sets: :mod:`.android`). One
:class:`ServiceManager` implements every release's methods; the class for a release is it and
that release's generated stub (:func:`server_class`). docs/android-versions.md has the table.
"""

# ruff: noqa: N802, N803 - the methods ServiceManager implements have IServiceManager.aidl's names

from __future__ import annotations

import functools
import importlib
import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from . import android as android_versions
from .binder import BBinder, BpBinder, DeadObjectError, IBinder
from .errors import IllegalArgumentException, UnsupportedOperationException
from .ipc_thread_state import calling_pid
from .parcel import interface_header
from .process_state import ProcessState

DESCRIPTOR = "android.os.IServiceManager"
# IServiceManager.aidl's constants (the same in every release; FLAG_IS_LAZY_SERVICE from 15 on)
DUMP_FLAG_PRIORITY_CRITICAL = 1 << 0
DUMP_FLAG_PRIORITY_HIGH = 1 << 1
DUMP_FLAG_PRIORITY_NORMAL = 1 << 2
DUMP_FLAG_PRIORITY_DEFAULT = 1 << 3
DUMP_FLAG_PRIORITY_ALL = 15
DUMP_FLAG_PROTO = 1 << 4
FLAG_IS_LAZY_SERVICE = 1 << 30

log = logging.getLogger(__name__)
T = TypeVar("T")


def interface_types(android: int, name: str) -> Any:
    """The generated type ``name`` (``IServiceManager``, ``Service``, ...) of Android ``android``'s
    protocol, imported on first use (a process speaks one release)."""
    module = importlib.import_module(f"{__package__}.interfaces.android{android}.android.os.{name}")
    return getattr(module, name)


def transaction_codes(android: int) -> dict[str, int]:
    """Each method's transaction code in Android ``android``'s IServiceManager."""
    iface = interface_types(android_versions.check(android), "IServiceManager")
    return {n.removeprefix("TRANSACTION_"): v for n, v in vars(iface).items() if n.startswith("TRANSACTION_")}


class _Entry:
    __slots__ = ("binder", "allow_isolated", "dump_priority", "pid", "lazy")

    def __init__(self, binder: IBinder, allow_isolated: bool, dump_priority: int, pid: int) -> None:
        self.binder = binder
        self.allow_isolated = allow_isolated
        self.dump_priority = dump_priority
        self.pid = pid
        self.lazy = bool(dump_priority & FLAG_IS_LAZY_SERVICE)


class ServiceManager(BBinder):
    """The server side: a name -> binder registry that forgets services whose process dies.

    ``ServiceManager(device, android)`` makes the object of Android ``android``'s protocol (the
    process's release by default): an instance of :func:`server_class`, which is this class and
    that release's ``IServiceManager.Stub``. Its methods are every release's; each release's stub
    dispatches the ones it has.
    """

    android = android_versions.NEWEST

    def __new__(cls, device: str = "binder", android: int | None = None) -> ServiceManager:
        if cls is ServiceManager:
            process = ProcessState._instance
            version = android if android is not None else (process.android if process is not None
                                                           else android_versions.default())
            cls = server_class(version)
        return super().__new__(cls)

    def __init__(self, device: str = "binder", android: int | None = None) -> None:
        super().__init__()
        self.header = interface_header(device)
        self.services: dict[str, _Entry] = {}
        self._lock = threading.Lock()

    def _lookup(self, name: str) -> _Entry | None:
        with self._lock:
            return self.services.get(name)

    def _as_service(self, name: str) -> Any:
        """A ``Service`` union (15+): the binder with its metadata, a null one if none."""
        entry = self._lookup(name)
        metadata = interface_types(self.android, "ServiceWithMetadata")(
            service=entry.binder if entry else None, isLazyService=entry.lazy if entry else False)
        return interface_types(self.android, "Service")(serviceWithMetadata=metadata)

    def getService(self, name: str) -> IBinder | None:
        entry = self._lookup(name)
        return entry.binder if entry else None

    def getService2(self, name: str) -> Any:
        return self._as_service(name)

    def checkService(self, name: str) -> Any:  # Android 15's answers a Service
        if self.android == 15:
            return self._as_service(name)
        return self.getService(name)

    def checkService2(self, name: str) -> Any:
        return self._as_service(name)

    def addService(self, name: str, service: IBinder, allowIsolated: bool, dumpPriority: int) -> None:
        if not name or len(name) > 127 or not all(c.isalnum() or c in "_-./" for c in name):
            raise IllegalArgumentException(f"Invalid service name: {name!r}")
        # getCallingPid: the caller's, or this process's outside a call (main.cpp adds "manager")
        pid = (calling_pid() if ProcessState._instance is not None else 0) or os.getpid()
        with self._lock:
            self.services[name] = _Entry(service, allowIsolated, dumpPriority, pid)
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

    def registerForNotifications(self, name: str, callback: Any) -> None:
        raise UnsupportedOperationException("registerForNotifications is not supported yet")

    def unregisterForNotifications(self, name: str, callback: Any) -> None:
        raise UnsupportedOperationException("unregisterForNotifications is not supported yet")

    def isDeclared(self, name: str) -> bool:
        return False  # no VINTF manifest here

    def getDeclaredInstances(self, iface: str) -> list[str]:
        return []

    def updatableViaApex(self, name: str) -> str | None:
        return None  # no APEXes here

    def getUpdatableNames(self, apexName: str) -> list[str]:
        return []

    def getConnectionInfo(self, name: str) -> Any:
        return None  # no RPC binder services here

    def registerClientCallback(self, name: str, service: IBinder, callback: Any) -> None:
        raise UnsupportedOperationException("registerClientCallback is not supported yet")

    def tryUnregisterService(self, name: str, service: IBinder) -> None:
        raise UnsupportedOperationException("tryUnregisterService is not supported yet")

    def getServiceDebugInfo(self) -> list[Any]:
        info = interface_types(self.android, "ServiceDebugInfo")
        with self._lock:
            return [info(name, e.pid) for name, e in sorted(self.services.items())]


@functools.cache
def server_class(android: int) -> type[ServiceManager]:
    """The service manager of Android ``android``: :class:`ServiceManager` with that release's stub."""
    stub = interface_types(android_versions.check(android), "IServiceManager").Stub
    cls: type[ServiceManager] = type(f"ServiceManager{android}", (ServiceManager, stub), {"android": android})
    return cls


def _unwrap(service: Any) -> IBinder | None:
    """The binder in a ``Service`` union (15+); None for an accessor, which vbinder does not follow."""
    if service is None:
        return None
    if service.tag == type(service).Tag.serviceWithMetadata:
        binder: IBinder | None = service.serviceWithMetadata.service
        return binder
    log.warning("the service manager answered an accessor (RPC binder), which vbinder does not follow")
    return None


class ServiceManagerProxy:
    """The client side of IServiceManager, with libbinder's conveniences (``get_service`` waits).

    It speaks Android ``android``'s protocol (the process's release by default), as libbinder's
    ServiceManagerShim does: from 15 on lookups go through getService2/checkService2 (15's own
    checkService answers a Service) and the binder is taken out of the ``Service`` they answer.
    """

    def __init__(self, binder: IBinder, device: str = "binder", android: int | None = None) -> None:
        process = ProcessState._instance
        self.android = android_versions.check(android) if android is not None else (
            process.android if process is not None else android_versions.default())
        self.binder = binder
        self.interface = interface_types(self.android, "IServiceManager")
        self.remote = self.interface.Stub.as_interface(binder)
        if not isinstance(self.remote, BBinder):  # a proxy, not a service manager in this very process
            self.remote.header = interface_header(device)

    @staticmethod
    def _call(fn: Callable[[], T]) -> T:
        try:
            return fn()
        except DeadObjectError:
            raise DeadObjectError("no service manager runs on this device (start one with "
                                  "`vbinder servicemanager MOUNTPOINT`)") from None

    def check_service(self, name: str) -> IBinder | None:
        """The service, or None when it is not registered."""
        if self.android == 15:
            return _unwrap(self._call(lambda: self.remote.checkService(name)))
        if self.android >= 16:
            return _unwrap(self._call(lambda: self.remote.checkService2(name)))
        binder: IBinder | None = self._call(lambda: self.remote.checkService(name))
        return binder

    def _get(self, name: str) -> IBinder | None:
        if self.android >= 15:
            return _unwrap(self._call(lambda: self.remote.getService2(name)))
        binder: IBinder | None = self._call(lambda: self.remote.getService(name))
        return binder

    def get_service(self, name: str, timeout: float = 5.0) -> IBinder | None:
        """The service, waiting up to ``timeout`` seconds for it to be added (as libbinder does)."""
        deadline = time.monotonic() + timeout
        while True:
            binder = self._get(name)
            if binder is not None or time.monotonic() >= deadline:
                return binder
            time.sleep(0.05)

    def add_service(self, name: str, service: IBinder, allow_isolated: bool = False,
                    dump_priority: int = DUMP_FLAG_PRIORITY_DEFAULT) -> None:
        self._call(lambda: self.remote.addService(name, service, allow_isolated, dump_priority))

    def list_services(self, dump_priority: int = DUMP_FLAG_PRIORITY_ALL) -> list[str]:
        names: list[str] = self._call(lambda: self.remote.listServices(dump_priority))
        return names

    def is_declared(self, name: str) -> bool:
        return bool(self._call(lambda: self.remote.isDeclared(name)))

    def get_service_debug_info(self) -> list[tuple[str, int]]:
        """(name, pid of the process that added it) of every service (Android 12 on)."""
        if self.android < 12:
            raise UnsupportedOperationException(f"Android {self.android}'s service manager has no getServiceDebugInfo")
        return [(i.name, i.debugPid) for i in self._call(lambda: self.remote.getServiceDebugInfo())]


def default_service_manager(process: ProcessState | None = None) -> ServiceManagerProxy:
    """The service manager of the process's device (handle 0), in the process's release's protocol."""
    ps = process or ProcessState.self()
    return ServiceManagerProxy(ps.context_proxy(), ps.device, ps.android)


def serve(path: str | None = None, device: str = "binder", ready: threading.Event | None = None,
          android: int | None = None) -> None:
    """Run a service manager on ``path`` (a device file) in this thread, forever, speaking Android
    ``android``'s protocol (default $VBINDER_ANDROID, else the newest). As AOSP's servicemanager
    (main.cpp) it registers itself as ``manager``."""
    ps = ProcessState.init(path, device, android=android)
    sm = ServiceManager(device)
    ps.become_context_manager(sm)
    sm.addService("manager", sm, False, DUMP_FLAG_PRIORITY_DEFAULT)
    log.info("servicemanager: context manager of %s (Android %d)", ps.transport.path, ps.android)
    if ready is not None:
        ready.set()
    ps.ipc().join_thread_pool(True)
