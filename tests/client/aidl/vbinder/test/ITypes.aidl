// Every AIDL type vbinder supports, one method each, for the wire tests (tests/client/test_aidl_wire.py).
package vbinder.test;

import vbinder.test.Color;
import vbinder.test.ICallback;
import vbinder.test.Item;
import vbinder.test.Level;
import vbinder.test.Shape;
import vbinder.test.Size;

interface ITypes {
    const int ANSWER = 6 * 7;
    const long BIG = 1L << 40;
    const String NAME = "types";

    boolean flipBoolean(boolean v);
    byte repeatByte(byte v);
    char repeatChar(char v);
    int repeatInt(int v);
    long repeatLong(long v);
    float repeatFloat(float v);
    double repeatDouble(double v);
    String repeatString(String v);
    @utf8InCpp String repeatUtf8(@utf8InCpp String v);
    @nullable String repeatNullable(@nullable String v);
    byte[] repeatBytes(in byte[] v);
    int[] reverseInts(in int[] v, out int[] copy);
    long[] repeatLongs(in long[] v);
    boolean[] repeatBooleans(in boolean[] v);
    char[] repeatChars(in char[] v);
    float[] repeatFloats(in float[] v);
    double[] repeatDoubles(in double[] v);
    String[] repeatStrings(in String[] v);
    List<String> repeatStringList(in List<String> v);
    @nullable int[] repeatNullableInts(in @nullable int[] v);
    Item repeatItem(in Item v);
    @nullable Item repeatNullableItem(in @nullable Item v);
    Item[] repeatItems(in Item[] v);
    List<Item> repeatItemList(in List<Item> v);
    void grow(inout Item item, out Item made, inout String[] names, out List<String> more);
    Shape repeatShape(in Shape v);
    Color repeatColor(Color v);
    Level repeatLevel(Level v);
    Size repeatSize(Size v);
    Color[] repeatColors(in Color[] v);
    Level[] repeatLevels(in Level[] v);
    @nullable IBinder repeatBinder(@nullable IBinder v);
    List<IBinder> repeatBinders(in List<IBinder> v);
    int callBack(ICallback cb, int v);
    oneway void fire(int v);
    void fail(int code);
}
