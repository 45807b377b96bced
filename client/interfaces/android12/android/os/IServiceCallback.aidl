// Hears of a service's registrations (IServiceManager.registerForNotifications).
package android.os;

oneway interface IServiceCallback {
    // name was registered as binder.
    void onRegistration(@utf8InCpp String name, IBinder binder);
}
