"""The compiled hot path is used only while it matches the sources (vbinder/native.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from vbinder import native

REPO = Path(__file__).resolve().parent.parent


def _check(monkeypatch: pytest.MonkeyPatch, build: Path, sources: dict[str, str], tag: str | None = None) -> bool:
    (build / native.MANIFEST).write_text(json.dumps({"interpreter": tag or native.interpreter_tag(),
                                                     "sources": sources}))
    monkeypatch.setattr(native, "BUILD_DIR", build)
    return native._check()


def test_a_matching_manifest_is_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VBINDER_PURE", raising=False)
    sources = {"vbinder/abi.py": native.source_hash(REPO / "vbinder/abi.py")}
    assert _check(monkeypatch, tmp_path, sources)


def test_an_edited_source_falls_back_to_pure_python(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VBINDER_PURE", raising=False)
    assert not _check(monkeypatch, tmp_path, {"vbinder/abi.py": "0" * 64})


def test_another_interpreter_or_vbinder_pure_falls_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sources = {"vbinder/abi.py": native.source_hash(REPO / "vbinder/abi.py")}
    monkeypatch.delenv("VBINDER_PURE", raising=False)
    assert not _check(monkeypatch, tmp_path, sources, tag="cpython-39-linux")
    monkeypatch.setenv("VBINDER_PURE", "1")
    assert not _check(monkeypatch, tmp_path, sources)


def test_no_build_or_a_garbled_manifest_falls_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VBINDER_PURE", raising=False)
    monkeypatch.setattr(native, "BUILD_DIR", tmp_path / "absent")
    assert not native._check()
    (tmp_path / native.MANIFEST).write_text("{not json")
    monkeypatch.setattr(native, "BUILD_DIR", tmp_path)
    assert not native._check()


def test_modules_come_from_the_build_exactly_when_it_is_active() -> None:
    """In a fresh interpreter: the driver's modules are the compiled ones iff the build is current."""
    code = ("import vbinder.native as n, vbinder.abi as a, vbinder.driver.transaction as t;"
            "print(n.active(), a.__file__.endswith('.py'), t.__file__.endswith('.py'))")
    for env_pure in ("0", "1"):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                             env={"VBINDER_PURE": env_pure, "PATH": "/usr/bin:/bin"}, cwd=REPO).stdout.split()
        active = out[0] == "True"
        assert out[1:] == [str(not active)] * 2
        if env_pure == "1":
            assert not active


@pytest.mark.skipif(not os.environ.get("VBINDER_REQUIRE_NATIVE"), reason="VBINDER_REQUIRE_NATIVE (CI) not set")
def test_the_compiled_build_is_in_use_where_required() -> None:
    """CI sets VBINDER_REQUIRE_NATIVE: there, a failed build must fail the run, not go pure quietly."""
    if os.environ.get("VBINDER_PURE", "") not in ("", "0"):
        pytest.skip("the pure-Python pass")
    assert native.active(), f"no current compiled build in {native.BUILD_DIR} (see bootstrap's output)"
