package vbinder.compat;

oneway interface IListener {
    void onEvent(int what);
    void onText(String text);
}
