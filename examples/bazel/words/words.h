#pragma once
#include <map>
#include <string>
#include <vector>

// How often each word occurs, most frequent first.
struct Count {
    std::string word;
    int times;
};

std::map<std::string, int> count_words(const std::vector<std::string> &words);
std::vector<Count> most_frequent(const std::map<std::string, int> &counts, size_t limit);
