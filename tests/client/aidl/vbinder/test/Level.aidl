package vbinder.test;

@Backing(type="int")
enum Level { LOW = -1, HIGH = 0x7fffffff }
