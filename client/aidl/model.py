"""What an AIDL file declares: the tree the parser builds and the compiler checks and resolves.

Names follow AOSP's ``aidl_language.h`` where a concept has one there (``AidlTypeSpecifier`` is
:class:`TypeRef`, ``AidlDefinedType`` is :class:`Decl`, ``AidlArgument`` is :class:`Arg`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypeAlias

# The types AIDL knows without a declaration (``AidlTypenames::IsBuiltinTypename``).
PRIMITIVES = ("boolean", "byte", "char", "int", "long", "float", "double")
BUILTINS = (*PRIMITIVES, "void", "String", "CharSequence", "IBinder", "List", "Map", "FileDescriptor",
            "ParcelFileDescriptor")

# kFirstCallTransaction + the ids of aidl_to_common.h: user ids run from 0 to kMaxUserSetMethodId;
# the top 100 are kept for the meta transactions the compiler adds.
FIRST_CALL_TRANSACTION = 1
LAST_CALL_TRANSACTION = 0x00FFFFFF
FIRST_META_METHOD_ID = LAST_CALL_TRANSACTION - FIRST_CALL_TRANSACTION
GET_INTERFACE_VERSION_ID = FIRST_META_METHOD_ID
GET_INTERFACE_HASH_ID = FIRST_META_METHOD_ID - 1
MAX_USER_METHOD_ID = FIRST_META_METHOD_ID - 99 - 1


@dataclass(frozen=True)
class Location:
    """A place in an AIDL file (1-based line and column)."""

    file: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


class AidlError(Exception):
    """A mistake in an AIDL file, printed as ``file:line:col: message`` (one per line)."""

    def __init__(self, location: Location | None, message: str) -> None:
        self.location = location
        self.message = message
        super().__init__(str(self))

    def __str__(self) -> str:
        return f"{self.location}: {self.message}" if self.location else self.message


class AidlErrors(AidlError):
    """Several :class:`AidlError` found in one pass; ``str()`` lists them all."""

    def __init__(self, errors: list[AidlError]) -> None:
        self.errors = errors
        super().__init__(errors[0].location, errors[0].message)

    def __str__(self) -> str:
        return "\n".join(str(e) for e in self.errors)


# --- constant expressions ------------------------------------------------------------------------


@dataclass
class Literal:
    value: int | float | bool | str
    kind: str  # "int", "long", "byte", "float", "double", "boolean", "String", "char"
    loc: Location


@dataclass
class Ref:
    name: str  # a constant or enumerator, maybe qualified: "MAX", "IFoo.MAX", "Color.RED"
    loc: Location


@dataclass
class Unary:
    op: str
    operand: Expr
    loc: Location


@dataclass
class Binary:
    op: str
    left: Expr
    right: Expr
    loc: Location


@dataclass
class ArrayExpr:
    items: list[Expr]
    loc: Location


Expr: TypeAlias = Literal | Ref | Unary | Binary | ArrayExpr


# --- types and members ---------------------------------------------------------------------------


@dataclass
class Annotation:
    name: str
    params: dict[str, Expr]
    loc: Location


@dataclass
class TypeRef:
    """A type as written: ``@nullable List<String>``, ``int[]``, ``p.IFoo``, ``Outer.Inner``."""

    name: str
    args: list[TypeRef]
    dims: list[Expr | None]  # one per ``[]`` (None) or ``[N]``, outermost first
    annotations: list[Annotation]
    loc: Location
    decl: Decl | None = None  # the declaration it names, once resolved (None: a builtin)

    @property
    def nullable(self) -> bool:
        return any(a.name == "nullable" for a in self.annotations)

    @property
    def utf8(self) -> bool:
        return any(a.name == "utf8InCpp" for a in self.annotations)

    @property
    def is_array(self) -> bool:
        return bool(self.dims)

    @property
    def is_list(self) -> bool:
        return not self.dims and self.name == "List"

    def element(self) -> TypeRef:
        """The type of one element of an array or List."""
        if self.dims:  # @nullable T[]: a nullable array, whose elements are nullable too where they can be
            scalar = self.name in PRIMITIVES or isinstance(self.decl, Enum)
            annotations = [a for a in self.annotations if not (scalar and a.name == "nullable")]
            return TypeRef(self.name, self.args, self.dims[1:], annotations, self.loc, self.decl)
        return self.args[0]

    def __str__(self) -> str:
        text = self.name
        if self.args:
            text += "<" + ", ".join(str(a) for a in self.args) + ">"
        return text + "[]" * len(self.dims)


@dataclass
class Field:
    type: TypeRef
    name: str
    default: Expr | None
    loc: Location
    value: object = None  # the default, evaluated


@dataclass
class Constant:
    type: TypeRef
    name: str
    expr: Expr
    loc: Location
    value: object = None


@dataclass
class Arg:
    direction: str  # "in", "out" or "inout"
    explicit: bool  # the direction was written
    type: TypeRef
    name: str
    loc: Location

    @property
    def is_in(self) -> bool:
        return self.direction in ("in", "inout")

    @property
    def is_out(self) -> bool:
        return self.direction in ("out", "inout")


@dataclass
class Method:
    name: str
    ret: TypeRef
    args: list[Arg]
    oneway: bool
    explicit_id: int | None
    loc: Location
    id: int = -1  # resolved: transaction code - FIRST_CALL_TRANSACTION

    @property
    def code(self) -> int:
        return FIRST_CALL_TRANSACTION + self.id


@dataclass
class Enumerator:
    name: str
    expr: Expr | None
    loc: Location
    value: int = 0


# --- declarations --------------------------------------------------------------------------------


@dataclass(eq=False)
class Decl:
    name: str
    package: str
    annotations: list[Annotation]
    loc: Location
    constants: list[Constant] = field(default_factory=list)
    nested: list[Decl] = field(default_factory=list)
    parent: Decl | None = None
    document: Document | None = None

    @property
    def path(self) -> list[str]:
        """The names from the top-level type down to this one."""
        return [*self.parent.path, self.name] if self.parent else [self.name]

    @property
    def qualified_name(self) -> str:
        return ".".join(filter(None, [self.package, *self.path]))

    @property
    def top(self) -> Decl:
        return self.parent.top if self.parent else self

    def annotation(self, name: str) -> Annotation | None:
        return next((a for a in self.annotations if a.name == name), None)


@dataclass(eq=False)
class Interface(Decl):
    oneway: bool = False
    methods: list[Method] = field(default_factory=list)


@dataclass(eq=False)
class Parcelable(Decl):
    fields: list[Field] = field(default_factory=list)
    structured: bool = True
    type_params: list[str] = field(default_factory=list)


@dataclass(eq=False)
class UnionDecl(Decl):
    fields: list[Field] = field(default_factory=list)
    type_params: list[str] = field(default_factory=list)


@dataclass(eq=False)
class Enum(Decl):
    enumerators: list[Enumerator] = field(default_factory=list)
    backing: str = "byte"


@dataclass(eq=False)
class Document:
    path: str
    package: str
    imports: list[tuple[str, Location]]
    decls: list[Decl]
