"""The preload library: unmodified binder programs on a vbinder mount (``vbinder run``).

Its C sources live beside this file (docs/preload.md describes them). :func:`build` compiles
them with gcc (libc and libdl only) into :data:`BUILD_DIR` with a stamp of the sources' hash;
``make``'s bootstrap runs it (``python -m vbinder.preload``), so that ``vbinder run`` needs no
compiler where a build exists. :func:`library` is the path of a current build: the checkout's,
else one in the user's cache, built there when the checkout's is missing or stale and gcc is at
hand. Standard library only.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
LIB_NAME = "libvbinder-preload.so"
STAMP = LIB_NAME + ".sha256"
BUILD_DIR = Path(os.environ.get("VBINDER_PRELOAD_DIR") or REPO / "build" / "preload")
CACHE_DIR = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "vbinder" / "preload"
CFLAGS = ["-shared", "-fPIC", "-O2", "-g", "-std=gnu11", "-Wall", "-Wextra", "-Werror",
          "-fvisibility=hidden", "-fno-strict-aliasing"]
LIBS = ["-ldl", "-lpthread"]


class PreloadError(Exception):
    """No usable build of the library, and none can be made here."""


def sources() -> list[Path]:
    return sorted(HERE.glob("*.c")) + sorted(HERE.glob("*.h"))


def sources_hash() -> str:
    h = hashlib.sha256()
    for path in sources():
        h.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    h.update(" ".join(CFLAGS + LIBS).encode())
    return h.hexdigest()


def current(directory: Path) -> bool:
    """A build in ``directory`` made from these sources."""
    try:
        return (directory / LIB_NAME).is_file() and (directory / STAMP).read_text().strip() == sources_hash()
    except OSError:
        return False


def build(directory: Path = BUILD_DIR) -> Path:
    """Compile the library into ``directory`` (atomically: a half-written file is never used)."""
    cc = os.environ.get("CC") or shutil.which("gcc") or shutil.which("cc")
    if not cc:
        raise PreloadError("no C compiler (gcc) to build the preload library: apt-get install gcc")
    directory.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".build-", suffix=".so", dir=directory)
    os.close(fd)
    cmd = [cc, *CFLAGS, "-o", tmp, *[str(p) for p in sources() if p.suffix == ".c"], *LIBS]
    r = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if r.returncode != 0:
        os.unlink(tmp)
        raise PreloadError(f"building the preload library failed:\n{' '.join(cmd)}\n{r.stderr}")
    os.chmod(tmp, 0o755)
    os.replace(tmp, directory / LIB_NAME)
    (directory / STAMP).write_text(sources_hash() + "\n")
    return directory / LIB_NAME


def library() -> Path:
    """The path of a current build (made now if needed and possible)."""
    for directory in (BUILD_DIR, CACHE_DIR):
        if current(directory):
            return directory / LIB_NAME
    errors = []
    for directory in (BUILD_DIR, CACHE_DIR):
        try:
            return build(directory)
        except (OSError, PreloadError) as e:
            errors.append(str(e))
    raise PreloadError("no build of the preload library, and it cannot be built here:\n" + "\n".join(errors))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m vbinder.preload", description="Build the preload library.")
    ap.add_argument("--check", action="store_true", help="exit 0 if the build is current, 1 if not")
    args = ap.parse_args(argv)
    if args.check:
        return 0 if current(BUILD_DIR) else 1
    try:
        print(build(BUILD_DIR))
    except PreloadError as e:
        print(f"vbinder.preload: {e}", file=sys.stderr)
        return 1
    return 0
