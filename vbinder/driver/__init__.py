"""The binder driver core, sans-IO: Linux 6.1's binder.c and binder_alloc.c in Python.

Object model (as the kernel's; one module per concept):

- :mod:`.driver` ``Driver``: everything global: contexts (one per device), procs, the debug-id
  counter shared by nodes, refs and transactions, stats, the transaction logs and the log.
- :mod:`.context` ``Context``: a device, with its context manager node (handle 0).
- :mod:`.process` ``Proc``: one per open device file: threads, nodes, refs, todo, allocator;
  how work finds a thread, and teardown.
- :mod:`.thread` ``Thread``: one per tid: todo, transaction stack, looper state.
- :mod:`.node` ``Node`` and ``Ref``: local objects and the handles other procs hold to them.
- :mod:`.write`: the BC commands of a write buffer, one function each; :mod:`.read`: the BR
  commands of a read.
- :mod:`.transaction` ``Transaction``: routing, submitting, completing and failing calls and
  replies (a failure is one :class:`TransactionError`); :mod:`.translate`: copying a
  transaction's buffer and translating its objects, one step per object type;
  :mod:`.fds`: the files that BINDER_TYPE_FD/FDA objects carry (taken, delivered and closed
  through the host, which alone touches fds); :mod:`.transaction_log`: the transaction logs of
  debugfs.
- :mod:`.work`: the work items threads read, each delivering, cancelling and printing itself.
- :mod:`.alloc`: the mapped-area allocator.
- :mod:`.ioctl`: ioctls split into write and read phases; :mod:`.device`: the ABI's frames.
- :mod:`.debugfs`, :mod:`.fmt`: the debugfs files and the kernel's printf conversions;
  :mod:`.log`, :mod:`.params`, :mod:`.stats`: the log, the module parameters, the counters.

Nothing here does I/O or knows about FUSE or trio: a read that must wait returns
:class:`WouldBlock`, and whoever waits is woken through its :class:`Waiter`; what only the I/O
layer can do (look at /proc, move fds) it asks of its :class:`Host`.
"""

from ..native import package_path

__path__ = package_path(__path__, __name__)  # the compiled modules first, when built and current

from .device import DeviceFile  # noqa: E402
from .driver import DEFAULT_DEVICES, Driver, Host  # noqa: E402
from .errors import BinderError, Waiter, WouldBlock  # noqa: E402

__all__ = ["DEFAULT_DEVICES", "BinderError", "DeviceFile", "Driver", "Host", "Waiter", "WouldBlock"]
