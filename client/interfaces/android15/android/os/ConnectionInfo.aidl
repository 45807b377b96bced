// Where a service listens for RPC binder connections.
package android.os;

parcelable ConnectionInfo {
    @utf8InCpp String ipAddress;
    int port;
}
