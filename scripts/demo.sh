#!/usr/bin/env bash
# `make run` and `make umount`:
#   scripts/demo.sh start MNT   mount vbinder at MNT, start the service manager and the echo service,
#                               make one echo call, show the tree; leave it all running
#   scripts/demo.sh stop MNT    stop what `start` started and unmount MNT
# PY is the interpreter (default .venv/bin/python). Logs and pid files go to .run/.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

ACTION=${1:?usage: demo.sh start|stop MNT}
MNT=${2:-mnt}
PY=${PY:-.venv/bin/python}
RUN=.run
if [[ ! -x $PY ]]; then  # `vbinder umount` needs only the standard library
    PY=python3
    export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
fi

vbinder() { "$PY" -m vbinder "$@"; }

mounted() {
    "$PY" -c 'import sys; from vbinder.fs.mounts import find_mount; sys.exit(find_mount(sys.argv[1]) is None)' "$1"
}

# Start "$@" in the background as NAME, with its log and pid in .run/.
start_bg() {
    local name=$1
    shift
    "$@" >"$RUN/$name.log" 2>&1 </dev/null &
    echo $! >"$RUN/$name.pid"
}

# Report on NAME after a moment: running, or failed (with the end of its log).
check_bg() {
    local name=$1 pid
    pid=$(cat "$RUN/$name.pid")
    if kill -0 "$pid" 2>/dev/null; then
        echo "  $name: running (pid $pid, log $RUN/$name.log)"
    else
        echo "  $name: NOT RUNNING (not available yet?); the end of $RUN/$name.log:"
        tail -n 5 "$RUN/$name.log" | sed 's/^/      /'
        rm -f "$RUN/$name.pid"
    fi
}

stop_bg() {  # only processes this script started: the pid file's, if its command line still matches
    local f pid
    for f in "$RUN"/*.pid; do
        [[ -e $f ]] || continue
        pid=$(cat "$f")
        if [[ -r /proc/$pid/cmdline ]] && tr '\0' ' ' </proc/"$pid"/cmdline | grep -q -e vbinder -e examples/; then
            kill "$pid" 2>/dev/null && echo "stopped $(basename "$f" .pid) (pid $pid)"
        fi
        rm -f "$f"
    done
}

stop() {
    stop_bg
    if mounted "$MNT"; then
        vbinder umount "$MNT" && echo "unmounted $MNT"
    else
        echo "$MNT is not mounted"
    fi
}

start() {
    mkdir -p "$MNT" "$RUN"
    if mounted "$MNT"; then
        echo "== $MNT is already mounted: unmounting the old one first"
        stop
    fi
    echo "== mounting vbinder at $MNT"
    vbinder mount "$MNT" --verbose --log-file "$RUN/vbinder.log" || exit 1

    export BINDER_DEVICE=$PWD/$MNT/dev/binder
    echo "== starting the service manager and the echo service"
    start_bg servicemanager "$PY" -m vbinder servicemanager "$MNT"
    sleep 0.5
    start_bg echo_service "$PY" examples/echo_service.py
    sleep 1
    check_bg servicemanager
    check_bg echo_service

    echo "== the echo example's interface, in AIDL (examples/aidl/vbinder/example/IEcho.aidl)"
    grep -v '^//' examples/aidl/vbinder/example/IEcho.aidl | sed '/^$/d; s/^/    /'

    echo "== one call: examples/echo_client.py"
    "$PY" examples/echo_client.py hello || echo "  (the echo call failed: the examples are not available yet?)"

    echo "== ls -lR $MNT"
    ls -lR "$MNT"

    echo "== cat $MNT/sys/kernel/debug/binder/state"
    cat "$MNT/sys/kernel/debug/binder/state"
    echo "== cat $MNT/sys/kernel/debug/binder/transaction_log (the last 5 lines)"
    tail -n 5 "$MNT/sys/kernel/debug/binder/transaction_log"

    cat <<EOF

vbinder is mounted at $MNT and stays mounted (daemon log: $RUN/vbinder.log, driver log: $MNT/proc/kmsg).
Try:      $PY -m vbinder state;  $PY -m vbinder param debug_mask 0x3fbf;  $PY examples/echo_client.py;
          $PY -m vbinder log    (or: cat $MNT/proc/kmsg)
Unmount:  make umount        (or: $PY -m vbinder umount $MNT)
EOF
}

case $ACTION in
    start) start ;;
    stop) stop ;;
    *) echo "usage: demo.sh start|stop MNT" >&2; exit 2 ;;
esac
