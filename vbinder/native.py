"""The compiled hot path: mypyc builds of the per-call modules, used only while they match.

``scripts/build_native.py`` (run by ``make``'s bootstrap) compiles the driver core, the frame
codec and the client library's per-call modules with mypyc into ``build/native/``, with a
manifest of the sources' hashes. A package that has compiled modules puts that directory first
on its ``__path__`` (:func:`package_path`) when the manifest matches the sources on disk and
this interpreter; otherwise, or with ``VBINDER_PURE=1``, everything stays pure Python, which
behaves the same, only slower. So an edited source is never shadowed by a stale build.

Standard library only, never compiled itself: clients import it.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BUILD_DIR = Path(os.environ.get("VBINDER_NATIVE_DIR") or REPO / "build" / "native")
MANIFEST = "manifest.json"
GROUP = "vbinder.native"  # the shared library: vbinder/native__mypyc.*.so

_verdict: bool | None = None


def source_hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def interpreter_tag() -> str:
    return f"{sys.implementation.cache_tag}-{sys.platform}"


def active() -> bool:
    """Whether the compiled modules are in use (built, current, not refused by VBINDER_PURE)."""
    global _verdict
    if _verdict is None:
        _verdict = _check()
    return _verdict


def _check() -> bool:
    if os.environ.get("VBINDER_PURE", "") not in ("", "0"):
        return False
    try:
        manifest = json.loads((BUILD_DIR / MANIFEST).read_text())
        if manifest.get("interpreter") != interpreter_tag():
            return False
        sources: dict[str, str] = manifest["sources"]
        return bool(sources) and all(source_hash(REPO / rel) == digest for rel, digest in sources.items())
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return False


def package_path(path: list[str], package: str) -> list[str]:
    """A package's ``__path__`` with its compiled modules' directory first, when they are current."""
    if not active():
        return path
    compiled = BUILD_DIR.joinpath(*package.split("."))
    if not compiled.is_dir():
        return path
    return [str(compiled), *path]
