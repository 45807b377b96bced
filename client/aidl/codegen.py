"""Python source for checked AIDL declarations: a module per top-level type.

For ``interface p.IFoo`` the module ``p/IFoo.py`` holds ``IFoo`` (the typed methods, the
constants, ``DESCRIPTOR``, ``TRANSACTION_*``), the proxy, and the stub (``IFoo.Stub``).
Parcelables are dataclasses, unions :class:`runtime.Union` subclasses, enums
:class:`runtime.AidlEnum` (an IntEnum). What goes on the wire is in the read and write lines,
one per value, in AOSP's order (``generate_cpp.cpp``: arguments in declaration order, the
status, the return value, then out and inout arguments in declaration order).
"""

from __future__ import annotations

import keyword
import os
from dataclasses import dataclass

from .model import (
    GET_INTERFACE_HASH_ID,
    GET_INTERFACE_VERSION_ID,
    Arg,
    Decl,
    Document,
    Enum,
    Field,
    Interface,
    Method,
    Parcelable,
    TypeRef,
    UnionDecl,
)

# Names a generated class inherits (BBinder, Stub, Proxy, Union): an AIDL member with one of
# them gets a trailing underscore, as a Python keyword does.
_RESERVED = frozenset({
    "transact", "dispatch", "on_transact", "flatten", "ping", "interface_descriptor", "as_binder",
    "as_interface", "binder", "header", "stability", "descriptor", "DESCRIPTOR", "Stub", "tag", "value",
    "Tag", "write_to_parcel", "read_from_parcel", "link_to_death", "unlink_to_death",
})
_FIELD_RESERVED = frozenset({"write_to_parcel", "read_from_parcel"})
_UNION_RESERVED = _FIELD_RESERVED | {"tag", "value", "Tag"}
_LOCALS = frozenset({"self", "data", "reply", "result", "parcel", "end", "start", "tag", "Parcel", "IBinder",
                     "_r", "Any", "cast", "field", "dataclass", "enum"})

_SIMPLE = {  # type -> (python type, Parcel write method, Parcel read method)
    "boolean": ("bool", "write_bool", "read_bool"),
    "byte": ("int", "write_byte", "read_byte"),
    "int": ("int", "write_int32", "read_int32"),
    "long": ("int", "write_int64", "read_int64"),
    "float": ("float", "write_float", "read_float"),
    "double": ("float", "write_double", "read_double"),
}
_BACKING = {"byte": ("write_byte", "read_byte"), "int": ("write_int32", "read_int32"),
            "long": ("write_int64", "read_int64")}


def py_name(name: str, reserved: frozenset[str] = _RESERVED) -> str:
    """An AIDL name as a Python identifier: unchanged unless it is a keyword or reserved."""
    return f"{name}_" if keyword.iskeyword(name) or name in reserved or name in ("None", "True", "False") else name


@dataclass
class Options:
    prefix: str = ""  # the Python package the AIDL packages live in ("" for the top level)
    version: int | None = None  # --version: getInterfaceVersion
    hash: str | None = None  # --hash: getInterfaceHash


def module_name(decl: Decl, options: Options) -> str:
    top = decl.top
    return ".".join(filter(None, [options.prefix, top.package, top.name]))


class _Module:
    """The source of one module, with the imports its code turned out to need."""

    def __init__(self, doc: Document, options: Options) -> None:
        self.doc = doc
        self.options = options
        self.top = doc.decls[0]
        self.name = module_name(self.top, options)
        self.lines: list[str] = []
        self.typing: set[str] = set()
        self.uses: set[str] = set()  # "enum", "dataclass", "field", "Parcel", "IBinder", "_r"
        self.imports: dict[str, str] = {}  # local alias -> module
        self.early: set[str] = set()  # aliases imported at the top: enums, which import nothing back

    # --- names ---------------------------------------------------------------------------------

    def ref(self, decl: Decl) -> str:
        """How this module names ``decl``."""
        if module_name(decl, self.options) == self.name:
            return ".".join(decl.path)
        top = decl.top
        alias = top.name
        module = module_name(top, self.options)
        if (alias in self.imports and self.imports[alias] != module) or alias == self.top.name:
            alias = "_" + module.replace(".", "_")
        self.imports[alias] = module
        if isinstance(top, Enum):
            self.early.add(alias)
        return ".".join([alias, *decl.path[1:]])

    def stub_name(self, iface: Interface) -> str:
        return "_" + "_".join(iface.path) + "Stub"

    def proxy_name(self, iface: Interface) -> str:
        return "_" + "_".join(iface.path) + "Proxy"

    # --- types ---------------------------------------------------------------------------------

    def py_type(self, t: TypeRef, *, out: bool = False) -> str:
        """The annotation for a value of ``t`` (``out``: a caller's object the call fills)."""
        base = self._py_type(t, out)
        return f"{base} | None" if t.nullable or self._always_nullable(t) else base

    @staticmethod
    def _always_nullable(t: TypeRef) -> bool:
        return not t.is_array and t.name == "ParcelFileDescriptor"

    def _py_type(self, t: TypeRef, out: bool) -> str:
        if t.is_array or t.is_list:
            element = t.element()
            if t.is_array and element.name == "byte":
                self.uses.add("bytes")
                return "bytearray" if out else "bytes"
            return f"list[{self.py_type(element)}]"
        if t.name in _SIMPLE:
            return _SIMPLE[t.name][0]
        if t.name in ("char", "String"):
            return "str"
        if t.name == "void":
            return "None"
        if t.name == "IBinder":
            self.uses.add("IBinder")
            return "IBinder"
        if t.name == "FileDescriptor":
            return "int"
        if t.name == "ParcelFileDescriptor":
            self.typing.add("Any")
            return "Any"
        assert t.decl is not None, t
        return self.ref(t.decl)

    def field_type(self, f: Field) -> str:
        t = f.type
        nullable = t.nullable or t.name in ("IBinder", "FileDescriptor") and not t.dims \
            or isinstance(t.decl, Interface) and not t.dims
        base = self._py_type(t, False)
        return f"{base} | None" if nullable or self._always_nullable(t) else base

    def default(self, f: Field) -> str:
        """The default of a parcelable field: its AIDL default, else what C++ default-constructs."""
        t = f.type
        if f.value is not None:
            return self.literal(f.value, t)
        if t.nullable or (not t.dims and (t.name in ("IBinder", "FileDescriptor", "ParcelFileDescriptor")
                                          or isinstance(t.decl, Interface))):
            return "None"
        if t.is_array and t.element().name == "byte":
            return 'b""'
        if t.is_array or t.is_list:
            self.uses.add("field")
            return "field(default_factory=list)"
        if t.name in _SIMPLE:
            return {"bool": "False", "int": "0", "float": "0.0"}[_SIMPLE[t.name][0]]
        if t.name == "char":
            return '"\\0"'
        if t.name == "String":
            return '""'
        assert t.decl is not None
        if isinstance(t.decl, Enum):
            return self._enum_default(t.decl, f"{self.ref(t.decl)}(0)")
        self.uses.add("field")
        return f"field(default_factory=lambda: {self.ref(t.decl)}())"

    def _enum_default(self, enum: Enum, value: str) -> str:
        """An enum value as a default: made when needed if its class is imported late."""
        if module_name(enum, self.options) == self.name or isinstance(enum.top, Enum):
            return value
        self.uses.add("field")
        return f"field(default_factory=lambda: {value})"

    def factory(self, f: Field) -> str:
        """A callable that makes the default of field ``f``."""
        default = self.default(f)
        prefix = "field(default_factory="
        return default[len(prefix):-1] if default.startswith(prefix) else f"lambda: {default}"

    def literal(self, value: object, t: TypeRef) -> str:
        if isinstance(value, tuple):  # an enumerator: (Enum, name)
            return self._enum_default(value[0], f"{self.ref(value[0])}.{py_name(value[1], frozenset())}")
        if isinstance(value, list):
            self.uses.add("field")
            items = ", ".join(self.literal(v, t.element()) for v in value)
            if t.is_array and t.element().name == "byte":
                return f"bytes([{items}])"
            return f"field(default_factory=lambda: [{items}])"
        if isinstance(value, str):
            return _string(value)
        if isinstance(value, float):
            return repr(value) if value == value and value not in (float("inf"), float("-inf")) \
                else f'float("{value}")'
        return repr(value)

    # --- reading and writing values ------------------------------------------------------------

    def writer(self, t: TypeRef) -> str:
        """A callable ``(parcel, value) -> None`` that writes one ``t``."""
        if t.name in _SIMPLE and not t.dims:
            self.uses.add("Parcel")
            return f"Parcel.{_SIMPLE[t.name][1]}"
        if t.name == "String" and not t.dims:
            self.uses.add("Parcel")
            return "Parcel.write_utf8_as_utf16" if t.utf8 else "Parcel.write_string16"
        if t.name == "IBinder" and not t.dims:
            self.uses.add("Parcel")
            return "Parcel.write_strong_binder"
        self.uses.add("_r")
        if isinstance(t.decl, Parcelable | UnionDecl) and not t.dims:
            return "_r.write_parcelable"
        if isinstance(t.decl, Interface) and not t.dims:
            return "_r.write_interface"
        if t.name in ("char", "ParcelFileDescriptor", "FileDescriptor") and not t.dims:
            return {"char": "_r.write_char", "ParcelFileDescriptor": "_r.write_pfd",
                    "FileDescriptor": "_r.write_file_descriptor"}[t.name]
        return f"lambda p, v: {self.write(t, 'p', 'v')}"

    def write(self, t: TypeRef, p: str, v: str) -> str:
        """A statement that writes ``v`` (a ``t``) to parcel ``p``."""
        self.uses.add("_r")
        if t.is_array or t.is_list:
            element = t.element()
            if t.is_array and element.name == "byte":
                return f"{p}.write_byte_array({v})"
            if t.is_array and isinstance(element.decl, Enum) and element.decl.backing == "byte":
                return f"_r.write_byte_enum_array({p}, {v})"
            return f"_r.write_array({p}, {v}, {self.writer(element)})"
        if t.name in _SIMPLE:
            return f"{p}.{_SIMPLE[t.name][1]}({v})"
        if t.name == "char":
            return f"_r.write_char({p}, {v})"
        if t.name == "String":
            return f"{p}.{'write_utf8_as_utf16' if t.utf8 else 'write_string16'}({v})"
        if t.name == "IBinder":
            return f"{p}.write_strong_binder({v})"
        if t.name == "FileDescriptor":
            return f"_r.write_file_descriptor({p}, {v})"
        if t.name == "ParcelFileDescriptor":
            return f"_r.write_pfd({p}, {v})"
        decl = t.decl
        if isinstance(decl, Enum):
            return f"{p}.{_BACKING[decl.backing][0]}({v})"
        if isinstance(decl, Interface):
            return f"{p}.write_strong_binder(_r.as_binder({v}))"
        return f"_r.write_parcelable({p}, {v})"

    def reader(self, t: TypeRef) -> str:
        """A callable ``(parcel) -> value`` that reads one ``t``."""
        if t.name in _SIMPLE and not t.dims:
            self.uses.add("Parcel")
            return f"Parcel.{_SIMPLE[t.name][2]}"
        if t.name == "String" and not t.dims:
            self.uses.add("_r" if not t.nullable else "Parcel")
            if t.nullable:
                return "Parcel.read_utf8_from_utf16" if t.utf8 else "Parcel.read_string16"
            return "_r.read_utf8" if t.utf8 else "_r.read_string"
        self.uses.add("_r")
        if isinstance(t.decl, Parcelable | UnionDecl) and not t.dims:
            return f"_r.parcelable_reader({self.ref(t.decl)}, nullable={t.nullable})"
        if t.name in ("char", "ParcelFileDescriptor", "FileDescriptor") and not t.dims:
            return {"char": "_r.read_char", "ParcelFileDescriptor": "_r.read_pfd",
                    "FileDescriptor": "_r.read_file_descriptor"}[t.name]
        return f"lambda p: {self.read(t, 'p', 'element')}"

    def read(self, t: TypeRef, p: str, what: str) -> str:
        """An expression that reads a ``t`` from parcel ``p`` (``what`` names it in errors)."""
        self.uses.add("_r")
        nullable = t.nullable
        if t.is_array or t.is_list:
            element = t.element()
            if t.is_array and element.name == "byte":
                return f"{p}.read_byte_array()" if nullable else f"_r.read_bytes({p})"
            if t.is_array and isinstance(element.decl, Enum) and element.decl.backing == "byte":
                expr = f"_r.read_byte_enum_array({p}, {self.ref(element.decl)})"
            else:
                expr = f"_r.read_array({p}, {self.reader(element)})"
        elif t.name in _SIMPLE:
            return f"{p}.{_SIMPLE[t.name][2]}()"
        elif t.name == "char":
            return f"_r.read_char({p})"
        elif t.name == "String":
            if nullable:
                return f"{p}.{'read_utf8_from_utf16' if t.utf8 else 'read_string16'}()"
            return f"_r.{'read_utf8' if t.utf8 else 'read_string'}({p})"
        elif t.name == "IBinder":
            return f"_r.read_nullable_binder({p})" if nullable else f"_r.read_binder({p})"
        elif t.name == "FileDescriptor":
            return f"_r.read_file_descriptor({p})"
        elif t.name == "ParcelFileDescriptor":
            return f"_r.read_pfd({p})"
        elif isinstance(t.decl, Enum):
            return f"{self.ref(t.decl)}({p}.{_BACKING[t.decl.backing][1]}())"
        elif isinstance(t.decl, Interface):
            expr = f"_r.read_interface({p}, {self.ref(t.decl)}.Stub)"
        else:
            assert t.decl is not None
            expr = f"_r.read_parcelable({p}, {self.ref(t.decl)})"
        return expr if nullable else f'_r.non_null({expr}, "{what}")'

    # --- declarations --------------------------------------------------------------------------

    def emit(self, text: str = "", indent: int = 0) -> None:
        line = "    " * indent + text if text else ""
        if len(line) > 120 and "#" not in text:
            line += "  # noqa: E501"
        self.lines.append(line)

    def decl(self, decl: Decl, indent: int) -> list[Interface]:
        """Emit ``decl``'s class; returns the interfaces whose stub and proxy follow the module's
        classes (a nested class cannot subclass the class it is nested in)."""
        if isinstance(decl, Enum):
            return self.enum(decl, indent)
        if isinstance(decl, Interface):
            return self.interface(decl, indent)
        if isinstance(decl, UnionDecl):
            return self.union(decl, indent)
        assert isinstance(decl, Parcelable)
        return self.parcelable(decl, indent)

    def constants(self, decl: Decl, indent: int, kind: str) -> None:
        self.typing.add(kind)
        for c in decl.constants:
            if c.type.dims:
                items = ", ".join(self.literal(v, c.type.element()) for v in c.value)  # type: ignore[attr-defined]
                value = f"({items}{',' if len(c.value) == 1 else ''})"  # type: ignore[arg-type]
                self.emit(f"{py_name(c.name)}: {kind}[tuple[{self.py_type(c.type.element())}, ...]] = {value}",
                          indent)
            else:
                annotation = kind if kind == "Final" else f"ClassVar[{self.py_type(c.type)}]"
                self.emit(f"{py_name(c.name)}: {annotation} = {self.literal(c.value, c.type)}", indent)

    def nested(self, decl: Decl, indent: int) -> list[Interface]:
        pending: list[Interface] = []
        for n in decl.nested:
            self.emit()
            pending += self.decl(n, indent)
        return pending

    def enum(self, e: Enum, indent: int) -> list[Interface]:
        self.uses.add("_r")
        self.emit(f"class {e.name}(_r.AidlEnum):", indent)
        self.emit(f'"""enum {e.qualified_name} ({e.backing} on the wire)."""', indent + 1)
        self.emit()
        for en in e.enumerators:
            self.emit(f"{py_name(en.name, frozenset({'name', 'value'}))} = {en.value}", indent + 1)
        return []

    def parcelable(self, p: Parcelable, indent: int) -> list[Interface]:
        if not p.structured:
            return []
        self.uses.update({"dataclass", "_r", "Parcel"})
        self.emit("@dataclass", indent)
        self.emit(f"class {p.name}(_r.StructuredParcelable):", indent)
        self.emit(f'"""parcelable {p.qualified_name}."""', indent + 1)
        self.emit()
        self.constants(p, indent + 1, "ClassVar")
        for f in p.fields:
            self.emit(f"{py_name(f.name, _FIELD_RESERVED)}: {self.field_type(f)} = {self.default(f)}", indent + 1)
        pending = self.nested(p, indent + 1)
        i = indent + 1
        self.emit()
        self.emit("def write_to_parcel(self, parcel: Parcel) -> None:", i)
        self.emit("start = _r.begin_write_parcelable(parcel)", i + 1)
        for f in p.fields:
            self.emit(self.write(f.type, "parcel", f"self.{py_name(f.name, _FIELD_RESERVED)}"), i + 1)
        self.emit("_r.end_write_parcelable(parcel, start)", i + 1)
        self.emit()
        self.emit("def read_from_parcel(self, parcel: Parcel) -> None:", i)
        self.emit("end = _r.begin_parcelable(parcel)", i + 1)
        for f in p.fields:  # a peer with fewer fields sends a shorter parcelable: the rest keep their defaults
            self.emit("if parcel.data_position() < end:", i + 1)
            name = py_name(f.name, _FIELD_RESERVED)
            self.emit(f"self.{name} = {self.read(self._field_read_type(f), 'parcel', f.name)}", i + 2)
        self.emit("parcel.set_data_position(end)", i + 1)
        return pending

    @staticmethod
    def _field_read_type(f: Field) -> TypeRef:
        """Fields of binder types read as nullable (they default to None)."""
        t = f.type
        if not t.dims and (t.name == "IBinder" or isinstance(t.decl, Interface)) and not t.nullable:
            from .model import Annotation

            return TypeRef(t.name, t.args, t.dims, [*t.annotations, Annotation("nullable", {}, t.loc)], t.loc,
                           t.decl)
        return t

    def union(self, u: UnionDecl, indent: int) -> list[Interface]:
        self.uses.update({"enum", "_r", "Parcel"})
        self.typing.update({"ClassVar", "Any", "cast"})
        names = [py_name(f.name, _UNION_RESERVED) for f in u.fields]
        self.emit(f"class {u.name}(_r.Union):", indent)
        self.emit(f'"""union {u.qualified_name}: one of {", ".join(names)}."""', indent + 1)
        self.emit()
        self.constants(u, indent + 1, "ClassVar")
        i = indent + 1
        self.emit("class Tag(enum.IntEnum):", i)
        for n, (_f, name) in enumerate(zip(u.fields, names, strict=True)):
            self.emit(f"{name} = {n}", i + 1)
        self.emit()
        self.typing.add("Callable")
        defaults = ", ".join(f'"{name}": {self.factory(f)}' for f, name in zip(u.fields, names, strict=True))
        self.emit(f"_defaults: ClassVar[dict[str, Callable[[], Any]]] = {{{defaults}}}", i)
        pending = self.nested(u, i)
        me = ".".join(u.path)
        for f, name in zip(u.fields, names, strict=True):
            t = self.py_type(f.type)
            self.emit()
            self.emit("@property", i)
            self.emit(f"def {name}(self) -> {t}:", i)
            self.emit(f'return cast("{t}", self._get({me}.Tag.{name}))', i + 1)
            self.emit()
            self.emit(f"@{name}.setter", i)
            self.emit(f"def {name}(self, value: {t}) -> None:", i)
            self.emit(f"self._set({me}.Tag.{name}, value)", i + 1)
        self.emit()
        self.emit("def write_to_parcel(self, parcel: Parcel) -> None:", i)
        self.emit("parcel.write_int32(self.tag)", i + 1)
        for n, (f, name) in enumerate(zip(u.fields, names, strict=True)):
            self.emit(f"{'if' if n == 0 else 'elif'} self.tag == {me}.Tag.{name}:", i + 1)
            self.emit(self.write(f.type, "parcel", f"self.{name}"), i + 2)
        self.emit()
        self.emit("def read_from_parcel(self, parcel: Parcel) -> None:", i)
        self.emit("tag = parcel.read_int32()", i + 1)
        for n, (f, name) in enumerate(zip(u.fields, names, strict=True)):
            self.emit(f"{'if' if n == 0 else 'elif'} tag == {me}.Tag.{name}:", i + 1)
            self.emit(f"self.{name} = {self.read(f.type, 'parcel', f.name)}", i + 2)
        self.emit("else:", i + 1)
        self.emit(f'raise _r.unknown_tag("{u.qualified_name}", tag)', i + 2)
        return pending

    # --- interfaces ----------------------------------------------------------------------------

    def signature(self, m: Method) -> str:
        params = ["self"] + [f"{self.arg_name(a)}: {self.py_type(a.type, out=a.is_out)}" for a in m.args]
        return f"def {py_name(m.name)}({', '.join(params)}) -> {self.py_type(m.ret)}:"

    @staticmethod
    def arg_name(a: Arg) -> str:
        return py_name(a.name, _RESERVED | _LOCALS)

    def interface(self, iface: Interface, indent: int) -> list[Interface]:
        self.uses.add("_r")
        self.typing.update({"TYPE_CHECKING", "TypeAlias", "Final"})
        i = indent + 1
        self.emit(f"class {iface.name}(_r.Interface):", indent)
        self.emit(f'"""interface {iface.qualified_name}: implement it by subclassing '
                  f'{".".join(iface.path)}.Stub."""', i)
        self.emit()
        self.emit("if TYPE_CHECKING:", i)
        self.emit(f'Stub: TypeAlias = "{self.stub_name(iface)}"', i + 1)
        self.emit()
        self.typing.add("ClassVar")
        self.emit(f"DESCRIPTOR: ClassVar[str] = {_string(self.descriptor(iface))}", i)
        self.constants(iface, i, "Final")
        for m in iface.methods:
            self.emit(f"TRANSACTION_{m.name}: Final = {m.code}", i)
        if self.options.version is not None:
            self.emit(f"TRANSACTION_getInterfaceVersion: Final = {GET_INTERFACE_VERSION_ID + 1}", i)
            self.emit(f"VERSION: Final = {self.options.version}", i)
        if self.options.hash is not None:
            self.emit(f"TRANSACTION_getInterfaceHash: Final = {GET_INTERFACE_HASH_ID + 1}", i)
            self.emit(f"HASH: Final = {self.options.hash!r}", i)
        pending = self.nested(iface, i)
        for m in iface.methods:
            self.emit()
            self.emit(self.signature(m), i)
            self.emit(f'raise NotImplementedError("{m.name}")', i + 1)
        if self.options.version is not None:
            self.emit()
            self.emit("def getInterfaceVersion(self) -> int:", i)
            self.emit(f"return {'.'.join(iface.path)}.VERSION", i + 1)
        if self.options.hash is not None:
            self.emit()
            self.emit("def getInterfaceHash(self) -> str:", i)
            self.emit(f"return {'.'.join(iface.path)}.HASH", i + 1)
        return [*pending, iface]

    def descriptor(self, iface: Interface) -> str:
        a = iface.annotation("Descriptor")
        value = a.params.get("value") if a else None
        from .model import Literal

        return str(value.value) if isinstance(value, Literal) else iface.qualified_name

    def proxy(self, iface: Interface) -> None:
        me = ".".join(iface.path)
        self.uses.add("Parcel")
        self.emit()
        self.emit()
        self.emit(f"class {self.proxy_name(iface)}(_r.Proxy, {me}):")
        self.emit(f'"""A remote {iface.name}: each method is one transaction."""', 1)
        for m in iface.methods:
            self.emit()
            self.emit(self.signature(m), 1)
            self.emit("data = self._aidl_data()", 2)
            for a in m.args:
                name = self.arg_name(a)
                if a.is_in:
                    self.emit(self.write(a.type, "data", name), 2)
                elif a.type.is_array:
                    self.emit(f"_r.write_out_array_size(data, {name})", 2)
            code = f"{me}.TRANSACTION_{m.name}"
            if m.oneway or iface.oneway:
                self.emit(f"self._aidl_send({code}, data)", 2)
                continue
            outs = [a for a in m.args if a.is_out]
            if m.ret.name == "void" and not outs:
                self.emit(f"self._aidl_call({code}, data)", 2)
                continue
            self.emit(f"reply = self._aidl_call({code}, data)", 2)
            if m.ret.name != "void":
                self.emit(f"result = {self.read(m.ret, 'reply', 'result')}", 2)
            for a in outs:
                self.emit(self.read_into(a), 2)
            if m.ret.name != "void":
                self.emit("return result", 2)
        if self.options.version is not None:
            self._cached_meta(iface, "getInterfaceVersion", "int", "read_int32()", "-1")
        if self.options.hash is not None:
            self._cached_meta(iface, "getInterfaceHash", "str", "read_string16() or \"\"", '"-1"')

    def _cached_meta(self, iface: Interface, name: str, type_: str, read: str, unknown: str) -> None:
        """The proxy's getInterfaceVersion/getInterfaceHash: asked once, then cached (as BpFoo does)."""
        me = ".".join(iface.path)
        attr = f"_aidl_{name}"
        self.emit()
        self.emit(f"def {name}(self) -> {type_}:", 1)
        self.emit(f"cached: {type_} | None = getattr(self, \"{attr}\", None)", 2)
        self.emit("if cached is None:", 2)
        self.emit(f"reply = self._aidl_call({me}.TRANSACTION_{name}, self._aidl_data())", 3)
        self.emit(f"cached = reply.{read}", 3)
        self.emit(f"self.{attr} = cached", 3)
        self.emit("return cached", 2)

    def read_into(self, a: Arg) -> str:
        t, name = a.type, self.arg_name(a)
        if t.is_array and t.element().name == "byte":
            return f"_r.read_bytes_into(reply, {name})"
        if t.is_array or t.is_list:
            element = t.element()
            if t.is_array and isinstance(element.decl, Enum) and element.decl.backing == "byte":
                return f"{name}[:] = _r.read_byte_enum_array(reply, {self.ref(element.decl)}) or []"
            return f"_r.read_array_into(reply, {name}, {self.reader(element)})"
        return f"_r.read_parcelable_into(reply, {name})"

    def new_out(self, a: Arg) -> str:
        """What the stub passes for an ``out`` argument (Java: a new object; C++: a default one)."""
        t = a.type
        if t.is_array and t.element().name == "byte":
            return "_r.out_bytes(data)"
        if t.is_array:
            element = t.element()
            fake = Field(element, "element", None, a.loc)
            return f"_r.out_array(data, lambda: {self.default(fake)})"
        if t.is_list:
            return "[]"
        assert t.decl is not None
        return f"{self.ref(t.decl)}()"

    def stub(self, iface: Interface) -> None:
        me = ".".join(iface.path)
        stub = self.stub_name(iface)
        self.uses.add("Parcel")
        self.emit()
        self.emit()
        self.emit(f'class {stub}(_r.Stub["{me}"], {me}):')
        self.emit(f'"""A local {iface.name}: subclass it and implement the methods."""', 1)
        self.emit()
        self.emit(f"_aidl_interface = {me}", 1)
        self.emit(f"_aidl_proxy = {self.proxy_name(iface)}", 1)
        if iface.annotation("VintfStability"):
            self.emit("stability = _r.Stability.VINTF", 1)
        for m in iface.methods:
            self.emit()
            self.emit(f"@_r.transaction({me}.TRANSACTION_{m.name})", 1)
            self.emit(f"def _aidl_{m.name}(self, data: Parcel, reply: Parcel) -> None:", 1)
            names = []
            for a in m.args:
                name = self.arg_name(a)
                names.append(name)
                if a.is_in:
                    self.emit(f"{name} = {self.read(a.type, 'data', a.name)}", 2)
                elif a.type.is_list:
                    self.emit(f"{name}: {self.py_type(a.type)} = []", 2)
                elif a.type.is_array and not a.type.nullable:
                    self.emit(f'{name} = _r.non_null({self.new_out(a)}, "{a.name}")', 2)
                else:
                    self.emit(f"{name} = {self.new_out(a)}", 2)
            self.emit("_r.end_of_arguments(data)", 2)
            call = f"self.{py_name(m.name)}({', '.join(names)})"
            if m.oneway or iface.oneway:
                self.emit(call, 2)
                continue
            self.emit(f"result = {call}" if m.ret.name != "void" else call, 2)
            self.emit("reply.write_no_exception()", 2)
            if m.ret.name != "void":
                self.emit(self.write(m.ret, "reply", "result"), 2)
            for a in m.args:
                if a.is_out:
                    self.emit(self.write(a.type, "reply", self.arg_name(a)), 2)
        for name, write in (("getInterfaceVersion", "write_int32"), ("getInterfaceHash", "write_string16")):
            if (self.options.version if name == "getInterfaceVersion" else self.options.hash) is None:
                continue
            self.emit()
            self.emit(f"@_r.transaction({me}.TRANSACTION_{name})", 1)
            self.emit(f"def _aidl_{name}(self, data: Parcel, reply: Parcel) -> None:", 1)
            self.emit("reply.write_no_exception()", 2)
            self.emit(f"reply.{write}(self.{name}())", 2)
        self.emit()
        self.emit()
        self.emit(f"{me}.Stub = {stub}")

    # --- the module ----------------------------------------------------------------------------

    def _from(self, module: str) -> str:
        """``module`` as this module imports it: relative inside vbinder_client itself (its own
        interfaces, so that they type-check as part of the client), absolute elsewhere."""
        if not self.name.startswith("vbinder_client."):
            return module
        here = self.name.split(".")[:-1]
        there = module.split(".")
        common = 0
        while common < min(len(here), len(there)) and here[common] == there[common]:
            common += 1
        return "." * (len(here) - common + 1) + ".".join(there[common:])

    def _import(self, alias: str) -> str:
        module = self.imports[alias]
        cls = module.rsplit(".", 1)[-1]
        return f"from {self._from(module)} import {cls if alias == cls else f'{cls} as {alias}'}"

    def source(self) -> str:
        pending = self.decl(self.top, 0)
        for iface in pending:
            self.proxy(iface)
            self.stub(iface)
        body = self.lines
        head = [f'"""Generated by `vbinder aidl` from {os.path.basename(self.doc.path)}: do not edit.', "",
                f"{_kind(self.top)} {self.top.qualified_name}", '"""', "",
                "# ruff: noqa: N801, N802, N803, N806, N815, N999 - the names are the AIDL's", "",
                "from __future__ import annotations", ""]
        stdlib = []
        if "dataclass" in self.uses:
            stdlib.append(f"from dataclasses import {'dataclass, field' if 'field' in self.uses else 'dataclass'}")
        typing_names = sorted(n for n in self.typing if n not in ("ClassVar", "Final") or
                              any(n in line for line in body))
        if "Callable" in typing_names:
            typing_names.remove("Callable")
            stdlib.insert(0, "from collections.abc import Callable")
        if typing_names:
            stdlib.append(f"from typing import {', '.join(sorted(typing_names, key=_isort_key))}")
        if "enum" in self.uses:
            stdlib.insert(0, "import enum")
        ours = []
        client_names = sorted(n for n in ("IBinder", "Parcel") if n in self.uses and
                              any(n in line for line in body))
        if client_names:
            ours.append(f"from {self._from('vbinder_client')} import {', '.join(client_names)}")
        if "_r" in self.uses:
            ours.append(f"from {self._from('vbinder_client.aidl')} import runtime as _r")
        early = [self._import(a) for a in sorted(self.early, key=lambda a: (self.imports[a], a))]
        head += stdlib + ([""] if stdlib and ours else []) + ours
        if early:
            head += [""] + early
        head += ["", ""]
        tail = []
        late = sorted((a for a in self.imports if a not in self.early), key=lambda a: (self.imports[a], a))
        if late:
            tail = ["", "", "# The types this module refers to, imported last: they may refer back to it."]
            tail += [f"{self._import(a)}  # noqa: E402" for a in late]
        return "\n".join(head + body + tail) + "\n"


def _string(value: str) -> str:
    """A Python string literal, in double quotes where that needs no escape (ruff's style)."""
    text = repr(value)
    if text.startswith("'") and '"' not in value:
        text = '"' + text[1:-1].replace("\\'", "'") + '"'
    return text


def _isort_key(name: str) -> tuple[int, str]:
    """isort's order: CONSTANTS, then Classes, then functions."""
    kind = 0 if name.isupper() and len(name) > 1 else 1 if name[0].isupper() else 2
    return kind, name


def _kind(decl: Decl) -> str:
    if isinstance(decl, Interface):
        return "interface"
    if isinstance(decl, UnionDecl):
        return "union"
    if isinstance(decl, Enum):
        return "enum"
    return "parcelable"


def generate(doc: Document, options: Options | None = None) -> str | None:
    """The module for ``doc``'s type, or None for a declared-only parcelable (the user's class)."""
    top = doc.decls[0]
    if isinstance(top, Parcelable) and not top.structured:
        return None
    return _Module(doc, options or Options()).source()
