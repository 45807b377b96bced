#!/usr/bin/env bash
# Install what vbinder needs, and only what is missing; fast when everything is there.
#
#   system:  fuse3 (fusermount3), libfuse3-dev + pkg-config + gcc + python3-dev (pyfuse3 builds
#            from source), python3 >= 3.11 with venv.      apt-get, as root (or with sudo -n)
#   python:  .venv with `pip install -e '.[test]'`, redone when pyproject.toml changes.
#   native:  the per-call modules compiled with mypyc into build/native/ (scripts/build_native.py),
#            redone when their sources change; without it vbinder runs in pure Python.
#   preload: the preload library of `vbinder run` (vbinder/preload/*.c, gcc + linux-libc-dev's
#            <linux/android/binder.h>) into build/preload/, redone when its sources change.
#   --test:  also what the tests' oracle VM needs (tests/kernel/vm.py: qemu, busybox-static, cpio,
#            kmod, linux-libc-dev, bc) and aidl (Android's AIDL compiler, which the tests compare
#            vbinder's with), and what the traffic tools' tests drive (graphviz's dot for vbinder
#            graph, chromium for the diagram's page, tmux for vbinder top); where they cannot be
#            installed those tests are skipped, and the test run says so.
#
# Environment: VENV (default .venv), PYTHON (the interpreter for the venv; default: the first
# python3.11+ found on PATH).
set -euo pipefail
cd "$(dirname "$0")/.."

TEST=0
[[ ${1:-} == --test ]] && TEST=1
VENV=${VENV:-.venv}
STAMP=$VENV/.vbinder-bootstrap

say() { echo "bootstrap: $*" >&2; }

# -- the interpreter ---------------------------------------------------------------------------------

py_ok() {  # a python >= 3.11?
    "$1" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null
}

find_python() {
    if [[ -n ${PYTHON:-} ]]; then
        echo "$PYTHON"
        return
    fi
    local p
    for p in python3 python3.13 python3.12 python3.11; do
        if command -v "$p" >/dev/null && py_ok "$p"; then
            command -v "$p"
            return
        fi
    done
}

# -- system packages ---------------------------------------------------------------------------------

missing_packages() {  # the apt packages whose files are missing, one per line
    local py=$1
    command -v fusermount3 >/dev/null || echo fuse3
    command -v pkg-config >/dev/null || echo pkg-config
    if command -v pkg-config >/dev/null && ! pkg-config --exists fuse3; then echo libfuse3-dev; fi
    command -v gcc >/dev/null || echo gcc
    [[ -f /usr/include/stdio.h ]] || echo libc6-dev
    [[ -f /usr/include/linux/android/binder.h ]] || echo linux-libc-dev  # the preload library's
    if [[ -z $py ]]; then
        echo python3 python3-venv python3-dev
        return
    fi
    # Only a venv that still has to be built needs the headers and ensurepip.
    if ! venv_ready; then
        "$py" -c 'import sysconfig, os, sys; sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))' \
            || echo python3-dev
        "$py" -c 'import ensurepip, venv' 2>/dev/null || echo python3-venv
    fi
}

oracle_missing_packages() {  # what tests/kernel/vm.py's VM needs, one per line
    command -v qemu-system-x86_64 >/dev/null || echo qemu-system-x86
    command -v cpio >/dev/null || echo cpio
    command -v depmod >/dev/null || echo kmod
    command -v bc >/dev/null || echo bc
    [[ -f /usr/include/linux/android/binder.h ]] || echo linux-libc-dev
    dpkg-query -W -f='${Status}' busybox-static 2>/dev/null | grep -q 'ok installed' || echo busybox-static
}

can_install() {
    [[ $(id -u) -eq 0 ]] || { command -v sudo >/dev/null && sudo -n true 2>/dev/null; }
}

install_packages() {
    local -a pkgs=("$@")
    local -a sudo=()
    if [[ $(id -u) -ne 0 ]]; then
        if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
            sudo=(sudo -n)
        else
            say "missing system packages: ${pkgs[*]}"
            say "as root, run:  apt-get install -y ${pkgs[*]}"
            say "(a user other than root also needs read/write access to /dev/fuse; and, for"
            say " 'vbinder mount --allow-other', user_allow_other in /etc/fuse.conf)"
            exit 1
        fi
    fi
    if ! command -v apt-get >/dev/null; then
        say "missing: ${pkgs[*]} (as Debian names them); no apt-get here: install their equivalents"
        exit 1
    fi
    say "installing ${pkgs[*]}"
    export DEBIAN_FRONTEND=noninteractive
    "${sudo[@]}" apt-get update -q </dev/null >&2
    "${sudo[@]}" apt-get install -y -q --no-install-recommends "${pkgs[@]}" </dev/null >&2
}

# -- the venv ---------------------------------------------------------------------------------------

stamp_value() {  # what the venv was built from: pyproject.toml and where this checkout is
    { cat pyproject.toml; pwd; } | sha256sum | cut -d' ' -f1
}

venv_ready() {
    [[ -x $VENV/bin/python && -f $STAMP && $(cat "$STAMP") == "$(stamp_value)" ]] \
        && "$VENV/bin/python" -c '' 2>/dev/null
}

# -- main -------------------------------------------------------------------------------------------

PY=$(find_python)
mapfile -t missing < <(missing_packages "$PY" | tr ' ' '\n' | sort -u)
if ((TEST)) && ! command -v aidl >/dev/null; then
    if can_install; then
        missing+=(aidl)
    else
        say "the tests compare vbinder's AIDL compiler with Android's: as root, apt-get install -y aidl;"
        say "without it that comparison is skipped, and the test run says so"
    fi
fi
tools_missing_packages() {  # what tests/integration/test_traffic.py drives, one per line
    command -v dot >/dev/null || echo graphviz
    command -v chromium >/dev/null || echo chromium
    command -v tmux >/dev/null || echo tmux
}
if ((TEST)); then
    mapfile -t tools < <(tools_missing_packages)
    if ((${#tools[@]})); then
        if can_install; then
            missing+=("${tools[@]}")
        else
            say "the tests of vbinder graph, trace diagram and top need: ${tools[*]} (as root: apt-get install -y"
            say "${tools[*]}); without them those tests are skipped, and the test run says so"
        fi
    fi
fi
if ((TEST)) && command -v dpkg-query >/dev/null; then
    mapfile -t oracle < <(oracle_missing_packages)
    if ((${#oracle[@]})); then
        if can_install; then
            missing+=("${oracle[@]}")
        else
            say "the tests' oracle VM needs: ${oracle[*]} (as root: apt-get install -y ${oracle[*]});"
            say "without them the tests of the real kernel are skipped, and the test run says so"
        fi
    fi
fi
if ((${#missing[@]})); then
    install_packages "${missing[@]}"
    PY=$(find_python)
fi
if [[ -z $PY ]] || ! py_ok "$PY"; then
    say "no python 3.11 or newer found (set PYTHON=/path/to/python3.11)"
    exit 1
fi

build_native() {
    if ! "$VENV/bin/python" scripts/build_native.py --check; then
        say "compiling the per-call modules with mypyc (under a minute; again after they change)"
        "$VENV/bin/python" scripts/build_native.py \
            || say "the compiled build failed: vbinder runs in pure Python (the same, slower)"
    fi
}

build_preload() {
    if ! "$VENV/bin/python" -m vbinder.preload --check; then
        say "building the preload library (vbinder run)"
        "$VENV/bin/python" -m vbinder.preload >/dev/null \
            || say "the preload library did not build: vbinder run cannot work"
    fi
}

if venv_ready; then
    build_native
    build_preload
    exit 0
fi
if [[ -e $VENV ]] && ! "$VENV/bin/python" -c '' 2>/dev/null; then
    say "$VENV is broken: recreating it"
    rm -rf "$VENV"
fi
if [[ ! -x $VENV/bin/python ]]; then
    say "creating $VENV with $("$PY" -c 'import sys; print(sys.executable, sys.version.split()[0])')"
    "$PY" -m venv "$VENV"
fi
say "installing vbinder and its test dependencies into $VENV"
"$VENV/bin/python" -m pip install -q -e '.[test]' >&2
stamp_value >"$STAMP"
build_native
build_preload
say "ready: $VENV"
