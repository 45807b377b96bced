"""vbinder_client: a libbinder-like binder client in Python.

It reaches the driver only through the device file (a vbinder mount, found automatically, or
``$BINDER_DEVICE``), so it runs where pyfuse3 and trio are absent.
"""

from vbinder.native import package_path

__path__ = package_path(__path__, __name__)  # the compiled modules first, when built and current

from .binder import DUMP_TRANSACTION, FIRST_CALL_TRANSACTION, FLAG_ONEWAY, BBinder, BpBinder, IBinder  # noqa: E402
from .errors import (  # noqa: E402
    BadParcelableException,
    ClientError,
    DeadObjectError,
    FailedTransactionError,
    IllegalArgumentException,
    IllegalStateException,
    NetworkOnMainThreadException,
    NullPointerException,
    ParcelError,
    RemoteException,
    SecurityException,
    ServiceSpecificException,
    TransportError,
    UnknownTransactionError,
    UnsupportedOperationException,
)
from .ipc_thread_state import IPCThreadState, calling_pid, calling_uid  # noqa: E402
from .parcel import Parcel  # noqa: E402
from .parcel_file_descriptor import ParcelFileDescriptor  # noqa: E402
from .process_state import ProcessState  # noqa: E402
from .service import Proxy, Service, method  # noqa: E402
from .service_manager import ServiceManager, ServiceManagerProxy, default_service_manager  # noqa: E402

__all__ = [
    "DUMP_TRANSACTION", "FIRST_CALL_TRANSACTION", "FLAG_ONEWAY", "BBinder", "BadParcelableException", "BpBinder",
    "ClientError", "DeadObjectError", "FailedTransactionError", "IBinder", "IPCThreadState",
    "IllegalArgumentException", "IllegalStateException", "NetworkOnMainThreadException", "NullPointerException",
    "Parcel", "ParcelError", "ParcelFileDescriptor", "ProcessState", "Proxy", "RemoteException",
    "SecurityException", "Service", "ServiceManager", "ServiceManagerProxy", "ServiceSpecificException",
    "TransportError", "UnknownTransactionError", "UnsupportedOperationException", "calling_pid", "calling_uid",
    "default_service_manager", "method",
]
