#pragma once

struct summary {
    unsigned count;
    double mean;
    int min, max;
};

struct summary summarize(const int *values, unsigned count);
