#include <iostream>

#include "words.h"

int main(int argc, char **argv) {
    std::vector<std::string> words(argv + 1, argv + argc);
    if (words.empty())
        words = {"to", "be", "or", "not", "to", "be"};
    for (const auto &count : most_frequent(count_words(words), 3))
        std::cout << count.word << " " << count.times << "\n";
    return 0;
}
