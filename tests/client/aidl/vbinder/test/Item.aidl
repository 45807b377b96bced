// A parcelable with defaults, a nested parcelable, an enum and a nullable field.
package vbinder.test;

import vbinder.test.Color;

parcelable Item {
    const int LIMIT = 10;

    int count = 1;
    @utf8InCpp String label = "item";
    @nullable String note;
    Color color = Color.GREEN;
    long[] weights;
    Tag tag;

    parcelable Tag {
        char mark = 'x';
        boolean on;
    }
}
