"""The AIDL compiler: what it accepts, the errors it gives (aidl's, as ``file:line:col: message``),
and the code it generates (typed, ruff-clean, the same from ``vbinder aidl`` and ``aidl.load``)."""

# ruff: noqa: N806 - the classes load() returns keep their AIDL names

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from vbinder_client import aidl
from vbinder_client.aidl.codegen import Options, generate
from vbinder_client.aidl.compiler import Compiler
from vbinder_client.aidl.model import MAX_USER_METHOD_ID, Interface

from tests.support import REPO

TYPES = REPO / "tests" / "client" / "aidl"
SM = REPO / "client" / "interfaces" / "android14"


def write(root: Path, rel: str, text: str) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def errors(tmp_path: Path, text: str, name: str = "p/IFoo.aidl") -> list[str]:
    path = write(tmp_path, name, text)
    with pytest.raises(aidl.AidlError) as e:
        Compiler([str(tmp_path)]).compile([str(path)])
    return [line.split(": ", 1)[0].rsplit(":", 2)[1:] + [line.split(": ", 1)[1]]  # type: ignore[list-item]
            for line in str(e.value).splitlines()]


def vbinder(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "vbinder", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=60)


# --- the language --------------------------------------------------------------------------------


def test_every_construct_of_the_issue_parses_and_resolves() -> None:
    docs = Compiler([str(TYPES)]).compile([str(TYPES / "vbinder/test/ITypes.aidl")])
    iface = docs[0].decls[0]
    assert isinstance(iface, Interface)
    assert [m.name for m in iface.methods][:3] == ["flipBoolean", "repeatByte", "repeatChar"]
    assert [c.value for c in iface.constants] == [42, 1 << 40, "types"]
    assert [m.code for m in iface.methods] == list(range(1, len(iface.methods) + 1))


def test_constant_expressions_follow_aidl(tmp_path: Path) -> None:
    path = write(tmp_path, "p/IC.aidl", """
        package p;
        interface IC {
            const int A = 1 + 2 * 3;            // 7
            const int B = (A << 2) | 0x1;       // 29
            const int C = -7 / 2;               // -3: C division truncates
            const int D = -7 % 3;               // -1
            const int E = 0xffffffff;           // -1: the bits of an int
            const long F = 0xffffffffff;        // a long
            const boolean G = A > 3 && !false;
            const byte H = 0xffu8;              // -1
            const String S = "a" + "b";
            const float X = 1.5f;
            const double Y = 2.5e3;
            const char Z = 'z';
            const int[] ARR = {1, 2, A};
        }
    """)
    (doc,) = Compiler().compile([str(path)])
    values = {"A": 7, "B": 29, "C": -3, "D": -1, "E": -1, "F": 0xFFFFFFFFFF, "G": True, "H": -1, "S": "ab",
              "X": 1.5, "Y": 2500.0, "Z": "z", "ARR": [1, 2, 7]}
    assert {c.name: c.value for c in doc.decls[0].constants} == values
    IC = aidl.load(str(path))  # and as Python constants
    assert {name: getattr(IC, name) for name in values} == {**values, "ARR": (1, 2, 7)}


def test_enums_count_from_the_previous_value(tmp_path: Path) -> None:
    path = write(tmp_path, "p/E.aidl", "package p; @Backing(type=\"int\") enum E { A, B = 10, C, D = A + C, }")
    (doc,) = Compiler().compile([str(path)])
    assert [(e.name, e.value) for e in doc.decls[0].enumerators] == [("A", 0), ("B", 10), ("C", 11), ("D", 11)]


def test_nested_types_and_generics_close_with_a_shift(tmp_path: Path) -> None:
    path = write(tmp_path, "p/IOuter.aidl", """
        package p;
        interface IOuter {
            parcelable Inner { List<String> names; }
            enum Mode { ON, OFF }
            Inner get(in List<Inner> all, Mode m);
            List<IBinder>[] bad();
        }
    """)
    with pytest.raises(aidl.AidlError, match="List\\[\\] is not supported"):
        Compiler().compile([str(path)])
    path.write_text(path.read_text().replace("            List<IBinder>[] bad();\n", ""))
    (doc,) = Compiler().compile([str(path)])
    assert [n.name for n in doc.decls[0].nested] == ["Inner", "Mode"]


# --- errors, as aidl gives them ------------------------------------------------------------------


def test_syntax_error_has_a_place(tmp_path: Path) -> None:
    assert errors(tmp_path, "package p;\ninterface IFoo {\n    void f(int a)\n}\n") == [
        ["4", "1", "syntax error, unexpected '}', expecting ';' or '='"]]


def test_unknown_type(tmp_path: Path) -> None:
    assert errors(tmp_path, "package p;\ninterface IFoo {\n    Nope f();\n}\n") == [
        ["3", "5", "Failed to resolve 'Nope'"]]


def test_missing_import(tmp_path: Path) -> None:
    assert errors(tmp_path, "package p;\nimport q.Gone;\ninterface IFoo {}\n") == [
        ["2", "1", "couldn't find import for class q.Gone"]]


def test_oneway_with_result_or_out_parameter(tmp_path: Path) -> None:
    assert errors(tmp_path, "package p;\ninterface IFoo {\n  oneway int f();\n  oneway void g(out int[] a);\n}\n") == [
        ["3", "14", "oneway method 'f' cannot return a value"],
        ["4", "27", "oneway method 'g' cannot have out parameters"]]
    assert errors(tmp_path, "package p;\noneway interface IFoo {\n  int f();\n}\n") == [
        ["3", "7", "oneway method 'f' cannot return a value"]]


def test_mixed_and_duplicate_codes(tmp_path: Path) -> None:
    assert errors(tmp_path, "package p;\ninterface IFoo {\n  void f() = 1;\n  void g();\n}\n") == [
        ["4", "8", "You must either assign id's to all methods or to none of them."]]
    assert errors(tmp_path, "package p;\ninterface IFoo {\n  void f() = 3;\n  void g() = 3;\n}\n") == [
        ["4", "8", "Found duplicate method id (3) for method: g"]]
    out = errors(tmp_path, f"package p;\ninterface IFoo {{\n  void f() = {MAX_USER_METHOD_ID + 1};\n}}\n")
    assert out[0][2].startswith(f"Found out of bounds id ({MAX_USER_METHOD_ID + 1}) for method: f")


def test_directions(tmp_path: Path) -> None:
    assert errors(tmp_path, "package p;\ninterface IFoo {\n  void f(int[] a);\n  void g(out int b);\n}\n") == [
        ["3", "16", "'int[]' can be an out type, so you must declare it as in, out, or inout."],
        ["4", "18", "'b' can't be an out parameter because int can only be an in parameter."]]


def test_other_mistakes(tmp_path: Path) -> None:
    out = errors(tmp_path, "package p;\n@Foo interface IFoo {\n  void f(@nullable int a);\n}\n")
    assert [o[:2] for o in out] == [["2", "1"], ["3", "20"]]
    assert out[0][2].startswith("'Foo' is not a recognized annotation")
    assert out[1][2] == "Primitive type cannot get nullable annotation"
    assert errors(tmp_path, "package p;\ninterface IBar {}\n") == [
        ["2", "11", "IBar should be declared in a file called IBar.aidl"]]


def test_cli_prints_errors_and_fails(tmp_path: Path) -> None:
    write(tmp_path, "p/IFoo.aidl", "package p;\ninterface IFoo {\n  oneway int f();\n}\n")
    r = vbinder("aidl", "-o", str(tmp_path / "out"), "p/IFoo.aidl", cwd=tmp_path)
    assert r.returncode == 1
    assert r.stderr == "p/IFoo.aidl:3:14: oneway method 'f' cannot return a value\n"
    assert not (tmp_path / "out").exists()


# --- the generated code ----------------------------------------------------------------------------


def test_cli_writes_a_package_per_aidl_package_and_the_code_is_clean(tmp_path: Path) -> None:
    files = sorted(str(p) for p in (TYPES / "vbinder" / "test").glob("*.aidl"))
    r = vbinder("aidl", "-I", str(TYPES), "-o", str(tmp_path), *files)
    assert r.returncode == 0, r.stderr
    names = sorted(p.name for p in (tmp_path / "vbinder" / "test").iterdir())
    assert names == ["Color.py", "ICallback.py", "IFiles.py", "ITypes.py", "Item.py", "Level.py", "Shape.py", "Size.py",
                     "__init__.py"]
    ruff = subprocess.run([sys.executable, "-m", "ruff", "check", "--config", str(REPO / "pyproject.toml"),
                           str(tmp_path)], capture_output=True, text=True)
    assert ruff.returncode == 0, ruff.stdout
    # mypy --strict, with vbinder_client importable by its name
    (tmp_path / "path").mkdir()
    os.symlink(REPO / "client", tmp_path / "path" / "vbinder_client")
    os.symlink(REPO / "vbinder", tmp_path / "path" / "vbinder")
    mypy = subprocess.run([sys.executable, "-m", "mypy", "--strict", "--no-incremental", "--follow-imports=silent",
                           "-p", "vbinder.test"], capture_output=True, text=True, cwd=tmp_path,
                          env={**os.environ, "MYPYPATH": str(tmp_path / "path")}, timeout=300)
    assert mypy.returncode == 0, mypy.stdout
    source = (tmp_path / "vbinder" / "test" / "ITypes.py").read_text()
    assert "class ITypes(_r.Interface):" in source and "ITypes.Stub = _ITypesStub" in source
    assert "    def repeatInt(self, v: int) -> int:" in source
    assert "    TRANSACTION_repeatInt: Final = 4" in source


def test_load_gives_the_classes_the_cli_writes() -> None:
    path = str(TYPES / "vbinder/test/ITypes.aidl")
    ITypes = aidl.load(path, include=[str(TYPES)])
    assert aidl.load(path, include=[str(TYPES)]) is ITypes
    assert ITypes.DESCRIPTOR == "vbinder.test.ITypes" and ITypes.ANSWER == 42 and ITypes.NAME == "types"
    assert ITypes.TRANSACTION_fail == 36  # the 36th method
    (doc,) = Compiler([str(TYPES)]).compile([path])
    expected = generate(doc, Options(prefix=ITypes.__module__.rsplit(".", 3)[0]))
    assert expected is not None and "class ITypes(_r.Interface):" in expected
    Item = sys.modules[ITypes.__module__].Item
    item = Item()  # C++'s defaults where AIDL gives none
    assert (item.count, item.label, item.note, item.weights) == (1, "item", None, [])
    assert (item.tag.mark, item.tag.on) == ("x", False)
    assert item.color.name == "GREEN"


def test_declared_parcelables_are_the_users_classes(tmp_path: Path) -> None:
    write(tmp_path, "p/Blob.aidl", "package p;\nparcelable Blob;\n")
    path = write(tmp_path, "p/IBlobs.aidl", "package p;\nimport p.Blob;\ninterface IBlobs { Blob get(in Blob b); }\n")

    class Blob:
        def __init__(self) -> None:
            self.text = ""

        def write_to_parcel(self, parcel: aidl.runtime.Parcel) -> None:
            parcel.write_string16(self.text)

        def read_from_parcel(self, parcel: aidl.runtime.Parcel) -> None:
            self.text = parcel.read_string16() or ""

    IBlobs = aidl.load(str(path), parcelables={"p.Blob": Blob})
    assert sys.modules[IBlobs.__module__].Blob is Blob
    write(tmp_path, "q/Blob.aidl", "package q;\nparcelable Blob;\n")
    other = write(tmp_path, "q/IBlobs.aidl", "package q;\nimport q.Blob;\ninterface IBlobs { Blob get(in Blob b); }\n")
    with pytest.raises(aidl.AidlError, match="parcelable q.Blob is declared"):
        aidl.load(str(other))


def test_versioned_interfaces_answer_their_version_and_hash(tmp_path: Path) -> None:
    path = write(tmp_path, "p/IV.aidl", "package p;\ninterface IV { void f(); }\n")
    IV = aidl.load(str(path), version=3, hash="abc123")
    # aidl_to_common.h: kGetInterfaceVersionId = 0xfffffe and kGetInterfaceHashId = 0xfffffd, after
    # FIRST_CALL_TRANSACTION (1)
    assert (IV.TRANSACTION_getInterfaceVersion, IV.TRANSACTION_getInterfaceHash) == (0xFFFFFF, 0xFFFFFE)
    stub = IV.Stub()
    proxy = IV.Stub._aidl_proxy(stub)  # a proxy over the local object: the bytes go through the stub
    assert (proxy.getInterfaceVersion(), proxy.getInterfaceHash()) == (3, "abc123")


@pytest.mark.parametrize("release", [11, 12, 13, 14, 15, 16])
def test_the_service_managers_modules_are_what_the_compiler_writes(tmp_path: Path, release: int) -> None:
    """client/interfaces/androidNN holds vbinder aidl's output for the .aidl files beside it."""
    sm = SM.parent / f"android{release}"
    files = sorted(str(p) for p in (sm / "android" / "os").glob("*.aidl"))
    r = vbinder("aidl", "--prefix", f"vbinder_client.interfaces.android{release}", "-o", str(tmp_path), *files)
    assert r.returncode == 0, r.stderr
    written = sorted(p.name for p in (tmp_path / "android" / "os").glob("*.py"))
    assert written == sorted(p.name for p in (sm / "android" / "os").glob("*.py"))
    for p in (tmp_path / "android" / "os").glob("*.py"):
        assert p.read_text() == (sm / "android" / "os" / p.name).read_text(), f"{p.name} is stale: regenerate it"
