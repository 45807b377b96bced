package vbinder.test;

interface ICallback {
    int plusOne(int v);
}
