"""``vbinder run [--mount M] [--] PROGRAM [ARGS...]``: an unmodified binder program on a mount.

PROGRAM runs with the preload library (``vbinder.preload``) in ``LD_PRELOAD`` and the mount in
``VBINDER_MOUNT``, so that it and every process it starts see the mount's device files as the
kernel's ``/dev/binder``. A program the library cannot reach is refused with the reason: a
statically linked one (no dynamic loader runs, so nothing is preloaded), a 32-bit one (the
library is 64-bit, and so is the binder protocol it speaks), a set-user-ID one (the loader
ignores LD_PRELOAD there).
"""

from __future__ import annotations

import argparse
import os
import shutil
import stat
import struct
import sys

from . import inspect
from .fs import mounts
from .fs.mounts import MountError
from .preload import PreloadError, library

PT_INTERP = 3
SERVED = ("dynamically linked 64-bit programs that call libc's open, ioctl and mmap: C and C++ "
          "(libbinder, libgbinder), Rust through libc, Python's fcntl.ioctl and mmap")


def elf_problem(path: str) -> str | None:
    """Why the preload library cannot reach the program at ``path`` (None: it can, or not ELF)."""
    try:
        st = os.stat(path)
        with open(path, "rb") as f:
            head = f.read(64)
            if head[:4] != b"\x7fELF":
                return None  # a script: its interpreter is what runs
            if head[4] != 2:
                return "is a 32-bit program: the preload library and the binder protocol it speaks are 64-bit"
            if head[5] != 1:
                return "is a big-endian program"
            phoff, = struct.unpack_from("<Q", head, 32)
            phentsize, phnum = struct.unpack_from("<HH", head, 54)
            f.seek(phoff)
            table = f.read(phentsize * phnum)
    except OSError as e:
        return f"cannot be read: {e.strerror}"
    except struct.error:
        return "is not a valid ELF file"
    types = [struct.unpack_from("<I", table, i * phentsize)[0] for i in range(len(table) // max(phentsize, 1))]
    if PT_INTERP not in types:
        return ("is statically linked: no dynamic loader runs for it, so no preload library can reach it "
                "(nor a program that makes its own system calls, as Go's do)")
    if st.st_mode & (stat.S_ISUID | stat.S_ISGID) and os.geteuid() != 0:
        return "is set-user-ID or set-group-ID: the dynamic loader ignores LD_PRELOAD for it"
    return None


def main(args: argparse.Namespace) -> int:
    if args.print_library:
        try:
            print(library())
        except PreloadError as e:
            print(f"vbinder run: {e}", file=sys.stderr)
            return 1
        return 0
    argv = list(args.program)
    if argv and argv[0] == "--":
        argv = argv[1:]
    if not argv:
        print("vbinder run: no PROGRAM to run (vbinder run [--mount M] [--] PROGRAM [ARGS...])", file=sys.stderr)
        return 2
    program = argv[0] if "/" in argv[0] else shutil.which(argv[0])
    if program is None:
        print(f"vbinder run: {argv[0]}: command not found", file=sys.stderr)
        return 127
    problem = elf_problem(program)
    if problem:
        print(f"vbinder run: {program} {problem}.\nvbinder run serves {SERVED}.", file=sys.stderr)
        return 1
    try:
        mount = os.path.abspath(inspect.find_mount(args.mount or os.environ.get("VBINDER_MOUNT")))
    except MountError as e:
        print(f"vbinder run: {e}", file=sys.stderr)
        return 1
    found = mounts.find_mount(mount)
    if found is None or not mounts.is_vbinder(found):
        print(f"vbinder run: {mount} is not a vbinder mount (see /proc/mounts; `vbinder mount {mount}` makes one)",
              file=sys.stderr)
        return 1
    mount = mounts.canonical(mount)
    try:
        lib = str(library())
    except PreloadError as e:
        print(f"vbinder run: {e}", file=sys.stderr)
        return 1
    env = dict(os.environ)
    preload = [p for p in env.get("LD_PRELOAD", "").replace(":", " ").split() if p and p != lib]
    env["LD_PRELOAD"] = " ".join([lib, *preload])
    env["VBINDER_MOUNT"] = mount
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execve(program, argv, env)
    except OSError as e:
        print(f"vbinder run: {program}: {e.strerror}", file=sys.stderr)
        return 126
    return 0  # not reached
