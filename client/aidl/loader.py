"""Compile AIDL files to Python: into files (``vbinder aidl``) or into modules at run time
(:func:`load`), both from the same generated source."""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import itertools
import os
import sys
import threading
import types
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from .codegen import Options, generate, module_name
from .compiler import Compiler
from .model import AidlError, Document, Parcelable

_ROOT = "vbinder_client.aidl.loaded"


def compile_to(paths: Sequence[str], outdir: str, include: Iterable[str] = (), options: Options | None = None,
               ) -> list[str]:
    """``vbinder aidl``: write the module of each file in ``paths`` under ``outdir`` (a package
    per AIDL package, a module per type); returns the files written. ``outdir`` is the Python
    package ``options.prefix`` names (the top level when there is none)."""
    options = options or Options()
    compiler = Compiler(include)
    written = []
    for doc in compiler.compile(paths):
        source = generate(doc, options)
        if source is None:  # a declared parcelable: the user's own class
            continue
        parts = module_name(doc.decls[0], Options()).split(".")
        target = os.path.join(outdir, *parts) + ".py"
        os.makedirs(os.path.dirname(target), exist_ok=True)
        for depth in range(1, len(parts)):  # regular packages, so that type checkers find them
            init = os.path.join(outdir, *parts[:depth], "__init__.py")
            if not os.path.exists(init):
                with open(init, "w"):
                    pass
        with open(target, "w", encoding="utf-8") as f:
            f.write(source)
        written.append(target)
    return written


class _Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Serves the modules :func:`load` generated, under ``vbinder_client.aidl.loaded.nN``."""

    def __init__(self) -> None:
        self.sources: dict[str, str] = {}  # module -> generated source
        self.origins: dict[str, str] = {}  # module -> the AIDL file
        self.classes: dict[str, type] = {}  # module -> a user's class (declared parcelables)

    def find_spec(self, fullname: str, path: object = None,
                  target: object = None) -> importlib.machinery.ModuleSpec | None:
        if fullname != _ROOT and not fullname.startswith(_ROOT + "."):
            return None
        known = fullname in self.sources or fullname in self.classes
        package = any(m.startswith(fullname + ".") for m in itertools.chain(self.sources, self.classes))
        if not known and not package:
            return None
        spec = importlib.machinery.ModuleSpec(fullname, self, origin=self.origins.get(fullname), is_package=not known)
        return spec

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType | None:
        return None

    def exec_module(self, module: types.ModuleType) -> None:
        name = module.__name__
        if name in self.classes:
            cls = self.classes[name]
            setattr(module, name.rsplit(".", 1)[-1], cls)
        elif name in self.sources:
            module.__file__ = self.origins[name]
            exec(compile(self.sources[name], self.origins[name] + ".py", "exec"), module.__dict__)  # noqa: S102


_finder = _Finder()
_lock = threading.Lock()
_namespaces: list[dict[str, str]] = []  # per namespace: qualified AIDL name -> the file's identity
_cache: dict[tuple[object, ...], Any] = {}


def _identity(doc: Document) -> str:
    st = os.stat(doc.path)
    return f"{os.path.realpath(doc.path)}:{st.st_mtime_ns}:{st.st_size}"


def load(path: str, include: Iterable[str] = (), *, parcelables: Mapping[str, type] | None = None,
         version: int | None = None, hash: str | None = None) -> Any:
    """The class that ``path`` (an AIDL file) declares, compiled now: the same code
    ``vbinder aidl`` writes. Its imports are found in ``include`` (and in the root its package
    implies). A declared parcelable (``parcelable Foo;``) is the class ``parcelables`` gives for
    its qualified name, else the Python module of that name's class.

    Loading the same file again returns the same class; types shared by several loads are
    shared while their files are unchanged.
    """
    include = list(include)
    key = (os.path.realpath(path), tuple(include), version, hash, tuple(sorted((parcelables or {}).items())))
    with _lock:
        if key in _cache:
            return _cache[key]
        compiler = Compiler(include)
        (doc,) = compiler.compile([path])
        docs = list(compiler.documents.values())
        ids = {d.decls[0].qualified_name: _identity(d) for d in docs}
        # a namespace that agrees on every type already in it, else a new one
        n = next((k for k, space in enumerate(_namespaces) if all(space.get(q, i) == i for q, i in ids.items())),
                 len(_namespaces))
        if n == len(_namespaces):
            _namespaces.append({})
        space = _namespaces[n]
        options = Options(prefix=f"{_ROOT}.n{n}", version=version, hash=hash)
        for d in docs:
            qualified = d.decls[0].qualified_name
            if qualified in space:
                continue
            mod = module_name(d.decls[0], options)
            top = d.decls[0]
            if isinstance(top, Parcelable) and not top.structured:
                _finder.classes[mod] = _user_class(qualified, parcelables or {}, top)
            else:
                source = generate(d, options)
                assert source is not None
                _finder.sources[mod] = source
                _finder.origins[mod] = d.path
            space[qualified] = ids[qualified]
        if _finder not in sys.meta_path:
            sys.meta_path.append(_finder)
        module = importlib.import_module(module_name(doc.decls[0], options))
        result = getattr(module, doc.decls[0].name)
        _cache[key] = result
        return result


def _user_class(qualified: str, given: Mapping[str, type], decl: Parcelable) -> type:
    if qualified in given:
        return given[qualified]
    try:
        module = importlib.import_module(qualified)
        return getattr(module, qualified.rsplit(".", 1)[-1])  # type: ignore[no-any-return]
    except (ImportError, AttributeError):
        raise AidlError(decl.loc, f"parcelable {qualified} is declared, not defined, in AIDL: give its Python "
                                  f"class (load(..., parcelables={{{qualified!r}: cls}}))") from None
