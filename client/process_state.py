"""ProcessState: the process's binder device, its proxies, local objects and thread pool."""

from __future__ import annotations

import logging
import threading
import weakref
from typing import Any

from vbinder import uapi

from . import android as android_versions
from .binder import BBinder, BpBinder
from .device import open_transport
from .errors import TransportError
from .ipc_thread_state import IPCThreadState
from .parcel import FlatBinderObject, FlattenableBinder, Parcel, set_wire_format
from .transport import Transport

log = logging.getLogger(__name__)
DEFAULT_MAX_THREADS = 15  # libbinder's DEFAULT_MAX_BINDER_THREADS


class _ThreadStates(threading.local):
    """Each thread's IPCThreadState in one process (None before the thread's first call)."""

    state: IPCThreadState | None = None


class ProcessState:
    """One per process and device, as libbinder's: ``ProcessState.self()``."""

    _instance: ProcessState | None = None
    _instance_lock = threading.Lock()

    def __init__(self, path: str | None = None, device: str = "binder", max_threads: int = DEFAULT_MAX_THREADS,
                 transport: Transport | None = None, android: int | None = None) -> None:
        """``android``: the release whose protocol this process speaks (:mod:`.android`; default
        $VBINDER_ANDROID, else the newest)."""
        self.android = android_versions.check(android) if android is not None else android_versions.default()
        set_wire_format(self.android)
        self.device = device
        self.transport = transport or open_transport(path, device)
        ret, arg = self.transport.ioctl(uapi.BINDER_VERSION, uapi.VERSION.pack(0))
        if ret < 0 or uapi.VERSION.unpack(arg)[0] != uapi.BINDER_CURRENT_PROTOCOL_VERSION:
            raise TransportError(f"{self.transport.path}: binder protocol version mismatch")
        self.max_threads = max_threads
        self.transport.ioctl(uapi.BINDER_SET_MAX_THREADS, uapi.U32.pack(max_threads))
        self._lock = threading.Lock()
        self._proxies: weakref.WeakValueDictionary[int, BpBinder] = weakref.WeakValueDictionary()
        self._locals: dict[int, list[Any]] = {}  # ptr -> [binder, weak count, strong count]
        self._deaths: dict[int, BpBinder] = {}  # cookie -> proxy with a death notification
        self.pending: list[bytes] = []  # BC commands from any thread, sent with the next write
        self.context_object: BBinder | None = None
        self._pool_started = False
        self._pool_seq = 0
        self.threads: list[threading.Thread] = []
        self._thread_states = _ThreadStates()

    @classmethod
    def self(cls, path: str | None = None) -> ProcessState:
        """The process's instance, opened on first use (``path`` as for find_device)."""
        inst = cls._instance
        if inst is None:
            with cls._instance_lock:
                inst = cls._instance
                if inst is None:
                    inst = cls._instance = ProcessState(path)
        return inst

    @classmethod
    def init(cls, path: str | None = None, device: str = "binder",
             max_threads: int = DEFAULT_MAX_THREADS, android: int | None = None) -> ProcessState:
        """Open the process's instance on an explicit device (before any other use), speaking
        Android ``android``'s protocol (default $VBINDER_ANDROID, else the newest)."""
        with cls._instance_lock:
            if cls._instance is not None:
                raise RuntimeError("ProcessState already initialized")
            cls._instance = ProcessState(path, device, max_threads, android=android)
            return cls._instance

    # -- objects -------------------------------------------------------------------------------

    def context_proxy(self) -> BpBinder:
        """Handle 0: the context manager (the service manager)."""
        return self.proxy_for_handle(0)

    def proxy_for_handle(self, handle: int, out: bytearray | None = None) -> BpBinder:
        """The proxy for ``handle`` (one per handle while it lives; takes a strong ref).

        A new proxy's BC_INCREFS and BC_ACQUIRE go to ``out`` when given: the queue of the thread
        that read the handle from a received buffer, where they precede that buffer's
        BC_FREE_BUFFER (as libbinder's incStrongHandle writes to the calling thread's mOut).
        Queued for any thread's next write instead, another thread could send them after the
        free, and the driver would drop the ref the buffer held, and the handle with it.
        """
        with self._lock:
            proxy = self._proxies.get(handle)
            if proxy is None:
                proxy = BpBinder(self, handle)
                self._proxies[handle] = proxy
                refs = uapi.U32.pack(uapi.BC_INCREFS) + uapi.U32.pack(handle) + \
                    uapi.U32.pack(uapi.BC_ACQUIRE) + uapi.U32.pack(handle)
                if out is not None:
                    out += refs
                else:
                    self.pending.append(refs)
            return proxy

    def proxy_gone(self, handle: int) -> None:
        """A proxy was collected: drop its strong and weak ref."""
        with self._lock:
            self.pending.append(uapi.U32.pack(uapi.BC_RELEASE) + uapi.U32.pack(handle))
            self.pending.append(uapi.U32.pack(uapi.BC_DECREFS) + uapi.U32.pack(handle))

    def register_local(self, binder: BBinder) -> None:
        """Keep ``binder`` alive: it is being sent, the driver will take references."""
        with self._lock:
            if binder._ptr not in self._locals:
                self._locals[binder._ptr] = [binder, 0, 0]

    def local(self, cookie: int) -> BBinder | None:
        entry = self._locals.get(cookie)
        return entry[0] if entry else None

    def local_refs(self, cookie: int, weak: int, strong: int) -> None:
        """BR_INCREFS/ACQUIRE/RELEASE/DECREFS: the driver's hold on a local object changed."""
        with self._lock:
            entry = self._locals.get(cookie)
            if entry is None:
                return
            entry[1] += weak
            entry[2] += strong
            if entry[1] <= 0 and entry[2] <= 0:
                del self._locals[cookie]

    def resolve(self, obj: FlatBinderObject, stability: int, out: bytearray | None = None
                ) -> BBinder | BpBinder | None:
        """Parcel.binder_resolver: a flat object as a Python binder (``out``: see proxy_for_handle)."""
        if obj.type in (uapi.BINDER_TYPE_HANDLE, uapi.BINDER_TYPE_WEAK_HANDLE):
            return self.proxy_for_handle(obj.value, out)
        if obj.type in (uapi.BINDER_TYPE_BINDER, uapi.BINDER_TYPE_WEAK_BINDER):
            return self.local(obj.cookie) if obj.value else None
        return None

    def adopt(self, parcel: Parcel, out: bytearray | None = None) -> None:
        """Resolve a received parcel's objects now, before its buffer is freed; the refs of new
        proxies go to ``out``, the receiving thread's queue, ahead of the free."""
        parcel.binder_resolver = self.resolve
        keep = []
        for off in parcel.objects():
            parcel.set_data_position(off)
            try:
                keep.append(parcel.read_flat_object(null_meta_data=False))
            except Exception:  # noqa: BLE001 - a garbled object: the reader will say so later
                continue
        parcel.set_data_position(0)
        parcel.keepalive = [self.resolve(o, 0, out) for o in keep]

    def track_death(self, proxy: BpBinder) -> None:
        with self._lock:
            self._deaths[proxy.cookie] = proxy

    def dead_binder(self, cookie: int) -> None:
        with self._lock:
            proxy = self._deaths.pop(cookie, None)
        if proxy is not None:
            proxy.send_obituary()

    def take_pending(self) -> bytes:
        if not self.pending:
            return b""
        with self._lock:
            out, self.pending = b"".join(self.pending), []
        return out

    # -- context manager and thread pool ----------------------------------------------------------

    def become_context_manager(self, obj: BBinder) -> None:
        """BINDER_SET_CONTEXT_MGR: ``obj`` answers handle 0 of this device."""
        ret, _ = self.transport.ioctl(uapi.BINDER_SET_CONTEXT_MGR, uapi.S32.pack(0))
        if ret < 0:
            raise TransportError(-ret, f"cannot become context manager: {ret}")
        self.context_object = obj

    def start_thread_pool(self) -> None:
        """Start the pool's first looper thread (BC_ENTER_LOOPER), as libbinder's startThreadPool."""
        with self._lock:
            if self._pool_started:
                return
            self._pool_started = True
        self.spawn_pooled_thread(True)

    def spawn_pooled_thread(self, is_main: bool) -> None:
        self._pool_seq += 1
        t = threading.Thread(target=lambda: self.thread_state().join_thread_pool(is_main),
                             name=f"Binder:{self._pool_seq}", daemon=True)
        self.threads.append(t)
        t.start()

    def thread_state(self) -> IPCThreadState:
        """The calling thread's IPCThreadState in this process, made on its first use."""
        states = self._thread_states
        st = states.state
        if st is None:
            st = states.state = IPCThreadState(self)
        return st

    def ipc(self) -> IPCThreadState:
        """The calling thread's IPCThreadState (:meth:`thread_state`)."""
        return self.thread_state()


def _flatten_binder(obj: FlattenableBinder) -> tuple[int, int, int, int]:
    """Parcel.binder_flattener: a local object being sent is kept alive by the process, since
    the driver will take references to it (as libbinder's flattenBinder, through
    ``ProcessState::self()``)."""
    if isinstance(obj, BBinder):
        ProcessState.self().register_local(obj)
    return obj.flatten()


# The hooks through which the lower modules reach the process (they do not import this one).
IPCThreadState.default_process = ProcessState.self
Parcel.binder_flattener = _flatten_binder
