"""vbinder_client: a libbinder-like binder client in Python.

It reaches the driver only through the device file (a vbinder mount, found automatically, or
``$BINDER_DEVICE``), so it runs where pyfuse3 and trio are absent.
"""

from .binder import (
    FIRST_CALL_TRANSACTION,
    FLAG_ONEWAY,
    BBinder,
    BpBinder,
    DeadObjectError,
    FailedTransactionError,
    IBinder,
)
from .ipc_thread_state import IPCThreadState, calling_pid, calling_uid
from .parcel import Parcel, ParcelError, RemoteException
from .process_state import ProcessState
from .service import Proxy, Service, method
from .service_manager import ServiceManager, ServiceManagerProxy, default_service_manager

__all__ = [
    "FIRST_CALL_TRANSACTION", "FLAG_ONEWAY", "BBinder", "BpBinder", "DeadObjectError", "FailedTransactionError",
    "IBinder", "IPCThreadState", "Parcel", "ParcelError", "ProcessState", "Proxy", "RemoteException", "Service",
    "ServiceManager", "ServiceManagerProxy", "calling_pid", "calling_uid", "default_service_manager", "method",
]
