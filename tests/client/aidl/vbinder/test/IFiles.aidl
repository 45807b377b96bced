package vbinder.test;

// File descriptors in generated code (tests/client/test_aidl_wire.py, test_aidl_aosp.py and
// tests/integration/test_aidl_fds.py).
interface IFiles {
    void write(in FileDescriptor fd, String text);
    FileDescriptor same(in FileDescriptor fd);
    ParcelFileDescriptor pipe(String text);
    String take(in ParcelFileDescriptor pfd);
    @nullable ParcelFileDescriptor maybe(in @nullable ParcelFileDescriptor pfd);
    ParcelFileDescriptor[] many(in ParcelFileDescriptor[] pfds);
    int fds();
}
