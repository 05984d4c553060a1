#include <stdio.h>
#include <stdlib.h>

#include "list.h"
#include "stats.h"

int main(int argc, char **argv) {
    int count = argc > 1 ? atoi(argv[1]) : 10;
    struct list list = {0};
    for (int i = 0; i < count; i++)
        list_push(&list, (i * 7919) % 101);
    struct stats s = list_stats(&list);
    printf("%u values: mean %.2f, min %d, max %d\n", list.length, s.mean, s.min, s.max);
    list_free(&list);
    return 0;
}
