#include "words.h"

#include <algorithm>

std::map<std::string, int> count_words(const std::vector<std::string> &words) {
    std::map<std::string, int> counts;
    for (const auto &word : words)
        counts[word] += 1;
    return counts;
}

std::vector<Count> most_frequent(const std::map<std::string, int> &counts, size_t limit) {
    std::vector<Count> ranked;
    for (const auto &[word, times] : counts)
        ranked.push_back(Count{word, times});
    std::stable_sort(ranked.begin(), ranked.end(),
                     [](const Count &a, const Count &b) { return a.times > b.times; });
    if (ranked.size() > limit)
        ranked.resize(limit);
    return ranked;
}
