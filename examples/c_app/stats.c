#include <limits.h>

#include "stats.h"

struct stats list_stats(const struct list *list) {
    struct stats s = {0, INT_MAX, INT_MIN};
    long sum = 0;
    for (const struct node *n = list->head; n; n = n->next) {
        sum += n->value;
        if (n->value < s.min) s.min = n->value;
        if (n->value > s.max) s.max = n->value;
    }
    s.mean = list->length ? (double)sum / list->length : 0;
    return s;
}
