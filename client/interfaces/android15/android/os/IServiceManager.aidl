// vbinder's description of the service manager protocol of Android 15 (API 35) from android-15.0.0_r20 on (its first builds spoke Android 14's): the methods in
// the order that gives each its transaction code, with the types that set their encoding.
package android.os;

import android.os.ConnectionInfo;
import android.os.IClientCallback;
import android.os.IServiceCallback;
import android.os.Service;
import android.os.ServiceDebugInfo;

interface IServiceManager {
    // Dump priorities: addService's dumpPriority and listServices' filter are sets of these.
    const int DUMP_FLAG_PRIORITY_CRITICAL = 1 << 0;
    const int DUMP_FLAG_PRIORITY_HIGH = 1 << 1;
    const int DUMP_FLAG_PRIORITY_NORMAL = 1 << 2;
    const int DUMP_FLAG_PRIORITY_DEFAULT = 1 << 3;
    const int DUMP_FLAG_PRIORITY_ALL = DUMP_FLAG_PRIORITY_CRITICAL | DUMP_FLAG_PRIORITY_HIGH
            | DUMP_FLAG_PRIORITY_NORMAL | DUMP_FLAG_PRIORITY_DEFAULT;
    // Set in addService's dumpPriority by a lazy service (LazyServiceRegistrar): clients may not cache it.
    const int FLAG_IS_LAZY_SERVICE = 1 << 30;
    const int DUMP_FLAG_PROTO = 1 << 4;

    // The service called name; clients wait and ask again while it is missing.
    @nullable IBinder getService(@utf8InCpp String name);

    // The same, as a Service: the binder with its metadata (or an accessor).
    Service getService2(@utf8InCpp String name);

    // The same, answered at once, as a Service.
    Service checkService(@utf8InCpp String name);

    // Registers service under name.
    void addService(@utf8InCpp String name, IBinder service, boolean allowIsolated, int dumpPriority);

    // The names registered with any of the given dump priorities.
    @utf8InCpp String[] listServices(int dumpPriority);

    // callback hears of name's registrations, present and future.
    void registerForNotifications(@utf8InCpp String name, IServiceCallback callback);

    void unregisterForNotifications(@utf8InCpp String name, IServiceCallback callback);

    // Whether the device's VINTF manifest declares the instance name.
    boolean isDeclared(@utf8InCpp String name);

    // The declared instances of the interface iface.
    @utf8InCpp String[] getDeclaredInstances(@utf8InCpp String iface);

    // The APEX that can update the service name, if any.
    @nullable @utf8InCpp String updatableViaApex(@utf8InCpp String name);

    // The services an APEX can update.
    @utf8InCpp String[] getUpdatableNames(@utf8InCpp String apexName);

    // How to reach name over a socket (RPC binder), for services that listen on one.
    @nullable ConnectionInfo getConnectionInfo(@utf8InCpp String name);

    // callback hears when service gains its first client or loses its last.
    void registerClientCallback(@utf8InCpp String name, IBinder service, IClientCallback callback);

    // Drops the registration of service, if it has no clients.
    void tryUnregisterService(@utf8InCpp String name, IBinder service);

    // Every registration with its owner's pid, for debugging tools.
    ServiceDebugInfo[] getServiceDebugInfo();
}
