"""The client's errors and Status.h exception codes.

Their own module, never compiled: mypyc cannot compile subclasses of OSError, and its exception
subclasses with properties are unreliable.
"""

from __future__ import annotations

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


class TransportError(OSError):
    """An ioctl failed (``errno`` set), or the device could not be used."""


class ParcelError(Exception):
    """The parcel's data is short, malformed, or not what the reader asked for."""


class RemoteException(Exception):  # noqa: N818 - the name Android (Java) gives it
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
