"""The IEcho interface shared by the echo example's service and client (AIDL-style codes)."""

from __future__ import annotations

from vbinder_client import FIRST_CALL_TRANSACTION, Parcel, Proxy, Service, method

DESCRIPTOR = "vbinder.example.IEcho"
ECHO = FIRST_CALL_TRANSACTION  # String echo(String text)
SHOUT = FIRST_CALL_TRANSACTION + 1  # oneway void shout(String text)


class EchoService(Service):
    """Answers ``echo`` with the same text; counts ``shout``s (one-way)."""

    descriptor = DESCRIPTOR

    def __init__(self) -> None:
        super().__init__()
        self.shouts: list[str] = []

    @method(ECHO)
    def echo(self, data: Parcel, reply: Parcel) -> None:
        reply.write_string16(data.read_string16())

    @method(SHOUT, oneway=True)
    def shout(self, data: Parcel, reply: Parcel) -> None:
        self.shouts.append(data.read_string16() or "")
        print(f"echo service: someone shouted {self.shouts[-1]!r}", flush=True)


class EchoProxy(Proxy):
    """The client side of IEcho."""

    descriptor = DESCRIPTOR

    def echo(self, text: str) -> str:
        return self.call(ECHO, lambda p: p.write_string16(text)).read_string16() or ""

    def shout(self, text: str) -> None:
        self.call(SHOUT, lambda p: p.write_string16(text), oneway=True)
