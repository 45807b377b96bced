"""vbinder's AIDL compiler against AOSP's own: Debian's ``aidl`` package (Android 10's compiler,
installed by scripts/bootstrap.sh) compiles the same files with ``--lang=cpp`` and ``--lang=java``.

For every method, the transaction code and the one-way flag must agree with both backends, and
the Parcel calls of the C++ proxy (``BpFoo::method``: what it writes to ``_aidl_data`` and reads
from ``_aidl_reply``, in order) must match what vbinder's proxy writes and reads. Android 10's
aidl predates constant expressions, enums and unions, so it gets the files in its dialect:
constants removed (they put nothing on the wire), unions as parcelables (the C++ backend reads and
writes both with readParcelable/writeParcelable); the wire tests (test_aidl_wire.py,
test_service_manager_versions.py) cover the rest. Every Android release's IServiceManager is here.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from vbinder_client.aidl.codegen import Options, generate
from vbinder_client.aidl.compiler import Compiler
from vbinder_client.aidl.model import Interface

from tests.support import AIDL_SKIPPED, REPO

TESTS = REPO / "tests" / "client" / "aidl"
SM = REPO / "client" / "interfaces" / "android14"
RELEASES = (11, 12, 13, 14, 15, 16)
EXAMPLES = REPO / "examples" / "aidl"

CASES = [  # (include root, the interface's file)
    (TESTS, "vbinder/compat/ICompat.aidl"),
    (TESTS, "vbinder/compat/IExplicit.aidl"),
    (TESTS, "vbinder/compat/IListener.aidl"),
    (TESTS, "vbinder/test/ICallback.aidl"),
    (TESTS, "vbinder/test/IFiles.aidl"),
    *((REPO / "client" / "interfaces" / f"android{v}", "android/os/IServiceManager.aidl") for v in RELEASES),
    (SM, "android/os/IServiceCallback.aidl"),
    (SM, "android/os/IClientCallback.aidl"),
    (EXAMPLES, "vbinder/example/IEcho.aidl"),
]

# A C++ Parcel call, or a vbinder one, as the kind of value it puts on the wire.
CPP = {
    "writeInt32": "i32", "readInt32": "i32", "writeInt64": "i64", "readInt64": "i64", "writeBool": "bool",
    "readBool": "bool", "writeByte": "byte", "readByte": "byte", "writeChar": "char", "readChar": "char",
    "writeFloat": "f32", "readFloat": "f32", "writeDouble": "f64", "readDouble": "f64",
    "writeString16": "s16", "readString16": "s16", "writeUtf8AsUtf16": "s16", "readUtf8FromUtf16": "s16",
    "writeByteVector": "bytes", "readByteVector": "bytes", "writeVectorSize": "length",
    "writeInt32Vector": "[i32]", "readInt32Vector": "[i32]", "writeInt64Vector": "[i64]", "readInt64Vector": "[i64]",
    "writeString16Vector": "[s16]", "readString16Vector": "[s16]", "writeUtf8VectorAsUtf16Vector": "[s16]",
    "readUtf8VectorFromUtf16Vector": "[s16]", "writeParcelable": "parcelable", "readParcelable": "parcelable",
    "writeNullableParcelable": "parcelable", "writeParcelableVector": "[parcelable]",
    "readParcelableVector": "[parcelable]", "writeStrongBinder": "binder", "readStrongBinder": "binder",
    "readNullableStrongBinder": "binder", "writeStrongBinderVector": "[binder]", "readStrongBinderVector": "[binder]",
    "writeUniqueFileDescriptor": "fd", "readUniqueFileDescriptor": "fd",
}
PY = {
    "write_int32": "i32", "read_int32": "i32", "write_int64": "i64", "read_int64": "i64", "write_bool": "bool",
    "read_bool": "bool", "write_byte": "byte", "read_byte": "byte", "write_char": "char", "read_char": "char",
    "write_float": "f32", "read_float": "f32", "write_double": "f64", "read_double": "f64",
    "write_string16": "s16", "read_string16": "s16", "write_utf8_as_utf16": "s16", "read_utf8_from_utf16": "s16",
    "read_string": "s16", "read_utf8": "s16", "write_byte_array": "bytes", "read_byte_array": "bytes",
    "read_bytes": "bytes", "read_bytes_into": "bytes", "write_out_array_size": "length",
    "write_parcelable": "parcelable", "read_parcelable": "parcelable", "read_parcelable_into": "parcelable",
    "parcelable_reader": "parcelable", "write_strong_binder": "binder", "read_binder": "binder",
    "read_nullable_binder": "binder", "read_interface": "binder", "write_interface": "binder",
    "write_file_descriptor": "fd", "read_file_descriptor": "fd", "write_pfd": "parcelable", "read_pfd": "parcelable",
}
_ARRAYS = ("write_array", "read_array", "read_array_into")


def aidl_tool() -> str:
    path = shutil.which("aidl")
    if not path:
        why = ("Debian's aidl package is missing (scripts/bootstrap.sh --test installs it as root; or: "
               "apt-get install aidl): vbinder's AIDL compiler was not compared with AOSP's")
        if why not in AIDL_SKIPPED:
            AIDL_SKIPPED.append(why)
        pytest.skip(why)
    return path


def android10_dialect(src: Path, dst: Path) -> None:
    """Copy the .aidl files under ``src`` to ``dst`` without their constants (Android 10's aidl
    has no constant expressions)."""
    for f in src.rglob("*.aidl"):
        out = dst / f.relative_to(src)
        out.parent.mkdir(parents=True, exist_ok=True)
        text = re.sub(r"\bconst\b[^;]*;", "", f.read_text())
        out.write_text(re.sub(r"^union ", "parcelable ", text, flags=re.M))


def cpp_proxy(source: str) -> dict[str, tuple[int, bool, list[str]]]:
    """Per method of the C++ proxy: (code, one-way, the kinds it writes and reads, in order)."""
    methods = {}
    for m in re.finditer(r"::android::binder::Status Bp\w+::(\w+)\(.*?\n}\n", source, re.S):
        body = m.group(0)
        t = re.search(r"transact\(::android::IBinder::FIRST_CALL_TRANSACTION \+ (\d+) /\* (\w+) \*/, "
                      r"_aidl_data, &_aidl_reply(, ::android::IBinder::FLAG_ONEWAY)?\)", body)
        assert t and t.group(2) == m.group(1), body
        calls = re.findall(r"_aidl_(?:data|reply)\.(\w+)\(", body)
        kinds = [CPP[c] for c in calls if c != "writeInterfaceToken"]
        methods[m.group(1)] = (1 + int(t.group(1)), bool(t.group(3)), kinds)
    return methods


def java_codes(source: str) -> dict[str, tuple[int, bool]]:
    codes = {name: 1 + int(n) for name, n in re.findall(
        r"static final int TRANSACTION_(\w+) = \(android\.os\.IBinder\.FIRST_CALL_TRANSACTION \+ (\d+)\);", source)}
    oneway = set(re.findall(r"mRemote\.transact\(Stub\.TRANSACTION_(\w+), _data, null, "
                            r"android\.os\.IBinder\.FLAG_ONEWAY\)", source))
    return {name: (code, name in oneway) for name, code in codes.items()}


def py_proxy(source: str, iface: Interface) -> dict[str, tuple[bool, list[str]]]:
    """Per method of vbinder's proxy: (one-way, the kinds it writes and reads, in order)."""
    proxy = source[source.index(f"class _{iface.name}Proxy("):source.index(f"class _{iface.name}Stub(")]
    methods = {}
    for m in re.finditer(r"    def (\w+)\(self.*?(?=\n    def |\Z)", proxy, re.S):
        kinds = []
        for line in m.group(0).splitlines()[1:]:
            op = re.search(r"_r\.(\w+)\((?:data|reply)\b|\b(?:data|reply)\.(\w+)\(", line)
            if not op:
                continue
            name = op.group(1) or op.group(2)
            if name in _ARRAYS:
                inner = re.findall(r"(?:Parcel|_r)\.(\w+)", line[op.end():])
                kinds.append(f"[{PY[inner[0]]}]")
            else:
                kinds.append(PY[name])
        methods[m.group(1)] = ("self._aidl_send(" in m.group(0), kinds)
    return methods


@pytest.mark.parametrize(("root", "rel"), CASES, ids=[f"{c[0].name}-{c[1].rsplit('/', 1)[1]}" for c in CASES])
def test_codes_order_and_parcel_calls_agree_with_aosps_aidl(tmp_path: Path, root: Path, rel: str) -> None:
    tool = aidl_tool()
    src = tmp_path / "src"
    android10_dialect(root, src)
    for lang in ("cpp", "java"):
        r = subprocess.run([tool, f"--lang={lang}", "-I", str(src), "-o", str(tmp_path / lang), "-h",
                            str(tmp_path / "h"), str(src / rel)] if lang == "cpp" else
                           [tool, f"--lang={lang}", "-I", str(src), "-o", str(tmp_path / lang), str(src / rel)],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
    (doc,) = Compiler([str(root)]).compile([str(root / rel)])
    iface = doc.decls[0]
    assert isinstance(iface, Interface)
    ours = {m.name: (m.code, m.oneway or iface.oneway) for m in iface.methods}

    cpp = cpp_proxy((tmp_path / "cpp" / rel.replace(".aidl", ".cpp")).read_text())
    java = java_codes((tmp_path / "java" / rel.replace(".aidl", ".java")).read_text())
    assert {n: (c, o) for n, (c, o, _k) in cpp.items()} == ours
    assert java == ours
    # the same order of declaration (Java declares the codes in method order)
    java_order = re.findall(r"static final int TRANSACTION_(\w+) =",
                            (tmp_path / "java" / rel.replace(".aidl", ".java")).read_text())
    assert java_order == [m.name for m in iface.methods]

    source = generate(doc, Options())
    assert source is not None
    py = py_proxy(source, iface)
    for name, (_code, oneway, kinds) in cpp.items():
        assert py[name] == (oneway, kinds), f"{name}: C++ {kinds}, vbinder {py[name][1]}"
