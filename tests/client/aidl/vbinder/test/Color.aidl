package vbinder.test;

// byte-backed: the default
enum Color { RED, GREEN = 5, BLUE }
