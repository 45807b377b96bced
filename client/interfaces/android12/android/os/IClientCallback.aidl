// Hears when a service gains its first client or loses its last (registerClientCallback).
package android.os;

oneway interface IClientCallback {
    void onClients(IBinder registered, boolean hasClients);
}
