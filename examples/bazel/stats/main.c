#include <stdio.h>

#include "stats.h"

int main(void) {
    int values[10];
    for (int i = 0; i < 10; i++)
        values[i] = (i * 7919) % 101;
    struct summary s = summarize(values, 10);
    printf("%u values: mean %.2f, min %d, max %d\n", s.count, s.mean, s.min, s.max);
    return 0;
}
