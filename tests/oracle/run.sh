#!/bin/bash
# run.sh - run a Python script (or a shell command) against the REAL Linux
# binder driver (Debian's 6.1 kernel, binder_linux module) inside a qemu VM.
#
#   run.sh [options] SCRIPT.py [args...]
#   run.sh [options] -c 'shell command line'
#
# Inside the VM the host's root filesystem is mounted read-only (9p) and the
# payload runs chrooted into it with the host's python3, as root, with
#   /dev/binder (+ any extra devices, -d; mode 0666), /dev/binderfs/<dev> -> ../<dev>
#   symlinks (stock module has no binderfs; -B gives a real binderfs),
#   /sys/kernel/debug/binder/{state,stats,transactions,transaction_log,
#   failed_transaction_log,proc/<pid>}, /sys/module/binder_linux/parameters/*,
#   /sys/kernel/tracing (events/binder/*), /dev/kmsg,
#   /tmp and /var/tmp = host content + writable tmpfs overlay, tmpfs /run, /dev/shm,
#   $ORACLE_OUT = the results directory, writable, same absolute path as on the host;
#   everything else of the host is read-only.
# The payload's stdout/stderr are replayed on run.sh's stdout/stderr and its exit
# status becomes run.sh's exit status.  Oracle problems exit 125 (VM failed)
# or 124 (payload timed out).
#
# Options:
#   -o DIR    results dir (created; kept).  Default: fresh share/run-XXXXXX,
#             deleted afterwards unless -k or the payload wrote files into it.
#   -k        keep the run dir (holds .oracle/{stdout,stderr,rc,dmesg,console.log})
#   -t SECS   payload timeout inside the VM (default 120; env ORACLE_TIMEOUT)
#   -d DEVS   binder device names, comma separated (default "binder"),
#             e.g. binder,hwbinder,vndbinder (module param "devices")
#   -m MASK   binder_linux debug_mask at module load (also writable at run time
#             via /sys/module/binder_linux/parameters/debug_mask)
#   -a MASK   binder_linux alloc_debug_mask at module load
#   -B        binderfs variant: binder_linux.ko rebuilt by setup.sh from the same
#             Debian source with CONFIG_ANDROID_BINDERFS=y; binderfs mounted at
#             /dev/binderfs (-o stats=global: binder-control, binder_logs/,
#             features/), /dev/<dev> -> binderfs/<dev> symlinks.  (env ORACLE_BINDERFS=1)
#   -p PY     python interpreter (host path) to run SCRIPT with
#             (default: the host's `python3`, resolved through pyenv shims)
#   -c CMD    run CMD with bash instead of a python script
#   -e N=V    set environment variable N to V inside the VM (repeatable)
#   -M        merge the payload's stderr into its stdout (keeps interleaving)
#   -D        print the guest dmesg to stderr after the run
#   -v        stream the serial console to stderr while running
# Environment: ORACLE_ACCEL=auto|tcg|kvm (default auto: kvm only if a cached
#   probe showed it boots; it does not on this host -> tcg), ORACLE_SMP (default 2),
#   ORACLE_MEM (default 1G), ORACLE_PYTHON, ORACLE_TIMEOUT.
set -uo pipefail
HERE="$(cd "$(dirname "$(readlink -f "$0")")" && pwd)"
# vbinder: generated files (kernel, initramfs, run dirs) go to $ORACLE_STATE, not beside the sources
STATE="${ORACLE_STATE:-$HERE}"
T_START=$(date +%s.%N)

usage() { awk 'NR>1 && /^#/ {sub(/^# ?/, ""); print; next} NR>1 {exit}' "$0"; exit 2; }
OUT=""; KEEP=0; TIMEOUT="${ORACLE_TIMEOUT:-120}"; DEVS="${ORACLE_BINDER_DEVICES:-binder}"
DMASK=""; AMASK=""; PY="${ORACLE_PYTHON:-}"; CMD=""; SHOW_DMESG=0; VERBOSE=0; MERGE=0
VARIANT=stock; [ "${ORACLE_BINDERFS:-0}" = 1 ] && VARIANT=binderfs
ENVS=()
while getopts "o:kt:d:m:a:p:c:e:BMDvh" opt; do
    case $opt in
        o) OUT="$OPTARG";; k) KEEP=1;; t) TIMEOUT="$OPTARG";; d) DEVS="$OPTARG";;
        m) DMASK="$OPTARG";; a) AMASK="$OPTARG";; p) PY="$OPTARG";; c) CMD="$OPTARG";;
        e) ENVS+=("$OPTARG");; B) VARIANT=binderfs;; M) MERGE=1;; D) SHOW_DMESG=1;; v) VERBOSE=1;; *) usage;;
    esac
done
shift $((OPTIND-1))
if [ -z "$CMD" ] && [ $# -lt 1 ]; then usage; fi
msg() { echo "[oracle] $*" >&2; }

# ---- artifacts ----------------------------------------------------------------
if [ ! -e "$STATE/build/vmlinuz" ] || [ ! -e "$STATE/build/initramfs.cpio.gz" ] \
   || [ "$HERE/initramfs/init" -nt "$STATE/build/initramfs.cpio.gz" ] \
   || [ "$HERE/setup.sh" -nt "$STATE/build/initramfs.cpio.gz" ]; then
    msg "building artifacts (setup.sh)"
    "$HERE/setup.sh" >&2 || { msg "setup.sh failed"; exit 125; }
fi
command -v qemu-system-x86_64 >/dev/null || { msg "qemu-system-x86_64 missing: run setup.sh"; exit 125; }

# ---- payload ---------------------------------------------------------------------
if [ -z "$CMD" ]; then
    SCRIPT="$(readlink -f "$1")"; shift
    [ -f "$SCRIPT" ] || { msg "no such script: $SCRIPT"; exit 2; }
    if [ -z "$PY" ]; then
        PY="$(python3 -c 'import sys; print(sys.executable)' 2>/dev/null)"
        [ -n "$PY" ] || PY=/usr/bin/python3
    fi
    case "$PY" in /*) ;; *) PY="$(command -v "$PY")";; esac
fi

# ---- results dir (9p-shared read-write) --------------------------------------------
mkdir -p "$STATE/share"
if [ -n "$OUT" ]; then
    mkdir -p "$OUT" && OUT="$(readlink -f "$OUT")"; KEEP=1
else
    OUT="$(mktemp -d "$STATE/share/run-XXXXXX")"
fi
case "$OUT" in /proc*|/sys*|/dev*) msg "bad results dir $OUT"; exit 2;; esac
C="$OUT/.oracle"
rm -rf "$C"; mkdir -p "$C"

q() { printf '%q ' "$@"; }
{
    echo "OUTDIR=$(q "$OUT")"
    echo "BINDER_DEVICES=$(q "$DEVS")"
    echo "BINDER_DEBUG_MASK=$(q "$DMASK")"
    echo "BINDER_ALLOC_DEBUG_MASK=$(q "$AMASK")"
    echo "BINDER_VARIANT=$VARIANT"
} > "$C/vm.conf"
{
    echo "export PATH=$(printf %q "$PATH:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")"
    echo "export HOME=$(printf %q "${HOME:-/root}") LANG=C.UTF-8 PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1"
    echo "export ORACLE_OUT=$(q "$OUT") ORACLE_VM=1 ORACLE_BINDER_VARIANT=$VARIANT BINDER_DEVICES=$(q "$DEVS")"
    for e in ${ENVS[@]+"${ENVS[@]}"}; do echo "export $(q "$e")"; done
    echo "cd $(q "$PWD") 2>/dev/null || cd /"
    [ "$MERGE" = 1 ] && echo "exec 2>&1"
    if [ -n "$CMD" ]; then
        echo "exec timeout -k 5 $(q "$TIMEOUT") /bin/bash -c $(q "$CMD")"
    else
        echo "exec timeout -k 5 $(q "$TIMEOUT") $(q "$PY" "$SCRIPT" "$@")"
    fi
} > "$C/cmd.sh"

# ---- accelerator ---------------------------------------------------------------------
ACCEL="${ORACLE_ACCEL:-auto}"
if [ "$ACCEL" = auto ]; then
    ACCEL=tcg
    PROBE="$STATE/build/kvm-probe.$(uname -r)"
    if [ -w /dev/kvm ]; then
        if [ ! -f "$PROBE" ]; then
            # KVM may exist but not work (nested virt without vmx/svm): boot the
            # kernel with kvm and look for its banner within a few seconds.
            plog="$(mktemp)"
            timeout 10 qemu-system-x86_64 -accel kvm -nodefaults -display none -m 256 \
                -kernel "$STATE/build/vmlinuz" -append "console=ttyS0 panic=-1" \
                -serial "file:$plog" -no-reboot >/dev/null 2>&1
            if grep -q 'Linux version' "$plog"; then echo kvm > "$PROBE"; else echo tcg > "$PROBE"; fi
            rm -f "$plog"
            msg "kvm probe: $(cat "$PROBE") (cached in $PROBE)"
        fi
        ACCEL="$(cat "$PROBE")"
    fi
fi
case "$ACCEL" in
    kvm) ACCEL_ARGS=(-accel kvm -cpu qemu64);;
    *)   ACCEL=tcg; ACCEL_ARGS=(-accel tcg,thread=multi);;
esac
SMP="${ORACLE_SMP:-2}"; MEM="${ORACLE_MEM:-1G}"

# ---- boot ----------------------------------------------------------------------------------
CONSOLE="$C/console.log"
: > "$CONSOLE"
QEMU=(qemu-system-x86_64 "${ACCEL_ARGS[@]}" -smp "$SMP" -m "$MEM"
      -nodefaults -no-user-config -display none -nic none -no-reboot
      -serial "file:$CONSOLE"
      -kernel "$STATE/build/vmlinuz" -initrd "$STATE/build/initramfs.cpio.gz"
      -append "console=ttyS0 panic=-1 loglevel=4 quiet mitigations=off tsc=reliable"
      -virtfs "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap"
      -virtfs "local,path=$OUT,mount_tag=results,security_model=none,multidevs=remap"
      -device virtio-rng-pci)
OUTER=$((TIMEOUT + 180))
TAILPID=""
if [ "$VERBOSE" = 1 ]; then tail -n +1 -f "$CONSOLE" >&2 & TAILPID=$!; fi
timeout -k 10 "$OUTER" "${QEMU[@]}" > "$C/qemu.log" 2>&1 < /dev/null &
QPID=$!
trap 'kill -TERM $QPID 2>/dev/null; [ -n "$TAILPID" ] && kill $TAILPID 2>/dev/null' INT TERM HUP
wait $QPID
QRC=$?
if kill -0 $QPID 2>/dev/null; then    # interrupted: stop qemu, then give up
    kill -TERM $QPID 2>/dev/null; wait $QPID 2>/dev/null
    [ -n "$TAILPID" ] && kill $TAILPID 2>/dev/null
    [ "$KEEP" = 1 ] || rm -rf "$OUT"
    msg "interrupted"; exit 130
fi
trap - INT TERM HUP
[ -n "$TAILPID" ] && { sleep 0.2; kill "$TAILPID" 2>/dev/null; wait "$TAILPID" 2>/dev/null; }
T_END=$(date +%s.%N)

# ---- results ------------------------------------------------------------------------------
[ -f "$C/stdout" ] && cat "$C/stdout"
[ -f "$C/stderr" ] && cat "$C/stderr" >&2
[ "$SHOW_DMESG" = 1 ] && [ -f "$C/dmesg" ] && { echo "----- guest dmesg -----" >&2; cat "$C/dmesg" >&2; }
if [ -f "$C/rc" ]; then
    RC="$(cat "$C/rc")"
    UP="$(cat "$C/uptimes" 2>/dev/null || true)"
    msg "$(printf 'boot+run %.1fs wall (accel=%s smp=%s variant=%s; guest uptime: init %s, payload start %s, end %s); exit %s' \
        "$(echo "$T_END - $T_START" | bc)" "$ACCEL" "$SMP" "$VARIANT" $UP "$RC")"
    [ "$RC" = 124 ] || [ "$RC" = 137 ] && msg "payload timed out after ${TIMEOUT}s"
else
    RC=125
    msg "VM did not produce a result (qemu rc=$QRC). qemu log / console tail:"
    tail -n 5 "$C/qemu.log" >&2
    tail -n 40 "$CONSOLE" >&2
    KEEP=1
fi
if [ "$KEEP" = 1 ]; then
    msg "run dir kept: $OUT"
else
    extra="$(find "$OUT" -mindepth 1 -maxdepth 1 ! -name .oracle | head -1)"
    if [ -n "$extra" ]; then msg "payload wrote files; run dir kept: $OUT"; else rm -rf "$OUT"; fi
fi
exit "$RC"
