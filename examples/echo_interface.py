"""The IEcho interface shared by the echo example's service and client.

``aidl/vbinder/example/IEcho.aidl`` defines it; :func:`vbinder_client.aidl.load` compiles it
when this module is imported (``vbinder aidl -o DIR aidl/vbinder/example/IEcho.aidl`` writes the
same code to a file instead).
"""

from __future__ import annotations

import os

from vbinder_client import aidl

IEcho = aidl.load(os.path.join(os.path.dirname(os.path.abspath(__file__)), "aidl", "vbinder", "example", "IEcho.aidl"))


class EchoService(IEcho.Stub):
    """Answers ``echo`` with the same text; prints and counts ``shout``s (one-way); ``dump``
    (what ``dumpsys echo`` asks for) writes its counts to the caller's fd."""

    def __init__(self) -> None:
        super().__init__()
        self.shouts: list[str] = []
        self.echoes = 0

    def echo(self, text: str) -> str:
        self.echoes += 1
        return text

    def dump(self, fd: int, args: list[str]) -> int:
        """DUMP_TRANSACTION: ``fd`` is the caller's file (lent for the call), ``args`` its words."""
        os.write(fd, f"echo service: {self.echoes} echoes answered (dump args: {' '.join(args) or 'none'})\n".encode())
        return 0

    def shout(self, text: str) -> None:
        self.shouts.append(text)
        print(f"echo service: someone shouted {text!r}", flush=True)
