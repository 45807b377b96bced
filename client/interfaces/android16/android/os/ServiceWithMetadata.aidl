// A service's binder, and whether it is lazy (addService's FLAG_IS_LAZY_SERVICE): a lazy
// service may go away when it has no clients, so clients must not cache it.
package android.os;

parcelable ServiceWithMetadata {
    @nullable IBinder service;
    boolean isLazyService;
}
