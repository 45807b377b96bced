// Explicit transaction codes, out of order.
package vbinder.compat;

interface IExplicit {
    void third() = 30;
    void first() = 1;
    oneway void second(int a) = 20;
    int zero() = 0;
}
