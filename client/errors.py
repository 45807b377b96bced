"""Every error the client raises, under one base class (:class:`ClientError`), and Status.h's
exception codes.

Their own module, never compiled: mypyc cannot compile subclasses of OSError, and its exception
subclasses with properties are unreliable.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

# Status.h ``Exception``.
EX_NONE: Final = 0
EX_SECURITY: Final = -1
EX_BAD_PARCELABLE: Final = -2
EX_ILLEGAL_ARGUMENT: Final = -3
EX_NULL_POINTER: Final = -4
EX_ILLEGAL_STATE: Final = -5
EX_NETWORK_MAIN_THREAD: Final = -6
EX_UNSUPPORTED_OPERATION: Final = -7
EX_SERVICE_SPECIFIC: Final = -8
EX_PARCELABLE: Final = -9
EX_HAS_NOTED_APPOPS_REPLY_HEADER: Final = -127  # Java only; native Status does not skip it
EX_HAS_REPLY_HEADER: Final = -128
EX_TRANSACTION_FAILED: Final = -129

EXCEPTION_NAMES: Final[dict[int, str]] = {
    v: n for n, v in globals().items() if n.startswith("EX_") and isinstance(v, int)
}


class ClientError(Exception):
    """What the client raises when binder fails it (usage errors stay ValueError/RuntimeError)."""


class TransportError(ClientError, OSError):
    """An ioctl failed (``errno`` set), or the device could not be used."""


class DeadObjectError(ClientError):
    """The remote process is gone (BR_DEAD_REPLY)."""


class FailedTransactionError(ClientError):
    """The driver refused the call (BR_FAILED_REPLY, BR_FROZEN_REPLY, or an ioctl error)."""


class UnknownTransactionError(ClientError):
    """A code the object does not handle (UNKNOWN_TRANSACTION)."""


class StatusError(ClientError):
    """A local object answers a call with a status (a negative errno, libbinder's ``status_t``)
    instead of a reply: raised by its code, sent as a TF_STATUS_CODE reply."""

    def __init__(self, status: int) -> None:
        super().__init__(f"status {status}")
        self.status = status


class ParcelError(ClientError):
    """The parcel's data is short, malformed, or not what the reader asked for."""


class RemoteException(ClientError):  # noqa: N818 - the name Android (Java) gives it
    """An AIDL exception carried in a reply's status header (``binder::Status``)."""

    def __init__(self, code: int, message: str | None = None, service_specific_error: int = 0) -> None:
        self.code = code
        self.message = message
        self.service_specific_error = service_specific_error
        super().__init__(code, message, service_specific_error)

    @property
    def name(self) -> str:
        """The exception's Status.h name, or its number."""
        return EXCEPTION_NAMES.get(self.code, str(self.code))

    def __str__(self) -> str:
        detail = f"{self.service_specific_error}: " if self.code == EX_SERVICE_SPECIFIC else ""
        return f"Status({self.code}, {self.name}): '{detail}{self.message or ''}'"


# The exceptions a caller sees for each AIDL status code (the Java classes' names, which is what
# Parcel.java's readException raises for each code). A service raises them to send that status.


class SecurityException(RemoteException):  # noqa: N818 - Java's names
    """EX_SECURITY."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(EX_SECURITY, message)


class BadParcelableException(RemoteException):  # noqa: N818
    """EX_BAD_PARCELABLE."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(EX_BAD_PARCELABLE, message)


class IllegalArgumentException(RemoteException):  # noqa: N818
    """EX_ILLEGAL_ARGUMENT."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(EX_ILLEGAL_ARGUMENT, message)


class NullPointerException(RemoteException):  # noqa: N818
    """EX_NULL_POINTER."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(EX_NULL_POINTER, message)


class IllegalStateException(RemoteException):  # noqa: N818
    """EX_ILLEGAL_STATE."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(EX_ILLEGAL_STATE, message)


class NetworkOnMainThreadException(RemoteException):  # noqa: N818
    """EX_NETWORK_MAIN_THREAD."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(EX_NETWORK_MAIN_THREAD, message)


class UnsupportedOperationException(RemoteException):  # noqa: N818
    """EX_UNSUPPORTED_OPERATION."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(EX_UNSUPPORTED_OPERATION, message)


class ServiceSpecificException(RemoteException):  # noqa: N818
    """EX_SERVICE_SPECIFIC: a service's own error code, with a message."""

    def __init__(self, error_code: int, message: str | None = None) -> None:
        super().__init__(EX_SERVICE_SPECIFIC, message, error_code)

    @property
    def error_code(self) -> int:
        return self.service_specific_error


_EXCEPTIONS: dict[int, Callable[[str | None], RemoteException]] = {
    EX_SECURITY: SecurityException, EX_BAD_PARCELABLE: BadParcelableException,
    EX_ILLEGAL_ARGUMENT: IllegalArgumentException, EX_NULL_POINTER: NullPointerException,
    EX_ILLEGAL_STATE: IllegalStateException, EX_NETWORK_MAIN_THREAD: NetworkOnMainThreadException,
    EX_UNSUPPORTED_OPERATION: UnsupportedOperationException,
}


def exception_for(code: int, message: str | None = None, service_specific_error: int = 0) -> RemoteException:
    """The exception a status carries: the class for its code, or a plain RemoteException."""
    if code == EX_SERVICE_SPECIFIC:
        return ServiceSpecificException(service_specific_error, message)
    cls = _EXCEPTIONS.get(code)
    return cls(message) if cls is not None else RemoteException(code, message, service_specific_error)
