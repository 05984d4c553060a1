#include "stats.h"

struct summary summarize(const int *values, unsigned count) {
    struct summary s = {count, 0, 0, 0};
    long sum = 0;
    for (unsigned i = 0; i < count; i++) {
        if (i == 0 || values[i] < s.min) s.min = values[i];
        if (i == 0 || values[i] > s.max) s.max = values[i];
        sum += values[i];
    }
    s.mean = count ? (double)sum / count : 0;
    return s;
}
