"""What a binderfs mount shows and does, in lines that read the same on the kernel and on vbinder.

    python tests/fs/binderfs_probe.py BINDERFS_DIR

Run on the real 6.1 binderfs in the oracle's VM (``run.sh -B``, devices binder, hwbinder and
vndbinder: /dev/binderfs) and on a vbinder mount (MOUNT/dev/binderfs); tests/fs/test_binderfs.py
and tests/kernel/test_binderfs_on_kernel.py compare both with the kernel's recorded output
(tests/fs/expected/binderfs_probe.txt). Device files are character devices on the kernel and
regular files on vbinder (DESIGN.md, platform fact 4): both print as ``file``.
"""

from __future__ import annotations

import errno
import os
import stat
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from vbinder_client.binderfs import control_ioctl, ctl_add  # noqa: E402
from vbinder_client.device import open_transport  # noqa: E402

from vbinder import uapi  # noqa: E402


def entry(path: str) -> str:
    st = os.lstat(path)
    kind = "dir" if stat.S_ISDIR(st.st_mode) else "link" if stat.S_ISLNK(st.st_mode) else "file"
    return f"{kind} {stat.S_IMODE(st.st_mode):o}"


def listing(root: str, sub: str = "") -> list[str]:
    d = os.path.join(root, sub)
    return [f"  {name!r} {entry(os.path.join(d, name))}" for name in sorted(os.listdir(d))]


def err(fn: object) -> str:
    try:
        fn()  # type: ignore[operator]
    except OSError as e:
        return errno.errorcode.get(e.errno or 0, str(e.errno))
    return "ok"


def main(root: str) -> None:
    control = os.path.join(root, "binder-control")
    pid = str(os.getpid())
    print("root:", *listing(root), sep="\n")
    print("features:", *(f"  {n} {open(os.path.join(root, 'features', n)).read()!r} "
                         f"{entry(os.path.join(root, 'features', n))}"
                         for n in sorted(os.listdir(os.path.join(root, "features")))), sep="\n")
    print("binder_logs:", *listing(root, "binder_logs"), sep="\n")

    majors: list[int] = []

    def add(name: bytes) -> None:
        ret, out = ctl_add(control, name)
        copied = ""
        if out and ret in (0, -errno.EEXIST, -errno.EACCES):
            back, major, minor = uapi.BINDERFS_DEVICE.unpack(out)
            majors.append(major)
            copied = f" major {'M' if major == majors[0] else major} minor {minor} name {back.rstrip(bytes(1))!r}"
        result = "ok" if ret == 0 else errno.errorcode.get(-ret, str(ret))
        print(f"  add {name[:40]!r}{'...' if len(name) > 40 else ''}: {result}{copied}")

    print("BINDER_CTL_ADD:")
    for name in (b"foo", b"foo", b"bar", b"a/b", b".", b"..", b"", b"binder-control", b"features",
                 b"binder_logs", b"binder", b"x" * 255, b"y" * 256, b"new\nline", b"sp ace", "é".encode(),
                 b"\xff\xfe", b"baz"):
        add(name)
    print("root after:", *listing(root), sep="\n")
    for name, cmd, size in (("BINDER_VERSION", uapi.BINDER_VERSION, 4),
                            ("BINDER_WRITE_READ", uapi.BINDER_WRITE_READ, 48)):
        ret, _out = control_ioctl(control, cmd, bytes(size))
        print(f"control ioctl {name}: {errno.errorcode.get(-ret, ret) if ret < 0 else ret}")
    fd = os.open(control, os.O_RDWR)
    print("control read:", err(lambda: os.read(fd, 16)))  # not a frame: EINVAL, as the kernel's
    print("control write:", err(lambda: os.write(fd, b"x")))
    os.close(fd)

    t = open_transport(os.path.join(root, "foo"))
    ret, arg = t.ioctl(uapi.BINDER_VERSION, bytes(4))
    print("foo BINDER_VERSION:", ret, uapi.VERSION.unpack(arg)[0])
    state = open(os.path.join(root, "binder_logs", "state")).read().replace(pid, "PID")
    print("binder_logs/state:", *(f"  {line}" for line in state.splitlines()), sep="\n")
    procs = os.listdir(os.path.join(root, "binder_logs", "proc"))
    print("binder_logs/proc has this pid:", pid in procs)
    proc = open(os.path.join(root, "binder_logs", "proc", pid)).read().replace(pid, "PID")
    print("binder_logs/proc/PID:", *(f"  {line}" for line in proc.splitlines()), sep="\n")
    t.close()

    print("unlink bar:", err(lambda: os.unlink(os.path.join(root, "bar"))))
    print("unlink binder-control:", err(lambda: os.unlink(control)))
    print("unlink features/extended_error:", err(lambda: os.unlink(os.path.join(root, "features", "extended_error"))))
    print("mkdir:", err(lambda: os.mkdir(os.path.join(root, "newdir"))))
    print("chmod foo 640:", err(lambda: os.chmod(os.path.join(root, "foo"), 0o640)), entry(os.path.join(root, "foo")))
    print("rename foo foo2:", err(lambda: os.rename(os.path.join(root, "foo"), os.path.join(root, "foo2"))))
    print("rename binder-control:", err(lambda: os.rename(control, os.path.join(root, "ctl"))))
    add(b"bar")
    add(b"foo")
    print("root at the end:", *listing(root), sep="\n")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "/dev/binderfs")
