"""Load AIDL files with their imports, resolve every type, check them as Android 14's aidl does,
and evaluate constants.

Imports are found as aidl finds them: ``import p.q.Foo;`` is ``DIR/p/q/Foo.aidl`` in one of the
include directories (``-I``), and the root a file's own package implies is searched too. A type
of the same package needs no import. Errors carry their place (``file:line:col: message``); the
messages are aidl's where aidl has one for the same mistake.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence

from . import parser
from .model import (
    BUILTINS,
    MAX_USER_METHOD_ID,
    PRIMITIVES,
    AidlError,
    AidlErrors,
    Annotation,
    Arg,
    ArrayExpr,
    Binary,
    Constant,
    Decl,
    Document,
    Enum,
    Expr,
    Field,
    Interface,
    Literal,
    Location,
    Method,
    Parcelable,
    Ref,
    TypeRef,
    Unary,
    UnionDecl,
)

# The annotations Android 14's aidl knows (AidlAnnotation::AllSchemas). Those that change what
# goes on the wire are honoured (nullable, utf8InCpp, Backing, Descriptor, VintfStability); the
# others only concern other backends and are accepted.
KNOWN_ANNOTATIONS = frozenset({
    "nullable", "utf8InCpp", "Backing", "Descriptor", "VintfStability", "UnsupportedAppUsage", "Hide",
    "SystemApi", "JavaOnlyStableParcelable", "NdkOnlyStableParcelable", "JavaPassthrough", "JavaDerive",
    "JavaDefault", "JavaDelegator", "JavaOnlyImmutable", "JavaSuppressLint", "FixedSize", "RustDerive",
    "SuppressWarnings", "SensitiveData", "PermissionManuallyEnforced", "EnforcePermission",
    "RequiresNoPermission", "PropagateAllowBlocking", "Enforce", "CppOnlyStableParcelable",
})

_INT_RANGES = {"byte": (-(1 << 7), (1 << 7) - 1), "int": (-(1 << 31), (1 << 31) - 1),
               "long": (-(1 << 63), (1 << 63) - 1)}
_KIND_RANK = {"byte": 0, "int": 1, "long": 2}
_OUT_BUILTINS = ("List", "ParcelFileDescriptor")
_JAVA_ONLY = ("Map", "CharSequence")


class Compiler:
    """Reads, resolves and checks AIDL files; :meth:`compile` returns every document involved."""

    def __init__(self, include: Iterable[str] = ()) -> None:
        self.include = [os.path.normpath(d) for d in include]
        self.documents: dict[str, Document] = {}  # by real path
        self.types: dict[str, Decl] = {}  # by qualified name
        self._roots: list[str] = []

    # --- loading -----------------------------------------------------------------------------

    def compile(self, paths: Sequence[str]) -> list[Document]:
        """Load ``paths`` and everything they import; raise :class:`AidlError` on the first file
        with mistakes (all of that file's mistakes, one per line)."""
        wanted = [self.load(p) for p in paths]
        done: set[int] = set()
        queue = list(wanted)
        while queue:  # resolving a document may load more
            doc = queue.pop(0)
            if id(doc) in done:
                continue
            done.add(id(doc))
            before = set(self.documents)
            self._resolve(doc)
            queue.extend(d for p, d in self.documents.items() if p not in before)
        for doc in self.documents.values():
            self._check(doc)
        return wanted

    def load(self, path: str, where: Location | None = None) -> Document:
        real = os.path.realpath(path)
        if real in self.documents:
            return self.documents[real]
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read()
        except OSError as e:
            raise AidlError(where, f"couldn't read {path}: {e.strerror}") from None
        except UnicodeDecodeError as e:
            raise AidlError(Location(path, 1, 1), f"not UTF-8 text: {e}") from None
        doc = parser.parse(text, path)
        self._check_file(doc)
        self.documents[real] = doc
        if doc.package:  # the root its package implies: DIR of DIR/p/q/IFoo.aidl for package p.q
            parts = os.path.normpath(os.path.dirname(os.path.abspath(path))).split(os.sep)
            pkg = doc.package.split(".")
            if parts[-len(pkg):] == pkg:
                root = os.sep.join(parts[:-len(pkg)]) or os.sep
                if root not in self._roots:
                    self._roots.append(root)
        else:
            root = os.path.dirname(os.path.abspath(path))
            if root not in self._roots:
                self._roots.append(root)
        for decl in _walk(doc.decls):
            other = self.types.get(decl.qualified_name)
            if other is not None and other.document is not doc:
                raise AidlError(decl.loc, f"redefinition of {decl.qualified_name} (first defined at {other.loc})")
            self.types[decl.qualified_name] = decl
        return doc

    def _check_file(self, doc: Document) -> None:
        if len(doc.decls) != 1:
            where = doc.decls[1].loc if len(doc.decls) > 1 else Location(doc.path, 1, 1)
            raise AidlError(where, "You must declare only one type per file." if doc.decls
                            else "no type declared in this file")
        decl = doc.decls[0]
        base = os.path.splitext(os.path.basename(doc.path))[0]
        if base != decl.name:
            raise AidlError(decl.loc, f"{decl.name} should be declared in a file called {decl.name}.aidl")

    def _find_file(self, qualified: str, where: Location) -> Decl | None:
        """The declaration of ``qualified`` (``p.q.Foo`` or ``p.q.Foo.Inner``), loading its file."""
        if qualified in self.types:
            return self.types[qualified]
        parts = qualified.split(".")
        for top in range(len(parts), 0, -1):  # p/q/Foo/Inner.aidl, then p/q/Foo.aidl with Inner
            rel = os.path.join(*parts[:top]) + ".aidl"
            for d in [*self.include, *self._roots]:
                candidate = os.path.join(d, rel)
                if os.path.isfile(candidate):
                    self.load(candidate, where)
                    return self.types.get(qualified)
        return None

    # --- resolving ---------------------------------------------------------------------------

    def _resolve(self, doc: Document) -> None:
        errors: list[AidlError] = []
        imported: dict[str, Decl] = {}
        for name, loc in doc.imports:
            decl = self._find_file(name, loc)
            if decl is None:
                errors.append(AidlError(loc, f"couldn't find import for class {name}"))
            else:
                imported[name.rsplit(".", 1)[-1]] = decl
        for decl in _walk(doc.decls):
            for t in _types_of(decl):
                try:
                    self._resolve_type(t, decl, doc, imported)
                except AidlError as e:
                    errors.append(e)
        if errors:
            raise AidlErrors(errors)

    def _resolve_type(self, t: TypeRef, scope: Decl, doc: Document, imported: dict[str, Decl]) -> None:
        for a in t.args:
            self._resolve_type(a, scope, doc, imported)
        if t.name in BUILTINS:
            return
        if isinstance(scope, Parcelable | UnionDecl) and t.name in scope.type_params:
            return
        decl = self._lookup(t.name, scope, doc, imported, t.loc)
        if decl is None:
            raise AidlError(t.loc, f"Failed to resolve '{t.name}'")
        t.decl = decl

    def _lookup(self, name: str, scope: Decl | None, doc: Document, imported: dict[str, Decl],
                where: Location) -> Decl | None:
        first, *rest = name.split(".")
        found: Decl | None = None
        s = scope
        while s is not None and found is None:  # nested types, inside out
            if s.name == first:
                found = s
            found = found or next((n for n in s.nested if n.name == first), None)
            s = s.parent
        found = found or next((d for d in doc.decls if d.name == first), None) or imported.get(first)
        if found is None:  # the same package needs no import
            found = self._find_file(f"{doc.package}.{first}" if doc.package else first, where)
        if found is not None:
            for part in rest:
                found = next((n for n in found.nested if n.name == part), None)
                if found is None:
                    break
            if found is not None:
                return found
        return self._find_file(name, where) if rest else None

    # --- checking ----------------------------------------------------------------------------

    def _check(self, doc: Document) -> None:
        errors: list[AidlError] = []

        def check(fn: object, *args: object) -> None:
            try:
                fn(*args)  # type: ignore[operator]
            except AidlErrors as e:
                errors.extend(e.errors)
            except AidlError as e:
                errors.append(e)

        for decl in _walk(doc.decls):
            for a in decl.annotations:
                check(self._check_annotation, a)
            if isinstance(decl, Interface):
                for m in decl.methods:
                    check(self._check_method, decl, m)
                check(self._assign_ids, decl)
            elif isinstance(decl, Parcelable | UnionDecl):
                if decl.type_params:
                    errors.append(AidlError(decl.loc, "generic parcelables are not supported by vbinder"))
                for f in decl.fields:
                    check(self._check_field, decl, f)
                if isinstance(decl, UnionDecl) and not decl.fields:
                    errors.append(AidlError(decl.loc, f"The union '{decl.name}' has no fields."))
                _check_unique(decl.fields, "field", errors)
            elif isinstance(decl, Enum):
                check(self._check_enum, decl)
            for c in decl.constants:
                check(self._check_constant, decl, c)
            _check_unique(decl.constants, "constant", errors)
            _check_unique(decl.nested, "nested type", errors)
        if errors:
            raise AidlErrors(sorted(errors, key=lambda e: (e.location.line, e.location.column)
                                    if e.location else (0, 0)))

    @staticmethod
    def _check_annotation(a: Annotation) -> None:
        if a.name not in KNOWN_ANNOTATIONS:
            raise AidlError(a.loc, f"'{a.name}' is not a recognized annotation. "
                                   f"It must be one of: {' '.join(sorted(KNOWN_ANNOTATIONS))}")

    def _check_type(self, t: TypeRef, scope: Decl, *, void_ok: bool = False) -> None:
        for a in t.annotations:
            self._check_annotation(a)
        if t.name == "void":
            if not void_ok or t.dims:
                raise AidlError(t.loc, "void is only a method's return type")
            return
        if t.name in _JAVA_ONLY:
            raise AidlError(t.loc, f"{t.name} is Java-only and not supported by vbinder")
        if any(d is not None for d in t.dims):
            raise AidlError(t.loc, "fixed-size arrays are not supported by vbinder")
        if len(t.dims) > 1:
            raise AidlError(t.loc, "Multi-dimensional arrays must be fixed size.")
        if t.name == "List":
            if t.dims:
                raise AidlError(t.loc, "List[] is not supported")
            if len(t.args) != 1:
                raise AidlError(t.loc, "List must have exactly one type argument (List<T>)")
            element = t.args[0]
            if element.name in PRIMITIVES:
                raise AidlError(element.loc, f"A generic type cannot have any primitive type parameters: "
                                             f"List<{element.name}>; use {element.name}[]")
            if element.is_array or element.is_list:
                raise AidlError(element.loc, "List of arrays or Lists is not supported")
            self._check_type(element, scope)
        elif t.args:
            raise AidlError(t.loc, f"{t.name} is not a generic type")
        if t.nullable and t.name in PRIMITIVES and not t.dims:
            raise AidlError(t.loc, "Primitive type cannot get nullable annotation")
        if t.nullable and isinstance(t.decl, Enum) and not t.dims:
            raise AidlError(t.loc, "Enum type cannot get nullable annotation")
        if t.nullable and t.name == "FileDescriptor" and not t.dims:
            raise AidlError(t.loc, "@nullable FileDescriptor is not supported by vbinder")
        if t.utf8 and t.name != "String":
            raise AidlError(t.loc, "@utf8InCpp can only be used on String, String[] and List<String>")

    def _check_method(self, iface: Interface, m: Method) -> None:
        self._check_type(m.ret, iface, void_ok=True)
        oneway = m.oneway or iface.oneway
        if oneway and m.ret.name != "void":
            raise AidlError(m.loc, f"oneway method '{m.name}' cannot return a value")
        names = set()
        for a in m.args:
            self._check_arg(m, a, oneway)
            if a.name in names:
                raise AidlError(a.loc, f"method '{m.name}' has two arguments named '{a.name}'")
            names.add(a.name)
        if any(other.name == m.name for other in iface.methods[:iface.methods.index(m)]):
            raise AidlError(m.loc, f"attempt to redefine method {m.name}")

    def _check_arg(self, m: Method, a: Arg, oneway: bool) -> None:
        t = a.type
        self._check_type(t, m.ret.decl or Decl("", "", [], a.loc))
        can_be_out = (t.is_array or t.name in _OUT_BUILTINS
                      or isinstance(t.decl, Parcelable | UnionDecl))
        if not a.explicit and can_be_out:
            raise AidlError(a.loc, f"'{t}' can be an out type, so you must declare it as in, out, or inout.")
        if a.is_out and not can_be_out:
            raise AidlError(a.loc, f"'{a.name}' can't be an {a.direction} parameter because {t} "
                                   "can only be an in parameter.")
        if a.is_out and t.name == "ParcelFileDescriptor" and not t.dims:
            raise AidlError(a.loc, f"'{a.name}': out and inout ParcelFileDescriptor are not supported by vbinder")
        if oneway and a.is_out:
            raise AidlError(a.loc, f"oneway method '{m.name}' cannot have out parameters")

    @staticmethod
    def _assign_ids(iface: Interface) -> None:
        explicit = [m for m in iface.methods if m.explicit_id is not None]
        if explicit and len(explicit) != len(iface.methods):
            m = next(m for m in iface.methods if m.explicit_id is None)
            raise AidlError(m.loc, "You must either assign id's to all methods or to none of them.")
        seen: dict[int, Method] = {}
        for i, m in enumerate(iface.methods):
            m.id = m.explicit_id if m.explicit_id is not None else i
            if not 0 <= m.id <= MAX_USER_METHOD_ID:
                raise AidlError(m.loc, f"Found out of bounds id ({m.id}) for method: {m.name}; "
                                f"value for id must be between 0 and {MAX_USER_METHOD_ID} inclusive.")
            if m.id in seen:
                raise AidlError(m.loc, f"Found duplicate method id ({m.id}) for method: {m.name}")
            seen[m.id] = m

    def _check_field(self, decl: Decl, f: Field) -> None:
        self._check_type(f.type, decl)
        if f.default is not None:
            if isinstance(decl, UnionDecl) and f is not decl.fields[0]:
                raise AidlError(f.loc, "a union's fields cannot have default values, but its first")
            f.value = self.evaluate(f.default, f.type, decl)

    def _check_constant(self, decl: Decl, c: Constant) -> None:
        t = c.type
        if t.name not in (*PRIMITIVES, "String") or t.is_list or len(t.dims) > 1:
            raise AidlError(c.loc, f"Cannot define constant of type {t}")
        c.value = self.evaluate(c.expr, t, decl)

    def _check_enum(self, e: Enum) -> None:
        backing = e.annotation("Backing")
        if backing is not None:
            kind = backing.params.get("type")
            if not (isinstance(kind, Literal) and kind.value in ("byte", "int", "long")):
                raise AidlError(backing.loc, "@Backing(type=...) must be \"byte\", \"int\" or \"long\"")
            e.backing = str(kind.value)
        if not e.enumerators:
            raise AidlError(e.loc, f"Enum {e.name} has no enumerators")
        previous: int | None = None
        seen: set[str] = set()
        for en in e.enumerators:
            if en.name in seen:
                raise AidlError(en.loc, f"Found duplicate enumerator name: {en.name}")
            seen.add(en.name)
            if en.expr is None:
                en.value = 0 if previous is None else previous + 1
                lo, hi = _INT_RANGES[e.backing]
                if not lo <= en.value <= hi:
                    raise AidlError(en.loc, f"Invalid value ({en.value}) for enumerator {en.name} of "
                                            f"{e.backing}-backed enum {e.name}")
            else:
                value = self.evaluate(en.expr, TypeRef(e.backing, [], [], [], en.loc), e)
                assert isinstance(value, int)
                en.value = value
            previous = en.value

    # --- constant expressions ----------------------------------------------------------------

    def evaluate(self, expr: Expr, t: TypeRef, scope: Decl) -> object:
        """The value of ``expr`` as type ``t`` (AOSP's ``AidlConstantValue::ValueString`` rules)."""
        if t.is_array:
            if not isinstance(expr, ArrayExpr):
                raise AidlError(expr.loc, f"Cannot assign a single value to the array {t}")
            element = t.element()
            return [self.evaluate(item, element, scope) for item in expr.items]
        if isinstance(expr, ArrayExpr):
            raise AidlError(expr.loc, f"Cannot assign an array to {t}")
        if t.is_list:
            raise AidlError(expr.loc, "a List cannot have a default value")
        if isinstance(t.decl, Enum):
            if not isinstance(expr, Ref):
                raise AidlError(expr.loc, f"Invalid value for enum {t.name}: use one of its enumerators")
            return self._enumerator(expr, t.decl)
        if t.decl is not None or t.name not in (*PRIMITIVES, "String"):
            raise AidlError(expr.loc, f"{t} cannot have a default value")
        value, kind = self._value(expr, scope, set())
        return _convert(value, kind, t.name, expr.loc)

    @staticmethod
    def _enumerator(expr: Ref, enum: Enum) -> tuple[Enum, str]:
        name = expr.name.rsplit(".", 1)[-1]
        if not any(en.name == name for en in enum.enumerators):
            raise AidlError(expr.loc, f"'{expr.name}' is not an enumerator of {enum.name}")
        return enum, name

    def _value(self, expr: Expr, scope: Decl, visiting: set[int]) -> tuple[object, str]:
        """The value and its kind (int, long, byte, boolean, float, double, char, String)."""
        if isinstance(expr, Literal):
            return expr.value, expr.kind
        if isinstance(expr, Ref):
            return self._reference(expr, scope, visiting)
        if isinstance(expr, Unary):
            value, kind = self._value(expr.operand, scope, visiting)
            return _unary(expr.op, value, kind, expr.loc)
        if isinstance(expr, Binary):
            left = self._value(expr.left, scope, visiting)
            right = self._value(expr.right, scope, visiting)
            return _binary(expr.op, left, right, expr.loc)
        raise AidlError(expr.loc, "an array is not a single value")

    def _reference(self, ref: Ref, scope: Decl, visiting: set[int]) -> tuple[object, str]:
        owner_name, _, name = ref.name.rpartition(".")
        doc = scope.top.document
        assert doc is not None
        owners: list[Decl] = []
        if owner_name:
            imported = {n.rsplit(".", 1)[-1]: d for n, _l in doc.imports if (d := self.types.get(n))}
            owner = self._lookup(owner_name, scope, doc, imported, ref.loc)
            if owner is not None:
                owners.append(owner)
        else:
            s: Decl | None = scope
            while s is not None:
                owners.append(s)
                s = s.parent
        for owner in owners:
            if isinstance(owner, Enum):
                for en in owner.enumerators:
                    if en.name == name:
                        if en.expr is None or id(en) in visiting:
                            return en.value, owner.backing
                        visiting.add(id(en))
                        value, kind = self._value(en.expr, owner, visiting)
                        return value, kind
            for c in owner.constants:
                if c.name == name:
                    if id(c) in visiting:
                        raise AidlError(ref.loc, f"Found a circular reference to {ref.name}")
                    visiting.add(id(c))
                    value, kind = self._value(c.expr, owner, visiting)
                    return _convert(value, kind, c.type.name, ref.loc) if not c.type.dims else value, \
                        c.type.name if not c.type.dims else "array"
        raise AidlError(ref.loc, f"Can't find {ref.name} in {scope.name}")


# --- helpers ---------------------------------------------------------------------------------------

def _walk(decls: Iterable[Decl]) -> Iterable[Decl]:
    for d in decls:
        yield d
        yield from _walk(d.nested)


def _types_of(decl: Decl) -> Iterable[TypeRef]:
    for c in decl.constants:
        yield c.type
    if isinstance(decl, Interface):
        for m in decl.methods:
            yield m.ret
            yield from (a.type for a in m.args)
    elif isinstance(decl, Parcelable | UnionDecl):
        yield from (f.type for f in decl.fields)


def _check_unique(items: Sequence[Field | Constant | Decl], what: str, errors: list[AidlError]) -> None:
    seen: set[str] = set()
    for item in items:
        if item.name in seen:
            errors.append(AidlError(item.loc, f"Found duplicate {what}: {item.name}"))
        seen.add(item.name)


def _is_int(kind: str) -> bool:
    return kind in _KIND_RANK


def _wrap(value: int, kind: str) -> int:
    bits = {"byte": 8, "int": 32, "long": 64}[kind]
    value &= (1 << bits) - 1
    return value - (1 << bits) if value >= 1 << (bits - 1) else value


def _unary(op: str, value: object, kind: str, loc: Location) -> tuple[object, str]:
    if op == "!":
        if kind not in ("boolean", *_KIND_RANK):
            raise AidlError(loc, f"Invalid operand for '!': {kind}")
        return (not value), "boolean"
    if kind in ("float", "double") and op in "+-":
        assert isinstance(value, float)
        return (value if op == "+" else -value), kind
    if not _is_int(kind):
        raise AidlError(loc, f"Invalid operand for '{op}': {kind}")
    assert isinstance(value, int)
    kind = "int" if kind == "byte" else kind  # integral promotion
    result = {"+": value, "-": -value, "~": ~value}[op]
    return _wrap(result, kind), kind


def _binary(op: str, left: tuple[object, str], right: tuple[object, str], loc: Location) -> tuple[object, str]:
    (a, ka), (b, kb) = left, right
    if op in ("&&", "||"):
        return (bool(a) and bool(b)) if op == "&&" else (bool(a) or bool(b)), "boolean"
    if ka == "String" or kb == "String":
        if op == "+" and ka == kb == "String":
            return f"{a}{b}", "String"
        if op in ("==", "!=") and ka == kb:
            return (a == b) == (op == "=="), "boolean"
        raise AidlError(loc, f"Invalid operation '{op}' on String")
    if ka in ("float", "double") or kb in ("float", "double"):
        raise AidlError(loc, "Cannot perform operations on floating point values")
    if ka in ("boolean", "char") or kb in ("boolean", "char"):
        ka = "int" if ka in ("boolean", "char") else ka
        kb = "int" if kb in ("boolean", "char") else kb
        a, b = int(a) if not isinstance(a, str) else ord(a), int(b) if not isinstance(b, str) else ord(b)  # type: ignore[call-overload]
    assert isinstance(a, int) and isinstance(b, int)
    if op in ("<<", ">>"):
        kind = "int" if ka == "byte" else ka
        if b < 0:
            raise AidlError(loc, "Cannot shift by a negative amount")
        return _wrap(a << b if op == "<<" else a >> b, kind), kind
    kind = max(ka, kb, "int", key=lambda k: _KIND_RANK[k])
    if op in ("==", "!=", "<", ">", "<=", ">="):
        result = {"==": a == b, "!=": a != b, "<": a < b, ">": a > b, "<=": a <= b, ">=": a >= b}[op]
        return result, "boolean"
    if op in ("/", "%") and b == 0:
        raise AidlError(loc, "Cannot do division operation with zero for value 0")
    if op == "/":
        q = abs(a) // abs(b)
        value = q if (a >= 0) == (b >= 0) else -q  # C truncates toward zero
    elif op == "%":
        value = abs(a) % abs(b) * (1 if a >= 0 else -1)
    else:
        value = {"+": a + b, "-": a - b, "*": a * b, "&": a & b, "|": a | b, "^": a ^ b}[op]
    return _wrap(value, kind), kind


def _convert(value: object, kind: str, target: str, loc: Location) -> object:
    """``value`` (of ``kind``) as a constant of type ``target``, or an error as aidl gives one."""
    if target == "String":
        if kind != "String":
            raise AidlError(loc, f"Invalid type specifier for a {kind} value: String")
        return value
    if target == "boolean":
        if kind == "boolean":
            return bool(value)
        if _is_int(kind) and value in (0, 1):
            return bool(value)
        raise AidlError(loc, f"Invalid type specifier for a {kind} value: boolean")
    if target == "char":
        if kind != "char":
            raise AidlError(loc, f"Invalid type specifier for a {kind} value: char")
        return value
    if target in ("float", "double"):
        if kind in ("float", "double"):
            return float(value)  # type: ignore[arg-type]
        if _is_int(kind):
            return float(value)  # type: ignore[arg-type]
        raise AidlError(loc, f"Invalid type specifier for a {kind} value: {target}")
    if kind == "boolean":
        return int(bool(value))
    if not _is_int(kind):
        raise AidlError(loc, f"Invalid type specifier for a {kind} value: {target}")
    assert isinstance(value, int)
    lo, hi = _INT_RANGES[target]
    if not lo <= value <= hi:
        raise AidlError(loc, f"Invalid type specifier for an {kind} literal: {target} ({value})")
    return value
