"""The AIDL grammar (Android 14's ``aidl_language_y.yy`` and ``aidl_language_l.ll``), for lark.

A LALR(1) grammar with lark's contextual lexer, which lexes ``>>`` as two ``>`` where a type's
argument list may close (``List<List<String>>``) and as a shift inside constant expressions.
Annotations before a member belong to the member's first type, as in AOSP's grammar; the parser
module moves them where AOSP puts them.
"""

from __future__ import annotations

from typing import Final

GRAMMAR: Final = r"""
start: package? import_* decl*

package: "package" qname ";"
import_: "import" qname ";"
qname: NAME ("." NAME)*

annotations: annotation*
annotation: ANNOTATION ("(" [expr | param ("," param)*] ")")?
param: NAME "=" expr

decl: annotations decl_body
?decl_body: declared_parcelable | structured_parcelable | interface | enum | union
declared_parcelable: PARCELABLE qname type_params? header* ";"
header: (CPP_HEADER | NDK_HEADER | RUST_TYPE) STRING
structured_parcelable: PARCELABLE qname type_params? "{" member* "}"
interface: ONEWAY? INTERFACE qname ("{" member* "}" | ";")
enum: ENUM qname "{" enumerator ("," enumerator)* ","? "}"
enumerator: NAME ("=" expr)?
union: UNION qname type_params? "{" member* "}"
type_params: LT NAME ("," NAME)* GT

member: field | constant | method | nested | oneway_method
field: type NAME ("=" expr)? ";"
constant: annotations CONST type NAME "=" expr ";"
method: type NAME "(" [arg ("," arg)*] ")" ("=" INT_CODE)? ";"
oneway_method: annotations ONEWAY type NAME "(" [arg ("," arg)*] ")" ("=" INT_CODE)? ";"
nested: annotations decl_body
arg: (IN | OUT | INOUT)? type NAME

type: annotations qname type_args? dims
type_args: LT type ("," type)* GT
dims: dim*
dim: annotations "[" expr? "]"

?expr: lor
?lor: land | lor LOR land -> binary
?land: bor | land LAND bor -> binary
?bor: bxor | bor BOR bxor -> binary
?bxor: band | bxor XOR band -> binary
?band: equality | band BAND equality -> binary
?equality: relation | equality EQ_OP relation -> binary
?relation: shift | relation (LT | GT | REL_OP) shift -> binary
?shift: sum | shift (LSHIFT | RSHIFT) sum -> binary
?sum: product | sum SUM_OP product -> binary
?product: unary | product MUL_OP unary -> binary
?unary: atom | (SUM_OP | UNARY_OP) unary -> unary
?atom: NUMBER -> number
     | STRING -> string
     | CHAR -> char
     | TRUE -> true
     | FALSE -> false
     | qname -> ref
     | "(" expr ")"
     | "{" [expr ("," expr)* ","?] "}" -> array

PARCELABLE: "parcelable"
INTERFACE: "interface"
ONEWAY: "oneway"
ENUM: "enum"
UNION: "union"
CONST: "const"
TRUE: "true"
FALSE: "false"
IN: "in"
OUT: "out"
INOUT: "inout"
CPP_HEADER: "cpp_header"
NDK_HEADER: "ndk_header"
RUST_TYPE: "rust_type"
NAME: /[A-Za-z_][A-Za-z0-9_]*/
ANNOTATION: /@[A-Za-z_][A-Za-z0-9_]*/
INT_CODE: /[0-9]+/
NUMBER: /0[xX][0-9a-fA-F]+[A-Za-z0-9_]*|([0-9]*\.[0-9]+|[0-9]+\.?)([eE][-+]?[0-9]+)?[A-Za-z0-9_]*/
STRING: /"([^"\\\n]|\\.)*"/
CHAR: /'[^'\n]'/
LOR: "||"
LAND: "&&"
BOR: "|"
XOR: "^"
BAND: "&"
EQ_OP: "==" | "!="
LT: "<"
GT: ">"
REL_OP: "<=" | ">="
LSHIFT: "<<"
RSHIFT: ">>"
SUM_OP: "+" | "-"
MUL_OP: "*" | "/" | "%"
UNARY_OP: "!" | "~"

COMMENT: /\/\/[^\n]*/ | /\/\*(.|\n)*?\*\//
%import common.WS
%ignore WS
%ignore COMMENT
"""
