"""AIDL's FileDescriptor and ParcelFileDescriptor (also @nullable, and arrays of them) between two
processes through a real mount: the generated code's fds go through (their bytes are AOSP's:
tests/client/test_aidl_wire.py), a stub's arguments are lent for its method, a proxy's results are
the caller's to keep, and nothing is left open on either side after many calls."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.support import daemon_env

from .test_calls import TIMEOUT, service_manager, stop  # noqa: F401 - the fixture

AIDL = """package demo;
interface IFiles {
    void write(in FileDescriptor fd, String text);
    ParcelFileDescriptor pipe(String text);
    FileDescriptor same(in FileDescriptor fd);
    String take(in ParcelFileDescriptor pfd);
    @nullable ParcelFileDescriptor maybe(in @nullable ParcelFileDescriptor pfd);
    ParcelFileDescriptor[] many(in ParcelFileDescriptor[] pfds);
    int fds();
}
"""

SERVICE = """
import gc, os, sys
from vbinder_client import ParcelFileDescriptor, ProcessState, aidl, default_service_manager
IFiles = aidl.load("IFiles.aidl")

class Files(IFiles.Stub):
    def write(self, fd, text):
        os.write(fd, text.encode())
    def pipe(self, text):
        r, w = ParcelFileDescriptor.create_pipe()
        os.write(w.fileno(), text.encode())
        w.close()
        return r
    def same(self, fd):
        return fd                       # the lent fd goes back out in the reply
    def take(self, pfd):
        return os.read(pfd.fileno(), 100).decode()
    def maybe(self, pfd):
        return pfd                      # null, or the file it was sent
    def many(self, pfds):
        return pfds[::-1]
    def fds(self):
        gc.collect()
        return len(os.listdir("/proc/self/fd"))

ps = ProcessState.init()
default_service_manager().add_service("files", Files())
ps.start_thread_pool()
print("ready", flush=True)
ps.ipc().join_thread_pool()
"""

CLIENT = """
import gc, os
from vbinder_client import ParcelFileDescriptor, aidl, default_service_manager
IFiles = aidl.load("IFiles.aidl")
f = IFiles.Stub.as_interface(default_service_manager().get_service("files"))
r, w = os.pipe()
f.write(w, "hello")
print(os.read(r, 10).decode())
with f.pipe("piped") as p:
    print(type(p).__name__, os.read(p.fileno(), 10).decode())
same = f.same(w)                        # a duplicate of our own write end, ours to close
print("same file", same != w and os.fstat(same).st_ino == os.fstat(w).st_ino)
os.close(same)
r2, w2 = ParcelFileDescriptor.create_pipe()
os.write(w2.fileno(), b"took")
w2.close()
print(f.take(r2))
r2.close()
def ident(fd):
    st = os.fstat(fd)
    return st.st_dev, st.st_ino
print("maybe", f.maybe(None))
with f.maybe(ParcelFileDescriptor(os.dup(r))) as back:
    print("maybe same file", back.fileno() != r and ident(back.fileno()) == ident(r))
got = f.many([ParcelFileDescriptor(os.dup(r)), ParcelFileDescriptor(os.dup(w))])
print("many", [ident(p.fileno()) for p in got] == [ident(w), ident(r)])
for p in got:
    p.close()
gc.collect()
mine, theirs = len(os.listdir("/proc/self/fd")), f.fds()
for i in range(50):
    f.write(w, "x")
    os.read(r, 1)
    with f.pipe("y") as p:
        pass
    os.close(f.same(w))
    with f.maybe(ParcelFileDescriptor(os.dup(r))):
        pass
    for p in f.many([ParcelFileDescriptor(os.dup(w))]):
        p.close()
gc.collect()
print("left open", len(os.listdir("/proc/self/fd")) - mine, f.fds() - theirs)
"""


def test_aidl_file_descriptors(service_manager: str, tmp_path: Path) -> None:  # noqa: F811
    (tmp_path / "IFiles.aidl").write_text(AIDL)
    env = {**daemon_env(), "BINDER_DEVICE": service_manager}
    svc = subprocess.Popen([sys.executable, "-c", SERVICE], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    try:
        assert svc.stdout.readline().startswith("ready"), svc.stderr.read()  # type: ignore[union-attr]
        r = subprocess.run([sys.executable, "-c", CLIENT], cwd=tmp_path, env=env, capture_output=True, text=True,
                           timeout=TIMEOUT)
        assert r.returncode == 0, r.stderr
        assert r.stdout.splitlines() == ["hello", "ParcelFileDescriptor piped", "same file True", "took",
                                         "maybe None", "maybe same file True", "many True", "left open 0 0"]
    finally:
        stop(svc)
