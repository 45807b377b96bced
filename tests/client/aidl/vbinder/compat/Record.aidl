package vbinder.compat;

parcelable Record {
    int id = 3;
    String name;
    long[] values;
}
