"""The transaction logs of debugfs: binder_transaction_log and its entries (6.1).

Every transaction gets an entry in ``transaction_log``; a failed one is also copied into
``failed_transaction_log``. Each is a ring of the last 32 entries.
"""

from __future__ import annotations


class LogEntry:
    """struct binder_transaction_log_entry."""

    __slots__ = ("debug_id", "debug_id_done", "call_type", "from_proc", "from_thread", "target_handle",
                 "to_proc", "to_thread", "to_node", "data_size", "offsets_size", "return_error_line",
                 "return_error", "return_error_param", "context_name")

    def __init__(self) -> None:
        self.debug_id = self.debug_id_done = self.call_type = 0
        self.from_proc = self.from_thread = self.target_handle = 0
        self.to_proc = self.to_thread = self.to_node = 0
        self.data_size = self.offsets_size = 0
        self.return_error_line = self.return_error = self.return_error_param = 0
        self.context_name = ""

    def copy(self) -> LogEntry:
        e = LogEntry()
        e.debug_id, e.debug_id_done, e.call_type = self.debug_id, self.debug_id_done, self.call_type
        e.from_proc, e.from_thread, e.target_handle = self.from_proc, self.from_thread, self.target_handle
        e.to_proc, e.to_thread, e.to_node = self.to_proc, self.to_thread, self.to_node
        e.data_size, e.offsets_size = self.data_size, self.offsets_size
        e.return_error_line, e.return_error = self.return_error_line, self.return_error
        e.return_error_param, e.context_name = self.return_error_param, self.context_name
        return e


class TransactionLog:
    """struct binder_transaction_log: a ring of 32 entries."""

    SIZE = 32

    def __init__(self) -> None:
        self.entries: list[LogEntry | None] = [None] * self.SIZE
        self.cur = -1
        self.full = False

    def add(self, e: LogEntry | None = None) -> LogEntry:
        self.cur += 1
        if self.cur >= self.SIZE:
            self.full = True
        e = e or LogEntry()
        self.entries[self.cur % self.SIZE] = e
        return e

    def ordered(self) -> list[LogEntry]:
        if self.cur < 0:
            return []
        count = self.SIZE if self.full else self.cur + 1
        start = self.cur + 1 - count
        return [e for i in range(start, start + count) if (e := self.entries[i % self.SIZE]) is not None]
