package vbinder.test;

import vbinder.test.Item;

union Shape {
    int circle = 3;
    String square;
    Item item;
    byte[] raw;
}
