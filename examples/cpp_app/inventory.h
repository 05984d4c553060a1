#pragma once
#include <map>
#include <string>

#include "shapes.h"

// Totals of area per shape kind.
class Inventory {
public:
    void add(const Shape &shape);
    std::string report() const;

private:
    std::map<std::string, double> area_by_kind_;
    std::map<std::string, int> count_by_kind_;
};
