package vbinder.test;

@Backing(type="long")
enum Size { SMALL = 1, HUGE = 1L << 40 }
