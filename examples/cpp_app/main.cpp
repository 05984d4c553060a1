#include <iostream>

#include "inventory.h"
#include "shapes.h"

int main(int argc, char **argv) {
    int count = argc > 1 ? std::stoi(argv[1]) : 6;
    Inventory inventory;
    for (const auto &shape : make_shapes(count))
        inventory.add(*shape);
    std::cout << inventory.report();
    return 0;
}
