// Android 10's aidl (Debian's package) compiles this one too: tests/client/test_aidl_aosp.py
// compares its transaction codes and parcel calls with vbinder's.
package vbinder.compat;

import vbinder.compat.Record;
import vbinder.compat.IListener;

interface ICompat {
    const int LIMIT = 16;
    const String NAME = "compat";

    void none();
    boolean flags(boolean a, byte b, char c);
    int ints(int a, long b, float c, double d);
    String strings(String a, @utf8InCpp String b, @nullable String c);
    int[] arrays(in int[] a, out long[] b, inout String[] c, in byte[] d);
    List<String> lists(in List<String> a, out List<String> b);
    Record records(in Record a, out Record b, inout Record c, in @nullable Record d);
    Record[] recordArrays(in Record[] a);
    IBinder binders(IBinder a, @nullable IBinder b, in List<IBinder> c);
    IListener listeners(IListener a);
    oneway void notify(int what, String why);
}
