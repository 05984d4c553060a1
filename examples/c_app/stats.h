#ifndef STATS_H
#define STATS_H
#include "list.h"

struct stats {
    double mean;
    int min, max;
};

struct stats list_stats(const struct list *list);
#endif
