#include "inventory.h"

#include <sstream>

void Inventory::add(const Shape &shape) {
    area_by_kind_[shape.name()] += shape.area();
    count_by_kind_[shape.name()] += 1;
}

std::string Inventory::report() const {
    std::ostringstream out;
    for (const auto &[kind, area] : area_by_kind_)
        out << kind << ": " << count_by_kind_.at(kind) << " shapes, area " << area << "\n";
    return out.str();
}
