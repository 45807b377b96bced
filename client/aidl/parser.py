"""Parse AIDL text into the model (:mod:`.model`), with lark; syntax errors as :class:`AidlError`."""

from __future__ import annotations

import functools
import re
from typing import Any

import lark
from lark import Token, Tree

from .grammar import GRAMMAR
from .model import (
    Annotation,
    Arg,
    ArrayExpr,
    Binary,
    Constant,
    Decl,
    Document,
    Enum,
    Enumerator,
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

# Bison's names for the tokens, so that messages read like aidl's ("unexpected identifier").
_TOKEN_NAMES = {
    "NAME": "identifier", "ANNOTATION": "annotation", "NUMBER": "number", "INT_CODE": "int literal",
    "STRING": "string literal", "CHAR": "char literal", "SEMICOLON": "';'", "LBRACE": "'{'",
    "RBRACE": "'}'", "LPAR": "'('", "RPAR": "')'", "LSQB": "'['", "RSQB": "']'", "COMMA": "','",
    "DOT": "'.'", "EQUAL": "'='", "LT": "'<'", "GT": "'>'", "$END": "end of file",
}


@functools.cache
def _lark() -> lark.Lark:
    return lark.Lark(GRAMMAR, parser="lalr", lexer="contextual", propagate_positions=True,
                     maybe_placeholders=False)


def _token_name(name: str) -> str:
    if name in _TOKEN_NAMES:
        return _TOKEN_NAMES[name]
    pattern = _lark().get_terminal(name).pattern.value if name in _lark()._terminals_dict else name
    return f"'{pattern}'" if re.fullmatch(r"[a-z_]+|[^\w\s]+", pattern) else name.lower()


def _split_rshift(e: lark.UnexpectedInput) -> bool:
    """``List<List<String>>``: where a type's ``>`` may close, ``>>`` is two of them."""
    if isinstance(e, lark.UnexpectedToken) and e.token.type == "RSHIFT" and "GT" in e.expected:
        for _ in range(2):
            e.interactive_parser.feed_token(Token.new_borrow_pos("GT", ">", e.token))
        return True
    return False


def parse(text: str, path: str) -> Document:
    """The document in ``text`` (read from ``path``, which locations name)."""
    try:
        tree = _lark().parse(text, on_error=_split_rshift)
    except lark.UnexpectedToken as e:
        if e.token.type == "$END":
            found = "end of file"
        else:
            found = f"{_token_name(e.token.type)} '{e.token}'" if e.token.type in ("NAME", "NUMBER") \
                else _token_name(e.token.type)
        expected = sorted({_token_name(t) for t in e.expected})[:6]
        raise _error(path, e.line, e.column,
                     f"syntax error, unexpected {found}, expecting {' or '.join(expected)}") from None
    except lark.UnexpectedCharacters as e:
        raise _error(path, e.line, e.column, f"syntax error, unexpected character {e.char!r}") from None
    except lark.UnexpectedEOF as e:
        raise _error(path, e.line, e.column, "syntax error, unexpected end of file") from None
    return _Builder(path).document(tree)


def _error(path: str, line: int, column: int, message: str) -> Exception:
    from .model import AidlError

    return AidlError(Location(path, max(line, 1), max(column, 1)), message)


class _Builder:
    """Turns lark's tree into model objects, keeping each one's location."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.package = ""

    def loc(self, node: Tree[Token] | Token) -> Location:
        if isinstance(node, Token):
            return Location(self.path, node.line or 1, node.column or 1)
        return Location(self.path, getattr(node.meta, "line", 1), getattr(node.meta, "column", 1))

    def document(self, tree: Tree[Token]) -> Document:
        imports: list[tuple[str, Location]] = []
        decls: list[Decl] = []
        for child in tree.children:
            assert isinstance(child, Tree)
            if child.data == "package":
                self.package = self.qname(child.children[0])
            elif child.data == "import_":
                imports.append((self.qname(child.children[0]), self.loc(child)))
            else:
                decls.append(self.decl(child))
        doc = Document(self.path, self.package, imports, decls)
        for d in decls:
            _attach(d, None, doc)
        return doc

    @staticmethod
    def qname(node: Any) -> str:
        return ".".join(str(t) for t in node.children)

    def annotations(self, node: Tree[Token]) -> list[Annotation]:
        result = []
        for a in node.children:
            assert isinstance(a, Tree)
            name_tok, *rest = a.children
            params: dict[str, Expr] = {}
            for r in rest:
                if isinstance(r, Tree) and r.data == "param":
                    params[str(r.children[0])] = self.expr(r.children[1])
                else:
                    params["value"] = self.expr(r)
            result.append(Annotation(str(name_tok)[1:], params, self.loc(name_tok)))
        return result

    def decl(self, node: Tree[Token]) -> Decl:  # decl or nested: annotations decl_body
        annotations = self.annotations(node.children[0])  # type: ignore[arg-type]
        body = node.children[1]
        assert isinstance(body, Tree)
        decl = self.decl_body(body)
        decl.annotations = annotations + decl.annotations
        return decl

    def decl_body(self, body: Tree[Token]) -> Decl:
        kids = [c for c in body.children if not (isinstance(c, Token) and c.type in
                                                 ("PARCELABLE", "INTERFACE", "ENUM", "UNION"))]
        oneway = bool(kids) and isinstance(kids[0], Token) and kids[0].type == "ONEWAY"
        if oneway:
            kids = kids[1:]
        qname_node = kids[0]
        name = self.qname(qname_node)
        loc = self.loc(qname_node)
        rest = kids[1:]
        type_params = []
        if rest and isinstance(rest[0], Tree) and rest[0].data == "type_params":
            type_params = [str(t) for t in rest[0].children if isinstance(t, Token) and t.type == "NAME"]
            rest = rest[1:]
        kind = body.data
        if kind == "declared_parcelable":
            return Parcelable(name, self.package, [], loc, structured=False, type_params=type_params)
        if kind == "enum":
            return Enum(name, self.package, [], loc, enumerators=[
                Enumerator(str(e.children[0]), self.expr(e.children[1]) if len(e.children) > 1 else None,
                           self.loc(e.children[0])) for e in rest if isinstance(e, Tree)])
        decl: Decl
        if kind == "interface":
            decl = Interface(name, self.package, [], loc, oneway=oneway)
        elif kind == "union":
            decl = UnionDecl(name, self.package, [], loc, type_params=type_params)
        else:
            decl = Parcelable(name, self.package, [], loc, type_params=type_params)
        for member in rest:
            assert isinstance(member, Tree)
            self.member(decl, member.children[0])  # type: ignore[arg-type]
        return decl

    def member(self, decl: Decl, m: Tree[Token]) -> None:
        if m.data == "nested":
            decl.nested.append(self.decl(m))
        elif m.data == "constant":
            leading = self.annotations(m.children[0])  # type: ignore[arg-type]
            type_ = self.type(m.children[2])
            type_.annotations = leading + type_.annotations
            decl.constants.append(Constant(type_, str(m.children[3]), self.expr(m.children[4]),
                                           self.loc(m.children[3])))
        elif m.data == "field":
            if isinstance(decl, Interface):
                raise _error(self.path, *self.pos(m.children[1]), "interfaces cannot have fields; "
                             f"did you mean a method or 'const'? ('{m.children[1]}')")
            default = self.expr(m.children[2]) if len(m.children) > 2 else None
            fields = decl.fields if isinstance(decl, Parcelable | UnionDecl) else []
            fields.append(Field(self.type(m.children[0]), str(m.children[1]), default, self.loc(m.children[1])))
        else:  # method or oneway_method
            kids = list(m.children)
            annotations: list[Annotation] = []
            oneway = m.data == "oneway_method"
            if oneway:
                annotations = self.annotations(kids[0])  # type: ignore[arg-type]
                kids = kids[2:]
            ret = self.type(kids[0])
            ret.annotations = annotations + ret.annotations
            name = kids[1]
            explicit = None
            if kids and isinstance(kids[-1], Token) and kids[-1].type == "INT_CODE":
                code_tok = kids.pop()
                explicit = int(str(code_tok))
                if explicit > 0x7FFFFFFF:
                    raise _error(self.path, *self.pos(code_tok), f"Could not parse int value: {code_tok}")
            args = [self.arg(a) for a in kids[2:] if isinstance(a, Tree)]
            if not isinstance(decl, Interface):
                raise _error(self.path, *self.pos(name), f"only interfaces have methods ('{name}')")
            decl.methods.append(Method(str(name), ret, args, oneway, explicit, self.loc(name)))

    def pos(self, tok: Any) -> tuple[int, int]:
        loc = self.loc(tok)
        return loc.line, loc.column

    def arg(self, node: Tree[Token]) -> Arg:
        kids = list(node.children)
        direction, explicit = "in", False
        if isinstance(kids[0], Token):
            direction, explicit = str(kids[0]), True
            kids = kids[1:]
        return Arg(direction, explicit, self.type(kids[0]), str(kids[1]), self.loc(kids[1]))

    def type(self, node: Any) -> TypeRef:
        annotations_node, qname_node, *rest = node.children
        args: list[TypeRef] = []
        dims: list[Expr | None] = []
        for r in rest:
            if r.data == "type_args":
                args = [self.type(t) for t in r.children if isinstance(t, Tree)]
            else:  # dims
                for dim in r.children:
                    if self.annotations(dim.children[0]):
                        raise _error(self.path, *self.pos(dim), "Annotations for arrays are not supported.")
                    dims.append(self.expr(dim.children[1]) if len(dim.children) > 1 else None)
        return TypeRef(self.qname(qname_node), args, dims, self.annotations(annotations_node), self.loc(qname_node))

    def expr(self, node: Any) -> Expr:
        loc = self.loc(node)
        if isinstance(node, Token):  # an unnamed alternative of "atom" never reaches here
            raise _error(self.path, loc.line, loc.column, f"unexpected {node}")
        kind = node.data
        if kind == "number":
            return _number(str(node.children[0]), loc)
        if kind == "string":
            return Literal(_unescape(str(node.children[0])[1:-1]), "String", loc)
        if kind == "char":
            return Literal(str(node.children[0])[1], "char", loc)
        if kind in ("true", "false"):
            return Literal(kind == "true", "boolean", loc)
        if kind == "ref":
            return Ref(self.qname(node.children[0]), loc)
        if kind == "array":
            return ArrayExpr([self.expr(c) for c in node.children], loc)
        if kind == "unary":
            return Unary(str(node.children[0]), self.expr(node.children[1]), loc)
        if kind == "binary":
            left, op, right = node.children
            return Binary(str(op), self.expr(left), self.expr(right), loc)
        raise _error(self.path, loc.line, loc.column, f"unexpected expression {kind}")


_INT = re.compile(r"(?P<digits>0[xX][0-9a-fA-F]+|[0-9]+)(?P<suffix>[lL]|u8)?")
_FLOAT = re.compile(r"([0-9]*\.[0-9]+|[0-9]+\.?)([eE][-+]?[0-9]+)?(?P<f>f)?")


def _number(text: str, loc: Location) -> Literal:
    """An int, long, byte (``u8``), float or double literal, typed as AOSP's lexer and
    ``AidlConstantValue::Integral`` type it: a hex literal is the bits of the smallest of int
    and long that holds it (``0xffffffff`` is int -1)."""
    from .model import AidlError

    m = _INT.fullmatch(text)
    if m:
        digits, suffix = m["digits"], m["suffix"]
        if digits[:2] in ("0x", "0X"):
            value = int(digits, 16)
            if suffix == "u8":
                if value > 0xFF:
                    raise AidlError(loc, f"Could not parse hexvalue: {text}")
                return Literal(value - 256 if value > 127 else value, "byte", loc)
            if suffix is None and value <= 0xFFFFFFFF:
                return Literal(value - (1 << 32) if value >= 1 << 31 else value, "int", loc)
            if value <= 0xFFFFFFFFFFFFFFFF:
                return Literal(value - (1 << 64) if value >= 1 << 63 else value, "long", loc)
            raise AidlError(loc, f"Could not parse hexvalue: {text}")
        value = int(digits)
        if suffix == "u8":
            if value > 0xFF:
                raise AidlError(loc, f"Could not parse integer: {text}")
            return Literal(value - 256 if value > 127 else value, "byte", loc)
        if suffix is None and value < 1 << 31:
            return Literal(value, "int", loc)
        if value < 1 << 63:
            return Literal(value, "long", loc)
        raise AidlError(loc, f"Could not parse integer: {text}")
    m = _FLOAT.fullmatch(text)
    if m:
        return Literal(float(text.rstrip("f")), "float" if m["f"] else "double", loc)
    raise AidlError(loc, f"Could not parse number: {text}")


_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "'": "'", "0": "\0", "b": "\b", "f": "\f"}


def _unescape(body: str) -> str:
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m[1], "\\" + m[1]), body)


def _attach(decl: Decl, parent: Decl | None, doc: Document) -> None:
    decl.parent = parent
    decl.document = doc
    for n in decl.nested:
        _attach(n, decl, doc)
