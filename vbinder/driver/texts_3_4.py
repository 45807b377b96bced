"""The log lines of the 3.4 staging driver, by the 6.1 format vbinder's core prints them with.

Most of 3.4's lines are 6.1's with the ``binder: `` prefix written into each message (printk
had no pr_fmt then): a format missing from :data:`TEXTS_3_4` prints as ``binder: `` and 6.1's
text. The table holds the rest: lines 3.4 printed differently (a string: the whole 3.4 format,
prefix included, for the same arguments; or a function of the arguments, where 3.4 printed
fewer, in another order or with another conversion), and lines 3.4 did not have (None). The
texts are android-3.4's ``drivers/staging/android/binder.c``, typos included (``cmd %dsize``,
``badoffset``, ``%zdfailed``). ``%p`` printed a pointer raw (16 hex digits on a 64-bit kernel)
and NULL as ``(null)`` padded to that width.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from .fmt import d32

Args = tuple[Any, ...]  # a log call's arguments, as %-formatting takes them
Text = str | Callable[[Args], str] | None

NULL_PTR: Final = "          (null)"  # %p of NULL, as wide as a pointer (lib/vsprintf.c of 3.x)
_ZEROS: Final = "0000000000000000"


def _f(fmt: str, *args: object) -> str:
    """printf: ``fmt`` with ``args``."""
    return fmt % args


def p(value: object) -> str:
    """A pointer already printed as 16 hex digits, printed as 3.x's %p (NULL: ``(null)``)."""
    return NULL_PTR if value == _ZEROS else str(value)


def p3(value: int) -> str:
    """3.x's ``%p`` of a value: 16 hex digits, NULL as ``(null)`` as wide."""
    return f"{value & 0xFFFF_FFFF_FFFF_FFFF:016x}" if value else NULL_PTR


def _i(a: Args, n: int) -> int:
    v = a[n]
    assert isinstance(v, int)
    return v


def _br_transaction(a: Args) -> str:
    """BR_TRANSACTION/BR_REPLY's line: cmd printed with %d, and no space before "size"."""
    return _f("binder: %d:%d %s %d %d:%d, cmd %dsize %d-%d ptr %016x-%016x",
              *a[:6], d32(_i(a, 6)), *a[7:11])


TEXTS_3_4: Final[dict[str, Text]] = {
    # binder_debug(...) with no "binder: " in the message
    "        node %d u%016x": "        node %d u%016x",
    "        node %d u%016x -> ref %d desc %d": "        node %d u%016x -> ref %d desc %d",
    "        ref %d desc %d -> node %d u%016x": "        ref %d desc %d -> node %d u%016x",
    "        ref %d desc %d -> ref %d desc %d (node %d)": "        ref %d desc %d -> ref %d desc %d (node %d)",
    "%s: %d:%d": "%s: %d:%d",  # binder_open
    "%s: %d %x-%x (%d K) vma %x pagep %x": "%s: %d %x-%x (%d K) vma %x pagep %x",  # binder_mmap
    "binder_flush: %d woke %d threads": "binder_flush: %d woke %d threads",
    "%s: %d context_mgr_node gone": lambda a: _f("binder_release: %d context_mgr_node gone", a[1]),
    "%s: %d %x-%x %s failed %d": lambda a: _f("binder_mmap: %d %x-%x %s failed %d", *a[1:]),
    # %p of a node's ptr and cookie: NULL (the context manager's) prints "(null)"
    "%d:%d node %d u%016x c%016x created":
        lambda a: _f("binder: %d:%d node %d u%s c%s created", a[0], a[1], a[2], p3(_i(a, 3)), p3(_i(a, 4))),
    "%d:%d node %d u%016x c%016x deleted":
        lambda a: _f("binder: %d:%d node %d u%s c%s deleted", a[0], a[1], a[2], p3(_i(a, 3)), p3(_i(a, 4))),
    "%d:%d node %d u%016x c%016x state unchanged":
        lambda a: _f("binder: %d:%d node %d u%s c%s state unchanged", *a[:3], p3(_i(a, 3)), p3(_i(a, 4))),
    "%d:%d %s %d u%016x c%016x":
        lambda a: _f("binder: %d:%d %s %d u%s c%s", a[0], a[1], a[2], a[3], p3(_i(a, 4)), p3(_i(a, 5))),
    # other words, other arguments
    "%d:%d %s %d %d:%d, cmd %u size %d-%d ptr %016x-%016x": _br_transaction,
    "%d:%d %s %d refcount change on invalid ref %d ret %d":
        lambda a: _f("binder: %d:%d refcount change on invalid ref %d", a[0], a[1], a[4]),
    "%d:%d %s node %d ls %d lw %d tr %d": lambda a: _f("binder: %d:%d %s node %d ls %d lw %d", *a[:6]),
    "%d:%d BC_DEAD_BINDER_DONE %016x found %s":
        lambda a: _f("binder: %d:%d BC_DEAD_BINDER_DONE %016x found %s", a[0], a[1], a[2], p(a[3])),
    "%d:%d BC_FREE_BUFFER u%016x matched unreturned or currently freeing buffer":
        "binder: %d:%d BC_FREE_BUFFER u%016x matched unreturned buffer",
    "%d:%d BC_REPLY %d -> %d:%d, data %016x-%016x size %d-%d-%d":
        lambda a: _f("binder: %d:%d BC_REPLY %d -> %d:%d, data %s-%s size %d-%d",
                     *a[:5], p3(_i(a, 5)), p3(_i(a, 6)), a[7], a[8]),
    "%d:%d BC_TRANSACTION %d -> %d - node %d, data %016x-%016x size %d-%d-%d":
        lambda a: _f("binder: %d:%d BC_TRANSACTION %d -> %d - node %d, data %s-%s size %d-%d",
                     *a[:5], p3(_i(a, 5)), p3(_i(a, 6)), a[7], a[8]),
    "%d:%d got transaction to invalid handle, %u":
        lambda a: _f("binder: %d:%d got transaction to invalid handle", *a[:2]),
    "%d:%d got transaction with invalid offset (%d, min %d max %d) or object.":
        lambda a: _f("binder: %d:%d got transaction with invalid offset, %d", *a[:3]),
    "%d:%d transaction %s to %d:%d failed %d/%d/%d, size %d-%d line %d":
        lambda a: _f("binder: %d:%d transaction failed %d, size %d-%d", a[0], a[1], a[6], a[8], a[9]),
    "%d:%d tried to acquire reference to desc %d, got %d instead":
        lambda a: _f("binder: %d:%d tried to acquire reference to desc 0, got %d instead", a[0], a[1], a[3]),
    "%d:%d unknown command %u": lambda a: _f("binder: %d:%d unknown command %d", a[0], a[1], d32(_i(a, 2))),
    "%d:%d write %d at %016x, read %d at %016x": "binder: %d:%d write %d at %08x, read %d at %08x",
    "transaction release %d bad handle %d, ret = %d":
        lambda a: _f("binder: transaction release %d bad handle %d", *a[:2]),
    "transaction release %d bad object at offset %d, size %d": "binder: transaction release %d badoffset %d, size %d",
    "%d: binder_alloc_buf size %d failed, no async space left":
        "binder: %d: binder_alloc_buf size %dfailed, no async space left",
    # lines 3.4 did not have
    "%d BINDER_GET_NODE_INFO_FOR_REF: only handle may be non-zero.": None,
    "%d:%d %s process or thread": None,
    "%d:%d cannot find target node": None,
    "%d:%d context manager tried to acquire desc 0": None,
    "%d:%d dead process or thread": None,
    "%d:%d failed to fixup parent": None,
    "%d:%d failed to get security context": None,
    "%d:%d got transaction to context manager from process owning it": None,
    "%d:%d got transaction with invalid parent offset": None,
    "%d:%d got transaction with invalid parent offset or type": None,
    "%d:%d got transaction with out-of-order buffer fixup": None,
    "%d:%d got transaction with too large buffer": None,
    "%d:%d got transaction with unaligned buffers size, %d": None,
    "%d:%d new transaction not allowed when there is a transaction on thread todo": None,
    "%d:%d reply target not found": None,
    "%d:%d self transactions not allowed": None,
    "%d:%d translate %s failed": None,
    "%d:%d translate fd failed": None,
    "%d:%d: bad work type %d": None,
    "%s: Unexpected outstanding_txns %d": None,
    "Unexpected reply error: %u": None,
    "cannot allocate buffer%s": None,
    "tried to use weak ref as strong ref": None,
    "txn %d supersedes %d": None,
    "undelivered TRANSACTION_COMPLETE": None,
    "undelivered TRANSACTION_ERROR: %u": None,
    "undelivered death notification, %016x": None,
    "undelivered transaction %d, %s": None,
    "unexpected work type, %d, not freed": None,
    # the allocator's lines 3.4 did not have, or printed in its own words where it differs
    # (binder_delete_free_buffer's and binder_release's are printed by the 3.4 code paths)
    "%d: pid %d spamming oneway? %d buffers allocated for a total size of %d": None,
    "allocated: %d (num: %d largest: %d), free: %d (num: %d largest: %d)": None,
    "%d: got transaction with invalid extra_buffers_size %d": None,
    "%d: merge free, buffer %s do not share page with %s or %s": None,
    "%d: merge free, buffer %s share page with %s": None,
    "%d: merge free, buffer start %s is page aligned": None,
    "%s: %d: page %d at %s %s": None,
    "%s: %d buffers %d, pages %d": None,
    "%s: %d threads %d, nodes %d (ref %d), refs %d, active transactions %d": None,
}


def text_3_4(fmt: str, args: Args) -> str | None:
    """The line 3.4 prints where 6.1 prints ``fmt`` with ``args`` (None: no line)."""
    if fmt not in TEXTS_3_4:
        return "binder: " + (fmt % args if args else fmt)
    text = TEXTS_3_4[fmt]
    if text is None:
        return None
    if isinstance(text, str):
        return text % args if args else text
    return text(args)
