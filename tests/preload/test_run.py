"""``vbinder run`` itself, and the paths the library redirects.

``programs/paths.c`` names the devices every way a program may (open and its 64-bit, *at and
fortified forms; stat, lstat, fstatat, statx, the __xstat functions of older binaries; access;
relative paths; the mount's own path) and prints what it got: the devices must read as the
kernel's character devices and answer BINDER_VERSION, and nothing else may change.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.preload.conftest import HERE, vbinder_run
from tests.support import daemon_env
from vbinder import preload

DEVICE = {"binder": "chr 10:124 666", "hwbinder": "chr 10:123 666", "vndbinder": "chr 10:122 666"}


def compile_c(source: Path, out: Path, *flags: str) -> Path:
    subprocess.run(["gcc", "-O2", "-Wall", "-Werror", *flags, "-o", str(out), str(source)], check=True)
    return out


@pytest.mark.parametrize("fortified", [False, True], ids=["plain", "fortified"])
def test_every_path_form_reaches_the_device(fortified: bool, tmp_path: Path, library: Path,
                                            vbinder_mount: Path) -> None:
    flags = ("-D_FORTIFY_SOURCE=2",) if fortified else ()
    exe = compile_c(HERE / "programs" / "paths.c", tmp_path / "paths", *flags)
    if fortified:
        assert "__open_2" in subprocess.run(["nm", "-D", str(exe)], capture_output=True, text=True).stdout
    r = vbinder_run(vbinder_mount, [str(exe), str(vbinder_mount), *(["fortified"] if fortified else [])])
    assert r.returncode == 0, r.stderr
    lines = dict(line.split(": ", 1) for line in r.stdout.splitlines())
    names = {"/dev/binder": "binder", "/dev/hwbinder": "hwbinder", "/dev/vndbinder": "vndbinder",
             "/dev/binderfs/binder": "binder", "//dev/./binder": "binder", "/dev/../dev/binder": "binder",
             "MOUNT/dev/binder": "binder"}
    for path, name in names.items():
        for call in ("stat", "lstat", "fstatat", "__xstat", "__lxstat", "statx"):
            assert lines[f"{call} {path}"] == DEVICE[name], (call, path)
        for call in ("access", "faccessat"):
            assert lines[f"{call} {path}"] == "ok", (call, path)
        for call in ("open", "open64", "openat", "open(flags)"):
            assert lines[f"{call} {path}"] == f"fstat {DEVICE[name]}, version 8", (call, path)
    for path in ("/dev/nosuchbinder", "/dev/binderfs/nosuch"):
        assert lines[f"stat {path}"] == "ENOENT" and lines[f"open {path}"] == "ENOENT"
    # untouched: /dev/null is the host's, and no binder
    assert lines["stat /dev/null"] == "chr 1:3 666"
    assert lines["open /dev/null"] == "fstat chr 1:3 666, version -25"  # ENOTTY
    for relative in ("openat(/dev fd) binder", "open binder in /dev"):
        assert lines[relative] == f"fstat {DEVICE['binder']}, version 8"
    assert lines["stat binder in /dev"] == lines["fstatat(/dev fd) binder"] == DEVICE["binder"]
    assert lines["__fxstat"] == DEVICE["binder"]


def test_ld_preload_by_hand(tmp_path: Path, library: Path, vbinder_mount: Path) -> None:
    """--print-library gives what LD_PRELOAD needs; VBINDER_MOUNT names the mount."""
    r = subprocess.run([sys.executable, "-m", "vbinder", "run", "--print-library"], capture_output=True, text=True,
                       env=daemon_env())
    assert r.returncode == 0, r.stderr
    path = Path(r.stdout.strip())
    assert path == library and path.is_file()
    exe = compile_c(HERE / "programs" / "paths.c", tmp_path / "paths")
    env = {**os.environ, "LD_PRELOAD": str(path), "VBINDER_MOUNT": str(vbinder_mount)}
    r = subprocess.run([str(exe), str(vbinder_mount)], capture_output=True, text=True, env=env)
    assert f"open /dev/binder: fstat {DEVICE['binder']}, version 8" in r.stdout.splitlines()


def test_the_environment_reaches_every_process_started(vbinder_mount: Path, library: Path) -> None:
    r = vbinder_run(vbinder_mount, ["sh", "-c", 'sh -c "echo \\$VBINDER_MOUNT; echo \\$LD_PRELOAD"; exit 7'])
    assert r.returncode == 7
    mount, ld_preload = r.stdout.splitlines()
    assert mount == str(vbinder_mount)
    assert ld_preload.split()[0] == str(library)


def test_a_static_program_is_refused_with_the_reason(tmp_path: Path, vbinder_mount: Path) -> None:
    source = tmp_path / "static.c"
    source.write_text("int main(void) { return 0; }\n")
    exe = compile_c(source, tmp_path / "static", "-static")
    r = vbinder_run(vbinder_mount, [str(exe)])
    assert r.returncode == 1
    assert "is statically linked" in r.stderr and "vbinder run serves dynamically linked" in r.stderr


def test_a_32_bit_program_is_refused_with_the_reason(tmp_path: Path, vbinder_mount: Path) -> None:
    exe = tmp_path / "prog32"
    exe.write_bytes(b"\x7fELF\x01\x01\x01" + b"\0" * 57)  # an ELF32 header is enough to tell
    exe.chmod(0o755)
    r = vbinder_run(vbinder_mount, [str(exe)])
    assert r.returncode == 1 and "is a 32-bit program" in r.stderr


def test_usage_errors(tmp_path: Path, vbinder_mount: Path) -> None:
    r = vbinder_run(vbinder_mount, [])
    assert r.returncode == 2 and "no PROGRAM" in r.stderr
    r = vbinder_run(vbinder_mount, ["no-such-program-here"])
    assert r.returncode == 127 and "command not found" in r.stderr
    r = subprocess.run([sys.executable, "-m", "vbinder", "run", "--mount", str(tmp_path), "true"],
                       capture_output=True, text=True, env=daemon_env())
    assert r.returncode == 1 and "not a vbinder mount" in r.stderr


def test_bootstrap_built_a_current_library() -> None:
    """`make`'s bootstrap builds the library, so that vbinder run needs no compiler."""
    assert preload.current(preload.BUILD_DIR), f"no current build in {preload.BUILD_DIR}: run make bootstrap"
