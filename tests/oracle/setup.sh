#!/bin/bash
# setup.sh - (re)create everything the binder reference oracle needs.
#   * installs qemu-system-x86, busybox-static, cpio, kmod, linux-libc-dev (host)
#   * downloads (does NOT install) Debian's linux-image-<ver>-amd64 package and
#     extracts it into ./kernel/, runs depmod there
#   * builds ./build/initramfs.cpio.gz (busybox + virtio/9p/binder modules + init)
# Idempotent: skips steps whose output already exists (use --force to redo the
# initramfs).  Honours KVER=6.1.0-NN-amd64 to pin a specific kernel ABI.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
# vbinder: generated files go to $ORACLE_STATE (default: beside the sources, as in shared/oracle)
STATE="${ORACLE_STATE:-$HERE}"
mkdir -p "$STATE"
cd "$STATE"
FORCE=0
[ "${1:-}" = "--force" ] && FORCE=1

log() { echo "[setup] $*" >&2; }

apt_retry() {
    local i
    for i in $(seq 1 30); do
        if DEBIAN_FRONTEND=noninteractive "$@"; then return 0; fi
        log "apt failed (lock?), retry $i"; sleep 5
    done
    return 1
}

need_pkgs=()
command -v qemu-system-x86_64 >/dev/null || need_pkgs+=(qemu-system-x86)
command -v cpio >/dev/null || need_pkgs+=(cpio)
command -v depmod >/dev/null || need_pkgs+=(kmod)
[ -f /usr/include/linux/android/binder.h ] || need_pkgs+=(linux-libc-dev)
if [ ${#need_pkgs[@]} -gt 0 ]; then
    log "installing ${need_pkgs[*]}"
    apt_retry apt-get update -q
    apt_retry apt-get install -y -q --no-install-recommends "${need_pkgs[@]}"
fi
# a dynamic busybox may be installed instead of busybox-static; we need the static one
if ! dpkg-query -W -f='${Status}' busybox-static 2>/dev/null | grep -q 'ok installed'; then
    log "installing busybox-static"
    apt_retry apt-get install -y -q --no-install-recommends busybox-static
fi

# ---- kernel ---------------------------------------------------------------
if [ -z "${KVER:-}" ]; then
    if ls kernel/boot/vmlinuz-* >/dev/null 2>&1; then
        KVER="$(basename "$(ls kernel/boot/vmlinuz-* | head -1)" | sed 's/^vmlinuz-//')"
    else
        [ -n "$(apt-cache depends linux-image-amd64 2>/dev/null)" ] || apt_retry apt-get update -q
        KVER="$(apt-cache depends linux-image-amd64 | sed -n 's/.*Depends: linux-image-\(.*\)$/\1/p' | grep -v unsigned | head -1)"
    fi
fi
log "kernel ABI: $KVER"
if [ ! -f "kernel/boot/vmlinuz-$KVER" ]; then
    mkdir -p debs kernel
    (cd debs && apt_retry apt-get download "linux-image-$KVER")
    rm -rf kernel && mkdir kernel
    dpkg-deb -x debs/linux-image-"$KVER"_*.deb kernel/
fi
[ -f "kernel/lib/modules/$KVER/modules.dep" ] || depmod -b kernel "$KVER"

CFG="kernel/boot/config-$KVER"
log "binder config:"; grep -E 'CONFIG_ANDROID_BINDER|CONFIG_DEBUG_FS=' "$CFG" | sed 's/^/[setup]   /' >&2

# ---- binderfs variant (optional) -------------------------------------------
# Debian's binder_linux.ko has CONFIG_ANDROID_BINDERFS off.  Rebuild the same
# module from the same Debian source (linux-source-6.1, same version as the
# kernel) with binderfs compiled in, against the matching linux-headers (all
# downloaded with apt-get download and unpacked here, nothing installed).
# Also keeps src/linux-source-6.1/drivers/android: the exact driver source.
BFS_KO="build/binderfs-mod/binder_linux.ko"
if [ "${ORACLE_NO_BINDERFS:-0}" != 1 ] && [ ! -f "$BFS_KO" ]; then
  (
    set -e
    if ls debs/linux-image-"$KVER"_*.deb >/dev/null 2>&1; then
        KPKGVER="$(dpkg-deb -f debs/linux-image-"$KVER"_*.deb Version)"
    else
        KPKGVER="$(apt-cache show "linux-image-$KVER" | sed -n 's/^Version: //p' | head -1)"
    fi
    SRCPKG="linux-source-$(echo "$KVER" | cut -d. -f1-2)"
    KBUILD="linux-kbuild-$(echo "$KVER" | cut -d. -f1-2)"
    COMMON="linux-headers-$(echo "$KVER" | sed 's/-amd64$/-common/')"
    mkdir -p debs hdr src
    cd debs
    for p in "$SRCPKG" "linux-headers-$KVER" "$COMMON" "$KBUILD"; do
        ls "${p}_${KPKGVER}"_*.deb >/dev/null 2>&1 || apt_retry apt-get download "$p=$KPKGVER"
    done
    cd ..
    for p in "linux-headers-$KVER" "$COMMON" "$KBUILD"; do dpkg-deb -x debs/"${p}_${KPKGVER}"_*.deb hdr/; done
    HD="$STATE/hdr/usr/src/linux-headers-$KVER"
    sed -i "s#include /usr/src/#include $STATE/hdr/usr/src/#" "$HD/Makefile"
    if [ ! -f "src/$SRCPKG/drivers/android/binder.c" ]; then
        dpkg-deb --fsys-tarfile debs/"${SRCPKG}_${KPKGVER}"_all.deb \
          | tar -xO "./usr/src/$SRCPKG.tar.xz" | xz -dc -T0 \
          | tar -x -C src --wildcards "$SRCPKG/drivers/android/*" \
              "$SRCPKG/include/uapi/linux/android/*" "$SRCPKG/Documentation/admin-guide/binderfs.rst"
    fi
    rm -rf build/binderfs-mod && mkdir -p build/binderfs-mod
    cp src/"$SRCPKG"/drivers/android/{binder.c,binder_alloc.c,binder_alloc.h,binder_internal.h,binder_trace.h,binderfs.c} build/binderfs-mod/
    printf '%s\n' 'ccflags-y += -I$(src) -DCONFIG_ANDROID_BINDERFS=1' 'obj-m += binder_linux.o' \
        'binder_linux-y := binder.o binder_alloc.o binderfs.o' > build/binderfs-mod/Kbuild
    "$HERE/binderfs/patch-binderfs.sh" build/binderfs-mod/binderfs.c
    make -s -C "$HD" M="$STATE/build/binderfs-mod" modules >&2
    [ -f "$BFS_KO" ]
  ) || { log "WARNING: binderfs variant could not be built (run.sh -B unavailable)"; rm -f "$BFS_KO"; }
fi

# ---- initramfs -------------------------------------------------------------
OUTIMG="build/initramfs-$KVER.cpio.gz"
if [ "$FORCE" = 1 ] || [ ! -f "$OUTIMG" ] || [ "$HERE/initramfs/init" -nt "$OUTIMG" ] || [ "$HERE/setup.sh" -nt "$OUTIMG" ] \
   || { [ -f "$BFS_KO" ] && [ "$BFS_KO" -nt "$OUTIMG" ]; }; then
    log "building $OUTIMG"
    ROOT="build/initramfs-root"
    rm -rf "$ROOT"; mkdir -p "$ROOT"/{bin,dev,proc,sys,mnt/host,tmp,lib/modules}
    cp /bin/busybox "$ROOT/bin/busybox"
    cp "$HERE/initramfs/init" "$ROOT/init"; chmod 755 "$ROOT/init"
    MODS=(virtio_pci 9pnet_virtio 9p overlay binder_linux)
    : > "$ROOT/lib/modules/load-order"
    for m in "${MODS[@]}"; do
        modprobe -d kernel -S "$KVER" --show-depends "$m" | awk '$1=="insmod"{print $2}'
    done | awk '!seen[$0]++' | while read -r ko; do
        b="$(basename "$ko")"
        cp "$ko" "$ROOT/lib/modules/$b"
        echo "$b" >> "$ROOT/lib/modules/load-order"
    done
    if [ -f "$BFS_KO" ]; then
        mkdir -p "$ROOT/lib/modules/binderfs"; cp "$BFS_KO" "$ROOT/lib/modules/binderfs/"
    fi
    log "modules: $(tr '\n' ' ' < "$ROOT/lib/modules/load-order")$( [ -f "$BFS_KO" ] && echo '+ binderfs/binder_linux.ko')"
    (cd "$ROOT" && find . | LC_ALL=C sort | cpio -o -H newc --quiet | gzip -1) > "$OUTIMG.tmp"
    mv "$OUTIMG.tmp" "$OUTIMG"
    rm -rf "$ROOT"
fi
ln -sf "initramfs-$KVER.cpio.gz" build/initramfs.cpio.gz
ln -sf "../kernel/boot/vmlinuz-$KVER" build/vmlinuz
log "ready: build/vmlinuz build/initramfs.cpio.gz"
