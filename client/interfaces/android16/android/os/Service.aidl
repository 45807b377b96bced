// What getService2 (and checkService2) answer: the service with its metadata, or an accessor
// (a binder that makes RPC binder connections to it; vbinder's service manager has none).
package android.os;

import android.os.ServiceWithMetadata;

union Service {
    ServiceWithMetadata serviceWithMetadata;
    @nullable IBinder accessor;
}
