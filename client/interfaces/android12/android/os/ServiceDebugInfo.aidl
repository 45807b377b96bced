// A registration as debugging tools see it.
package android.os;

parcelable ServiceDebugInfo {
    @utf8InCpp String name;
    int debugPid;
}
