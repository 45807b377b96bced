"""Compile vbinder's per-call hot path with mypyc into build/native/ (see vbinder/native.py).

    python scripts/build_native.py [--check] [--force]

Compiles the driver core, the frame codec and the client library's per-call modules (one mypyc
group, so calls between them are native), then writes a manifest of the sources' hashes. Nothing
happens when the manifest already matches (``--force`` rebuilds); ``--check`` only says, by its
exit status, whether a build is needed. A failed build leaves no build behind: vbinder then
runs in pure Python, as it would without this step.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from vbinder import native  # noqa: E402

# (source in the repository, module path it is imported as)
PACKAGES = {"vbinder": "vbinder", "vbinder/driver": "vbinder/driver", "client": "vbinder_client"}
COMPILED = [
    "vbinder/abi.py",
    "vbinder/fdabi.py",
    "vbinder/uapi.py",
    *sorted(str(p.relative_to(REPO)) for p in (REPO / "vbinder" / "driver").glob("*.py") if p.name != "__init__.py"),
    # the client's per-call path; its classes that users subclass (binder.py, service.py) stay pure
    "client/parcel.py",
    "client/signals.py",
    "client/transport.py",
    "client/ipc_thread_state.py",
]
CONTEXT = [  # type-checked, not compiled: the client, and what it imports of vbinder beside the compiled modules
    *sorted(str(p.relative_to(REPO)) for p in (REPO / "client").rglob("*.py")),
    "vbinder/explain.py",
    "vbinder/malloc.py",
]


def module_path(rel: str) -> str:
    """Where a source file sits in the import namespace (client/aidl/x.py -> vbinder_client/aidl/x.py)."""
    folder, name = rel.rsplit("/", 1)
    source = max((s for s in PACKAGES if folder == s or folder.startswith(s + "/")), key=len)
    return f"{PACKAGES[source]}{folder[len(source):]}/{name}"


def manifest() -> dict[str, object]:
    return {
        "interpreter": native.interpreter_tag(),
        "sources": {rel: native.source_hash(REPO / rel) for rel in sorted({*COMPILED, *CONTEXT, "vbinder/native.py"})},
    }


def current() -> bool:
    try:
        return json.loads((native.BUILD_DIR / native.MANIFEST).read_text()) == manifest()
    except (OSError, ValueError):
        return False


def build() -> None:
    from mypyc.build import mypycify  # imported late: only a build needs mypy
    from setuptools import setup

    want = manifest()
    work = Path(tempfile.mkdtemp(prefix="vbinder-native-"))
    try:
        src = work / "src"
        for folder, target in PACKAGES.items():  # the packages, so that mypy names modules right
            (src / target).mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / folder / "__init__.py", src / target / "__init__.py")
        for rel in ["vbinder/native.py", *CONTEXT]:
            (src / module_path(rel)).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / rel, src / module_path(rel))
        paths = []
        for rel in COMPILED:
            shutil.copy2(REPO / rel, src / module_path(rel))
            paths.append(module_path(rel))
        out = work / "out"
        log = work / "build.log"
        cwd = os.getcwd()
        saved = os.dup(1), os.dup(2)
        os.chdir(src)
        try:  # mypy's and the compiler's chatter goes to the log, shown only when the build fails
            with open(log, "wb") as f:
                os.dup2(f.fileno(), 1)
                os.dup2(f.fileno(), 2)
                setup(name="vbinder-native", ext_modules=mypycify(paths, separate=[(paths, native.GROUP)]),
                      script_args=["build_ext", "--build-lib", str(out), "--build-temp", str(work / "tmp")])
        except BaseException:
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            sys.stderr.write(log.read_text(errors="replace")[-4000:])
            raise
        finally:
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.chdir(cwd)
        (out / native.MANIFEST).write_text(json.dumps(want, indent=1, sort_keys=True) + "\n")
        final = native.BUILD_DIR
        if final.exists():
            shutil.rmtree(final)
        final.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(out), final)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if a build is needed, 0 if not")
    parser.add_argument("--force", action="store_true", help="rebuild even when current")
    args = parser.parse_args()
    if args.check:
        return 0 if current() else 1
    if current() and not args.force:
        return 0
    if native.BUILD_DIR.exists():  # stale: never leave it half-replaced
        shutil.rmtree(native.BUILD_DIR)
    t0 = time.monotonic()
    try:
        build()
    except (Exception, SystemExit) as e:  # setuptools reports compiler failures as SystemExit
        print(f"build_native: failed ({e}); vbinder runs in pure Python", file=sys.stderr)
        return 1
    print(f"build_native: compiled {len(COMPILED)} modules in {time.monotonic() - t0:.0f} s "
          f"into {native.BUILD_DIR.relative_to(REPO) if native.BUILD_DIR.is_relative_to(REPO) else native.BUILD_DIR}",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
