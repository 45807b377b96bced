"""The binder driver core, sans-IO: Linux 6.1's binder.c and binder_alloc.c in Python.

Object model (as the kernel's; one module per concept):

- :mod:`.binder` ``Driver``: everything global: contexts (one per device), procs, the debug-id
  counter shared by nodes, refs and transactions, stats, the transaction logs and the log.
- :mod:`.context` ``Context``: a device, with its context manager node (handle 0).
- :mod:`.process` ``Proc``: one per open device file: threads, nodes, refs, todo, allocator;
  the BC write loop and the BR read loop.
- :mod:`.thread` ``Thread``: one per tid: todo, transaction stack, looper state.
- :mod:`.node` ``Node`` and ``Ref``: local objects and the handles other procs hold to them.
- :mod:`.transaction` ``Transaction``: building, routing, completing and failing calls/replies.
- :mod:`.work`: the work items threads read. :mod:`.alloc`: the mapped-area allocator.
- :mod:`.ioctl`: ioctls split into write and read phases; :mod:`.device`: the ABI's frames.

Nothing here does I/O or knows about FUSE or trio: a read that must wait returns
:class:`WouldBlock`, and whoever waits is woken through its :class:`Waiter`.
"""

from ..native import package_path

__path__ = package_path(__path__, __name__)  # the compiled modules first, when built and current

from .binder import DEFAULT_DEVICES, Driver, Host  # noqa: E402
from .device import DeviceFile  # noqa: E402
from .errors import BinderError, Waiter, WouldBlock  # noqa: E402

__all__ = ["DEFAULT_DEVICES", "BinderError", "DeviceFile", "Driver", "Host", "Waiter", "WouldBlock"]
