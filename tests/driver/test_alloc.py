"""The allocator of a mapped area (vbinder.driver.alloc) against Linux 6.1's binder_alloc.c.

Expected values marked "oracle" were printed by the real 6.1 driver (../oracle/run.sh): addresses
that the receiving process saw in BR_TRANSACTION, and the "pages:" / "pages high watermark:" /
"free async space" lines of debugfs ``stats``.
"""

from __future__ import annotations

import errno
import random

import pytest

from vbinder.driver.alloc import _KERNEL_OBJECT, PAGE_SIZE, Alloc, Buffer
from vbinder.driver.errors import BinderError
from vbinder.driver.fmt import pk
from vbinder.driver.log import AllocDebug, Log
from vbinder.driver.transaction import Transaction

from .harness import make_driver

BASE = 0x7000_0000_0000
VM_SIZE = 1040384  # libbinder's mapping: 1 MiB - 8 KiB = 254 pages
PID = 1
ALL = int(AllocDebug.USER_ERROR | AllocDebug.OPEN_CLOSE | AllocDebug.BUFFER_ALLOC
          | AllocDebug.BUFFER_ALLOC_ASYNC)


def make(size: int = VM_SIZE, mask: int = int(AllocDebug.USER_ERROR)) -> tuple[Alloc, Log]:
    log = Log(alloc_debug_mask=mask, clock=lambda: 0.0)
    alloc = Alloc(PID, log)
    alloc.mmap(BASE, size)
    return alloc, log


def user(addr: int) -> str:
    """``%pK`` of a user address, as the allocator's lines print it (6.1 hashes it)."""
    return pk(addr)


def kobj(addr: int) -> str:
    """``%p`` of the ``struct binder_buffer`` of the buffer at ``addr``: hashed, never equal to user(addr)."""
    value = pk(addr ^ _KERNEL_OBJECT)
    assert value != pk(addr)
    return value


def lines(log: Log) -> list[str]:
    """The printed lines without their level and timestamp."""
    return [line.split("] ", 1)[1] for _seq, line in log.ring]


def deliver(alloc: Alloc, buffer: Buffer) -> Buffer:
    """What binder_thread_read does on delivery, then BC_FREE_BUFFER's lookup and the free."""
    buffer.allow_user_free = True
    got = alloc.prepare_to_free(buffer.user_data)
    assert got is buffer
    alloc.free_buf(buffer)
    return buffer


def pages(alloc: Alloc) -> str:
    return ":".join(str(n) for n in alloc.page_counts())


# ---- mmap -----------------------------------------------------------------------------------


def test_mmap_sets_up_one_free_buffer() -> None:
    # binder_alloc_mmap_handler; binder_alloc_print_pages (oracle: a mapped, unused process
    # shows "pages: 0:0:254" and "pages high watermark: 0"; "free async space 520192")
    alloc, _ = make()
    assert alloc.mapped
    assert alloc.vm_start == BASE
    assert alloc.buffer_size == VM_SIZE
    assert alloc.free_async_space == alloc.get_free_async_space() == 520192
    assert pages(alloc) == "0:0:254"
    assert alloc.pages_high == 0
    assert alloc.count_allocated() == 0
    assert alloc.allocated_buffers() == []
    # the one free buffer covers the whole area
    b = alloc.new_buf(VM_SIZE, 0, 0, False, 2)
    assert b.user_data == BASE
    assert pages(alloc) == "254:0:0"


def test_mmap_uses_at_most_4_mib() -> None:
    # binder_alloc_mmap_handler: buffer_size = min(vm size, SZ_4M)
    alloc, _ = make(size=8 << 20)
    assert alloc.buffer_size == 4 << 20
    assert alloc.free_async_space == 2 << 20
    assert pages(alloc) == "0:0:1024"
    with pytest.raises(BinderError) as e:
        alloc.new_buf((4 << 20) + 8, 0, 0, False, 2)
    assert e.value.errno == errno.ENOSPC


def test_mmap_twice_is_ebusy() -> None:
    # binder_alloc_mmap_handler: "already mapped", also after the vma is gone
    alloc, log = make()
    with pytest.raises(BinderError) as e:
        alloc.mmap(BASE + 0x100000, 0x100000)
    assert e.value.errno == errno.EBUSY
    assert lines(log) == [
        "binder_alloc: binder_alloc_mmap_handler: 1 700000100000-700000200000 already mapped failed -16"]
    alloc.vma_close()
    with pytest.raises(BinderError) as e:
        alloc.mmap(BASE, VM_SIZE)
    assert e.value.errno == errno.EBUSY


# ---- allocation -----------------------------------------------------------------------------


def test_first_transaction_pages_match_oracle() -> None:
    # binder_alloc_new_buf_locked, binder_free_buf_locked (oracle debugfs_A_inflight.txt and
    # debugfs_A_idle.txt: one 20-byte transaction, then freed)
    alloc, _ = make()
    b = alloc.new_buf(20, 0, 0, False, 2)
    assert b.user_data == BASE
    assert not b.free and not b.allow_user_free and not b.async_transaction
    assert (b.data_size, b.offsets_size, b.extra_buffers_size, b.pid) == (20, 0, 0, 2)
    assert b.data == bytearray(24)
    assert pages(alloc) == "1:0:253"
    assert alloc.pages_high == 1
    assert alloc.count_allocated() == 1
    deliver(alloc, b)
    assert pages(alloc) == "0:1:253"
    assert alloc.pages_high == 1
    assert alloc.count_allocated() == 0


def test_sizes_are_aligned_and_padded() -> None:
    # binder_alloc_new_buf_locked: ALIGN(data) + ALIGN(offsets) + ALIGN(extra), at least 8
    alloc, _ = make()
    a = alloc.new_buf(1, 0, 0, False, 2)
    b = alloc.new_buf(0, 0, 0, False, 2)
    c = alloc.new_buf(13, 9, 3, False, 2)
    d = alloc.new_buf(8, 8, 8, False, 2)
    assert [x.user_data - BASE for x in (a, b, c, d)] == [0, 8, 16, 56]
    assert [len(x.data) for x in (a, b, c, d)] == [8, 8, 40, 24]
    assert alloc.allocated_buffers() == [a, b, c, d]
    assert alloc.buffer_at(BASE + 16) is c
    assert alloc.buffer_at(BASE + 17) is None


def test_invalid_sizes_are_einval() -> None:
    # binder_alloc_new_buf_locked: size_t overflow checks
    alloc, log = make(mask=ALL)
    log.ring.clear()
    with pytest.raises(BinderError) as e:
        alloc.new_buf(2**64 - 1, 0, 0, False, 2)
    assert e.value.errno == errno.EINVAL
    with pytest.raises(BinderError) as e:
        alloc.new_buf(8, 8, 2**64 - 4, False, 2)
    assert e.value.errno == errno.EINVAL
    assert lines(log) == [
        "binder_alloc: 1: got transaction with invalid size -1-0",
        "binder_alloc: 1: got transaction with invalid extra_buffers_size -4",
    ]


def test_split_and_merge() -> None:
    # binder_alloc_new_buf_locked (split), binder_free_buf_locked (merge with next, then prev)
    alloc, _ = make()
    a = alloc.new_buf(100, 0, 0, False, 2)  # 104 at 0
    b = alloc.new_buf(200, 0, 0, False, 2)  # 200 at 104
    c = alloc.new_buf(300, 0, 0, False, 2)  # 304 at 304
    assert [x.user_data - BASE for x in (a, b, c)] == [0, 104, 304]
    deliver(alloc, b)
    # a hole of exactly 200 bytes: an exact fit lands there
    b2 = alloc.new_buf(200, 0, 0, False, 2)
    assert b2.user_data == BASE + 104
    assert b2 is not b and b.free  # a fresh object: the freed one never comes back to life
    deliver(alloc, b2)
    deliver(alloc, a)  # merges with the free 104..304 chunk
    ab = alloc.new_buf(304, 0, 0, False, 2)
    assert ab.user_data == BASE
    deliver(alloc, ab)
    deliver(alloc, c)  # merges with both neighbours: the whole area is one free buffer again
    whole = alloc.new_buf(VM_SIZE, 0, 0, False, 2)
    assert whole.user_data == BASE


def test_best_fit() -> None:
    # binder_alloc_new_buf_locked: the smallest free buffer that fits
    alloc, _ = make()
    chunks = {}
    for size in (64, 32, 128, 48):
        chunks[size] = alloc.new_buf(size, 0, 0, False, 2)
        alloc.new_buf(8, 0, 0, False, 2)  # spacer
    starts = {size: b.user_data for size, b in chunks.items()}
    for b in chunks.values():
        deliver(alloc, b)
    assert alloc.new_buf(40, 0, 0, False, 2).user_data == starts[48]
    assert alloc.new_buf(32, 0, 0, False, 2).user_data == starts[32]
    assert alloc.new_buf(100, 0, 0, False, 2).user_data == starts[128]
    assert alloc.new_buf(56, 0, 0, False, 2).user_data == starts[64]


def test_best_fit_among_equal_sizes_walks_the_rbtree() -> None:
    # binder_alloc_new_buf_locked's walk stops at the first exact match on its path, which
    # depends on the shape of the red-black tree (binder_insert_free_buffer: equal sizes go
    # right). Oracle: 40 x (64, 8), free the 64s, then 30 x 64.
    alloc, _ = make()
    sixty_fours = []
    for _ in range(40):
        sixty_fours.append(alloc.new_buf(64, 0, 0, False, 2))
        alloc.new_buf(8, 0, 0, False, 2)
    for b in sixty_fours:
        deliver(alloc, b)
    got = [alloc.new_buf(64, 0, 0, False, 2).user_data - BASE for _ in range(30)]
    assert got == [1080, 1152, 1224, 1296, 1368, 1440, 1512, 1584, 1656, 1728, 1800, 1872, 1944,
                   2016, 2088, 2160, 2232, 504, 576, 648, 720, 792, 864, 936, 1008, 2304, 2376,
                   2448, 2520, 2592]
    assert pages(alloc) == "1:0:253"


# A random sequence run on the oracle: "a SIZE ADDR PAGES HIGH" is a transaction of SIZE data
# bytes that arrived at ADDR (offset in the area), "f ADDR PAGES HIGH" its BC_FREE_BUFFER; PAGES
# and HIGH are the stats lines right after.
ORACLE_SEQUENCE = """
a 195 0 1:0:253 1 | f 0 0:1:253 1 | a 64 0 1:0:253 1 | a 53 64 1:0:253 1 | f 0 1:0:253 1
a 155 120 1:0:253 1 | a 114 280 1:0:253 1 | f 64 1:0:253 1 | a 81 0 1:0:253 1 | f 120 1:0:253 1
a 97 88 1:0:253 1 | a 23806 400 6:0:248 6 | a 10123 24208 9:0:245 9 | a 173 34336 9:0:245 9
f 400 5:4:245 9 | a 74549 34512 23:4:227 27 | a 4088 400 24:3:227 27 | f 34512 6:21:227 27
a 35845 34512 15:12:227 27 | a 85640 70360 36:3:215 39 | a 4088 4488 37:2:215 39
f 34336 37:2:215 39 | a 86228 156000 58:2:194 60 | f 280 58:2:194 60 | a 8623 8576 60:0:194 60
f 24208 57:3:194 60 | f 4488 57:3:194 60 | f 156000 36:24:194 60 | a 10535 17200 38:22:194 60
a 187 192 38:22:194 60 | f 0 38:22:194 60 | f 192 38:22:194 60 | a 64 0 38:22:194 60
a 58 192 38:22:194 60 | a 10841 156000 40:20:194 60 | a 64 256 40:20:194 60
a 66304 166848 56:4:194 60 | a 140 4488 56:4:194 60 | a 8286 233152 58:2:194 60
a 10396 241440 61:1:192 62 | a 4096 27736 62:0:192 62 | f 88 62:0:192 62 | a 141 31832 62:0:192 62
f 256 62:0:192 62 | f 31832 62:0:192 62 | f 0 62:0:192 62 | f 4488 62:0:192 62
a 9506 251840 64:0:190 64 | a 4903 261352 66:0:188 66 | a 23 256 66:0:188 66
a 6182 266256 67:0:187 67 | f 27736 66:1:187 67 | f 266256 65:2:187 67 | f 400 64:3:187 67
a 68 0 64:3:187 67 | f 251840 63:4:187 67 | f 192 63:4:187 67 | f 8576 61:6:187 67
f 17200 58:9:187 67 | a 6824 251840 59:8:187 67 | a 121 72 59:8:187 67 | f 233152 58:9:187 67
f 256 58:9:187 67 | a 64 258664 58:9:187 67 | a 16 258728 58:9:187 67 | a 8 258744 58:9:187 67
f 0 58:9:187 67 | f 156000 57:10:187 67 | f 258728 57:10:187 67 | a 16 258728 57:10:187 67
a 10463 156000 58:9:187 67 | a 8 0 58:9:187 67 | f 258728 58:9:187 67 | a 8984 200 60:7:187 67
f 261352 58:9:187 67 | f 241440 55:12:187 67 | a 19 8 55:12:187 67 | f 72 55:12:187 67
a 24 32 55:12:187 67 | f 200 53:14:187 67 | a 55 166464 53:14:187 67 | a 16 258728 53:14:187 67
a 86699 258752 74:11:169 85 | f 251840 72:13:169 85 | f 258664 72:13:169 85
a 45443 345456 83:13:158 96 | a 71126 390904 100:13:141 113 | f 32 100:13:141 113
f 258752 80:33:141 113 | a 22371 233152 86:27:141 113 | f 0 86:27:141 113
a 16 166520 86:27:141 113 | f 258744 86:27:141 113 | f 70360 66:47:141 113
a 65069 70360 82:31:141 113 | a 10754 135432 84:29:141 113 | a 50754 258744 96:17:141 113
f 34512 87:26:141 113 | f 8 86:27:141 113 | f 70360 70:43:141 113 | f 390904 53:60:141 113
a 8031 146192 55:58:141 113 | f 156000 53:60:141 113 | f 258744 41:72:141 113
f 166464 41:72:141 113 | f 233152 35:78:141 113 | f 258728 34:79:141 113
a 157 166536 34:79:141 113 | a 30046 233152 42:71:141 113 | a 20 166696 42:71:141 113
a 75 166720 42:71:141 113 | a 80000 263200 61:52:141 113 | a 11 166800 61:52:141 113
a 171 343200 61:52:141 113 | f 233152 54:59:141 113 | f 166848 38:75:141 113
f 343200 38:75:141 113 | f 166520 38:75:141 113 | a 4604 154224 39:74:141 113
a 96 343200 39:74:141 113 | a 24 343296 39:74:141 113 | a 7152 158832 40:73:141 113
f 343296 40:73:141 113 | f 345456 28:85:141 113 | f 166720 28:85:141 113
a 100 165984 28:85:141 113 | f 146192 27:86:141 113 | f 154224 26:87:141 113
a 34596 166816 35:78:141 113 | f 166816 26:87:141 113 | a 24 166720 26:87:141 113
f 166720 26:87:141 113 | f 263200 7:106:141 113 | f 135432 4:109:141 113
a 192 166088 4:109:141 113 | f 165984 4:109:141 113 | a 58 166720 4:109:141 113
f 166800 4:109:141 113 | f 166696 4:109:141 113 | f 166720 4:109:141 113 | a 85 165984 4:109:141 113
f 165984 4:109:141 113 | a 16 165984 4:109:141 113 | f 343200 3:110:141 113 | f 166088 3:110:141 113
a 19 166000 3:110:141 113 | f 166536 3:110:141 113 | f 165984 3:110:141 113
a 40208 0 13:100:141 113 | f 166000 13:100:141 113 | f 158832 10:103:141 113 | f 0 0:113:141 113
a 61914 0 16:97:141 113 | f 0 0:113:141 113 | a 52 0 1:112:141 113 | f 0 0:113:141 113
a 11059 0 3:110:141 113 | a 5365 11064 5:108:141 113 | f 11064 3:110:141 113
a 170 11064 3:110:141 113
"""


def test_random_sequence_matches_oracle() -> None:
    # binder_alloc_new_buf_locked, binder_free_buf_locked, binder_delete_free_buffer,
    # binder_update_page_range: addresses, page states and the high watermark at every step
    alloc, _ = make()
    steps = [s.split() for s in ORACLE_SEQUENCE.replace("\n", " | ").split("|") if s.strip()]
    assert len(steps) == 160
    for step in steps:
        if step[0] == "a":
            size, addr = int(step[1]), int(step[2])
            b = alloc.new_buf(size, 0, 0, False, 2)
            b.allow_user_free = True
            assert b.user_data - BASE == addr, step
        else:
            addr = int(step[1])
            b2 = alloc.prepare_to_free(BASE + addr)
            assert b2 is not None, step
            alloc.free_buf(b2)
        assert (pages(alloc), alloc.pages_high) == (step[-2], int(step[-1])), step


def test_no_address_space() -> None:
    # binder_alloc_new_buf_locked: no best fit -> -ENOSPC and the two USER_ERROR lines
    alloc, log = make(size=2 * PAGE_SIZE)
    alloc.new_buf(4096, 0, 0, False, 2)
    with pytest.raises(BinderError) as e:
        alloc.new_buf(4097, 0, 0, False, 2)
    assert e.value.errno == errno.ENOSPC
    assert lines(log) == [
        "binder_alloc: 1: binder_alloc_buf size 4104 failed, no address space",
        "binder_alloc: allocated: 4096 (num: 1 largest: 4096), free: 4096 (num: 1 largest: 4096)",
    ]


def test_no_vma_before_mmap_and_after_close() -> None:
    # binder_alloc_new_buf_locked: "no vma" -> -ESRCH; binder_alloc_vma_close;
    # binder_alloc_print_pages prints 0:0:0 without a vma
    log = Log(clock=lambda: 0.0)
    alloc = Alloc(7, log)
    assert not alloc.mapped
    with pytest.raises(BinderError) as e:
        alloc.new_buf(8, 0, 0, False, 2)
    assert e.value.errno == errno.ESRCH
    assert lines(log) == ["binder_alloc: 7: binder_alloc_buf, no vma"]
    assert alloc.page_counts() == (0, 0, 0)

    alloc.mmap(BASE, VM_SIZE)
    b = alloc.new_buf(8, 0, 0, False, 2)
    alloc.vma_close()
    assert not alloc.mapped
    with pytest.raises(BinderError) as e:
        alloc.new_buf(8, 0, 0, False, 2)
    assert e.value.errno == errno.ESRCH
    assert alloc.page_counts() == (0, 0, 0)
    assert alloc.pages_high == 1
    # existing buffers stay until freed
    assert alloc.buffer_at(BASE) is b
    deliver(alloc, b)
    assert alloc.count_allocated() == 0


def test_log_masks() -> None:
    # binder_alloc_debug: each line only under its mask bit
    alloc, log = make(mask=0)
    alloc.vma_close()
    with pytest.raises(BinderError):
        alloc.new_buf(8, 0, 0, False, 2)
    assert lines(log) == []
    alloc, log = make(mask=int(AllocDebug.USER_ERROR))
    deliver(alloc, alloc.new_buf(20, 0, 0, True, 2))
    assert lines(log) == []


def test_buffer_alloc_log_lines() -> None:
    # binder_insert_free_buffer, binder_alloc_new_buf_locked, binder_update_page_range,
    # binder_free_buf_locked, binder_delete_free_buffer: BUFFER_ALLOC text
    alloc, log = make(mask=int(AllocDebug.BUFFER_ALLOC))
    b = alloc.new_buf(20, 0, 0, False, 2)
    deliver(alloc, b)
    assert lines(log) == [
        f"binder_alloc: 1: add free buffer, size 1040384, at {kobj(0x700000000000)}",
        f"binder_alloc: 1: binder_alloc_buf size 24 got buffer {kobj(0x700000000000)} size 1040384",
        f"binder_alloc: 1: allocate pages {user(0x700000000000)}-{user(0x700000001000)}",
        f"binder_alloc: 1: add free buffer, size 1040360, at {kobj(0x700000000018)}",
        f"binder_alloc: 1: binder_alloc_buf size 24 got {kobj(0x700000000000)}",
        f"binder_alloc: 1: binder_free_buf {kobj(0x700000000000)} size 24 buffer_size 24",
        f"binder_alloc: 1: free pages {user(0x700000000000)}-{user(0x700000000000)}",
        f"binder_alloc: 1: merge free, buffer {user(0x700000000018)} do not share page with "
        f"{user(0x700000000000)} or 0000000000000000",
        f"binder_alloc: 1: free pages {user(0x700000000000)}-{user(0x700000001000)}",
        f"binder_alloc: 1: add free buffer, size 1040384, at {kobj(0x700000000000)}",
    ]


def test_merge_free_keeps_shared_pages() -> None:
    # binder_free_buf_locked, binder_delete_free_buffer: a page shared with an allocated
    # neighbour stays active; it goes to the lru with the last buffer that uses it
    alloc, log = make(mask=int(AllocDebug.BUFFER_ALLOC))
    a = alloc.new_buf(5000, 0, 0, False, 2)  # [0, 5000): pages 0, 1
    b = alloc.new_buf(16, 0, 0, False, 2)  # [5000, 5016): page 1
    c = alloc.new_buf(16, 0, 0, False, 2)  # [5016, 5032): page 1
    assert pages(alloc) == "2:0:252"
    deliver(alloc, b)
    assert pages(alloc) == "2:0:252"
    log.ring.clear()
    deliver(alloc, c)  # merges with the free rest of the area, then into b
    assert lines(log) == [
        f"binder_alloc: 1: binder_free_buf {kobj(0x700000001398)} size 16 buffer_size 16",
        f"binder_alloc: 1: free pages {user(0x700000002000)}-{user(0x700000001000)}",
        f"binder_alloc: 1: merge free, buffer {user(0x7000000013a8)} share page with {user(0x700000001398)}",
        f"binder_alloc: 1: merge free, buffer {user(0x700000001398)} share page with {user(0x700000001388)}",
        f"binder_alloc: 1: add free buffer, size 1035384, at {kobj(0x700000001388)}",
    ]
    assert pages(alloc) == "2:0:252"
    log.ring.clear()
    deliver(alloc, a)
    assert lines(log) == [
        f"binder_alloc: 1: binder_free_buf {kobj(0x700000000000)} size 5000 buffer_size 5000",
        f"binder_alloc: 1: free pages {user(0x700000000000)}-{user(0x700000001000)}",
        f"binder_alloc: 1: merge free, buffer {user(0x700000001388)} do not share page with "
        f"{user(0x700000000000)} or 0000000000000000",
        f"binder_alloc: 1: free pages {user(0x700000001000)}-{user(0x700000002000)}",
        f"binder_alloc: 1: add free buffer, size 1040384, at {kobj(0x700000000000)}",
    ]
    assert pages(alloc) == "0:2:252"


def test_page_aligned_buffer_start_is_not_freed_by_merge() -> None:
    # binder_delete_free_buffer: "buffer start ... is page aligned"
    alloc, log = make(mask=int(AllocDebug.BUFFER_ALLOC))
    a = alloc.new_buf(4096, 0, 0, False, 2)  # page 0
    b = alloc.new_buf(8, 0, 0, False, 2)  # [4096, 4104): page 1
    alloc.new_buf(8, 0, 0, False, 2)  # [4104, 4112): page 1
    deliver(alloc, a)
    assert pages(alloc) == "1:1:252"
    log.ring.clear()
    deliver(alloc, b)  # merged into a; page 1 is still used by the third buffer
    assert f"binder_alloc: 1: merge free, buffer start {user(0x700000001000)} is page aligned" in lines(log)
    assert pages(alloc) == "1:1:252"


# ---- async space and oneway spam -------------------------------------------------------------


def test_async_space_and_oneway_spam_match_oracle() -> None:
    # binder_alloc_new_buf_locked (free_async_space, -ENOSPC), debug_low_async_space_locked,
    # binder_free_buf_locked (async space given back). Oracle: 8000-byte oneway transactions
    # into a 1040384-byte area; BR_ONEWAY_SPAM_SUSPECT came for the 53rd; the 66th failed.
    alloc, log = make(mask=ALL)
    live = []
    suspects = []
    for i in range(1, 66):
        b = alloc.new_buf(8000, 0, 0, True, 99)
        assert b.async_transaction
        live.append(b)
        if b.oneway_spam_suspect:
            suspects.append(i)
        if i == 53:
            assert (alloc.free_async_space, pages(alloc)) == (96192, "104:0:150")
            assert alloc.oneway_spam_detected
    assert suspects == [53]
    assert (alloc.free_async_space, pages(alloc)) == (192, "127:0:127")
    log.ring.clear()
    with pytest.raises(BinderError) as e:
        alloc.new_buf(8000, 0, 0, True, 99)
    assert e.value.errno == errno.ENOSPC
    assert lines(log) == ["binder_alloc: 1: binder_alloc_buf size 8000 failed, no async space left"]
    log.ring.clear()
    deliver(alloc, live.pop(0))
    assert (alloc.free_async_space, pages(alloc)) == (8192, "126:1:127")
    assert lines(log)[1] == "binder_alloc: 1: binder_free_buf size 8000 async free 8192"
    for b in live:
        deliver(alloc, b)
    assert (alloc.free_async_space, pages(alloc)) == (520192, "0:127:127")
    assert alloc.count_allocated() == 0
    # detection re-arms once the space is healthy again: the 53rd is a suspect again
    suspects = [i for i in range(1, 56) if alloc.new_buf(8000, 0, 0, True, 99).oneway_spam_suspect]
    assert suspects == [53]
    assert (alloc.free_async_space, pages(alloc)) == (80192, "108:19:127")


def test_oneway_spam_by_total_size_matches_oracle() -> None:
    # debug_low_async_space_locked: more than buffer_size / 4 bytes by one pid (oracle: 20000-byte
    # oneway transactions, the 21st is the suspect)
    alloc, log = make()
    suspects = [i for i in range(1, 27) if alloc.new_buf(20000, 0, 0, True, 99).oneway_spam_suspect]
    assert suspects == [21]
    assert (alloc.free_async_space, pages(alloc)) == (192, "127:0:127")
    assert lines(log)[0] == ("binder_alloc: 1: pid 99 spamming oneway? 21 buffers allocated for a total "
                             "size of 420000")
    assert len(lines(log)) == 6  # every async allocation below the threshold logs


def test_oneway_spam_counts_the_calling_pid_only() -> None:
    # debug_low_async_space_locked: only the caller's async buffers count
    alloc, log = make()
    for _ in range(41):
        alloc.new_buf(10000, 0, 0, True, 5)  # 410000 bytes in 41 buffers: 110192 left
    for _ in range(3):
        alloc.new_buf(10000, 0, 0, False, 5)  # synchronous: not counted
    b = alloc.new_buf(8000, 0, 0, True, 6)  # now below buffer_size / 10, but pid 6 has little
    assert alloc.free_async_space == 102192 < alloc.buffer_size // 10
    assert not b.oneway_spam_suspect and not alloc.oneway_spam_detected
    assert lines(log) == []
    b = alloc.new_buf(8, 0, 0, True, 5)
    assert b.oneway_spam_suspect
    assert lines(log) == ["binder_alloc: 1: pid 5 spamming oneway? 42 buffers allocated for a total "
                          "size of 410008"]
    b = alloc.new_buf(8, 0, 0, True, 5)  # logged again, but flagged only once
    assert not b.oneway_spam_suspect
    assert len(lines(log)) == 2


# ---- freeing ---------------------------------------------------------------------------------


def test_prepare_to_free() -> None:
    # binder_alloc_prepare_to_free_locked: NULL for no buffer there, -EPERM when not freeable
    alloc, _ = make()
    b = alloc.new_buf(20, 0, 0, False, 2)
    assert alloc.prepare_to_free(BASE + 8) is None  # not a buffer's start
    assert alloc.prepare_to_free(0) is None
    with pytest.raises(BinderError) as e:  # not delivered yet: the kernel still owns it
        alloc.prepare_to_free(BASE)
    assert e.value.errno == errno.EPERM
    b.allow_user_free = True
    assert alloc.prepare_to_free(BASE) is b
    assert not b.allow_user_free
    with pytest.raises(BinderError) as e:  # a second BC_FREE_BUFFER while it is being freed
        alloc.prepare_to_free(BASE)
    assert e.value.errno == errno.EPERM
    alloc.free_buf(b)
    assert b.free
    assert alloc.prepare_to_free(BASE) is None  # double free after the free: nothing there
    assert alloc.buffer_at(BASE) is None


def test_free_buf_clear_on_free() -> None:
    # binder_alloc_free_buf, binder_alloc_clear_buf
    alloc, _ = make()
    b = alloc.new_buf(16, 0, 0, False, 2)
    alloc.copy_to_buffer(b, 0, b"secret-bytes-123")
    data = b.data
    b.clear_on_free = True
    alloc.free_buf(b)
    assert data == bytearray(16)
    assert not b.clear_on_free


def _transaction() -> Transaction:
    """A transaction the buffer belongs to (what the allocator checks is only that it has one)."""
    return Transaction(make_driver(), 1)


def test_free_buf_bugs() -> None:
    # binder_free_buf_locked: BUG_ON(buffer->free), BUG_ON(buffer->transaction)
    alloc, _ = make()
    b = alloc.new_buf(16, 0, 0, False, 2)
    b.transaction = _transaction()
    with pytest.raises(AssertionError):
        alloc.free_buf(b)
    b.transaction = None
    alloc.free_buf(b)
    with pytest.raises(AssertionError):
        alloc.free_buf(b)


def test_deferred_release() -> None:
    # binder_alloc_deferred_release: frees every buffer, counts installed pages, logs them
    alloc, log = make(mask=int(AllocDebug.OPEN_CLOSE | AllocDebug.BUFFER_ALLOC))
    a = alloc.new_buf(20, 0, 0, False, 2)
    alloc.new_buf(5000, 0, 0, True, 2)
    alloc.new_buf(16, 0, 0, False, 3)
    deliver(alloc, a)
    alloc.vma_close()
    log.ring.clear()
    assert alloc.deferred_release() == (2, 2)
    out = lines(log)
    assert out[-3:] == [
        f"binder_alloc: binder_alloc_deferred_release: 1: page 0 at {user(0x700000000000)} on lru",
        f"binder_alloc: binder_alloc_deferred_release: 1: page 1 at {user(0x700000001000)} on lru",
        "binder_alloc: binder_alloc_deferred_release: 1 buffers 2, pages 2",
    ]
    assert alloc.count_allocated() == 0
    assert alloc.allocated_buffers() == []
    assert alloc.page_counts() == (0, 0, 0)
    assert alloc.pages_high == 2
    assert alloc.free_async_space == 520192


def test_deferred_release_open_close_line() -> None:
    # binder_alloc_deferred_release: the OPEN_CLOSE line, also for a process that never mapped
    alloc, log = make(mask=int(AllocDebug.OPEN_CLOSE))
    alloc.new_buf(20, 0, 0, False, 2)
    alloc.vma_close()
    assert alloc.deferred_release() == (1, 1)
    assert lines(log) == ["binder_alloc: binder_alloc_deferred_release: 1 buffers 1, pages 1"]
    fresh = Alloc(4, Log(alloc_debug_mask=int(AllocDebug.OPEN_CLOSE), clock=lambda: 0.0))
    assert fresh.deferred_release() == (0, 0)
    assert lines(fresh.log) == ["binder_alloc: binder_alloc_deferred_release: 4 buffers 0, pages 0"]


# ---- copies ----------------------------------------------------------------------------------


def test_copy_to_and_from_buffer() -> None:
    # binder_alloc_copy_to_buffer, binder_alloc_copy_from_buffer, check_buffer
    alloc, _ = make()
    b = alloc.new_buf(10, 8, 0, False, 2)  # 24 bytes
    alloc.copy_to_buffer(b, 0, b"0123456789")
    alloc.copy_to_buffer(b, 16, (42).to_bytes(8, "little"))
    assert alloc.copy_from_buffer(b, 0, 10) == b"0123456789"
    assert alloc.copy_from_buffer(b, 16, 8) == (42).to_bytes(8, "little")
    assert alloc.copy_from_buffer(b, 24, 0) == b""
    for offset, n in ((2, 4), (20, 8), (24, 1), (0, 25)):  # unaligned, out of bounds
        with pytest.raises(BinderError) as e:
            alloc.copy_from_buffer(b, offset, n)
        assert e.value.errno == errno.EINVAL
    with pytest.raises(BinderError):
        alloc.copy_to_buffer(b, 21, b"x")
    # delivered and in a transaction: the kernel may not touch it
    b.allow_user_free = True
    b.transaction = _transaction()
    with pytest.raises(BinderError):
        alloc.copy_from_buffer(b, 0, 4)
    b.transaction = None  # torn down: allowed again
    assert alloc.copy_from_buffer(b, 0, 4) == b"0123"
    alloc.free_buf(b)
    with pytest.raises(BinderError):
        alloc.copy_from_buffer(b, 0, 4)


# ---- structure -------------------------------------------------------------------------------


def _check_invariants(alloc: Alloc, live_async: int) -> None:
    """Buffers tile the area, no two free neighbours, the free tree is a valid rbtree of them."""
    addr = alloc.vm_start
    prev_free = False
    free_set = set()
    buffers = list(alloc._buffers())
    for b in buffers:
        assert b.user_data == addr
        assert not (prev_free and b.free)
        prev_free = b.free
        size = alloc._buffer_size(b)
        assert size > 0
        if b.free:
            free_set.add(id(b))
        else:
            assert alloc.buffer_at(b.user_data) is b
            assert len(b.data) == size
        addr += size
    assert addr == alloc.vm_start + alloc.buffer_size
    assert alloc.count_allocated() == len(buffers) - len(free_set)
    assert alloc.free_async_space == alloc.buffer_size // 2 - live_async

    def walk(n: Buffer | None, parent: Buffer | None) -> tuple[int, list[int]]:
        if n is None:
            return 1, []
        assert n._rb_parent is parent
        if not n._rb_black:
            assert n._rb_left is None or n._rb_left._rb_black
            assert n._rb_right is None or n._rb_right._rb_black
        hl, sl = walk(n._rb_left, n)
        hr, sr = walk(n._rb_right, n)
        assert hl == hr
        return hl + n._rb_black, [*sl, id(n), *sr]

    root = alloc._free.rb_node
    assert root is not None and root._rb_black
    _h, order = walk(root, None)
    assert set(order) == free_set and len(order) == len(free_set)
    by_id = {id(b): b for b in buffers}
    sizes = [alloc._buffer_size(by_id[i]) for i in order]
    assert sizes == sorted(sizes)


def test_random_operations_keep_invariants() -> None:
    # binder_insert_free_buffer / rb_erase keep a valid red-black tree ordered by size
    rnd = random.Random(1234)
    alloc, _ = make()
    live: list[Buffer] = []
    live_async = 0
    for _ in range(1500):
        if live and rnd.random() < 0.45:
            b = live.pop(rnd.randrange(len(live)))
            if b.async_transaction:
                live_async -= len(b.data)
            deliver(alloc, b)
        else:
            size = rnd.choice([rnd.randrange(0, 100), rnd.randrange(0, 9000), 64, 4096])
            is_async = rnd.random() < 0.3
            try:
                b = alloc.new_buf(size, rnd.choice([0, 8, 16]), 0, is_async, 2)
            except BinderError as e:
                assert e.errno == errno.ENOSPC
                continue
            live.append(b)
            if is_async:
                live_async += len(b.data)
        _check_invariants(alloc, live_async)
    active, lru, free = alloc.page_counts()
    assert active + lru + free == VM_SIZE // PAGE_SIZE
    assert active + lru <= alloc.pages_high
