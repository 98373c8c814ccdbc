#include "daemon/base/text.hpp"

#include <algorithm>
#include <cctype>
#include <cstdint>

namespace prefsync::base {

std::size_t edit_distance(std::string_view a, std::string_view b) {
    std::vector<std::size_t> row(b.size() + 1);
    for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
    for (std::size_t i = 1; i <= a.size(); ++i) {
        std::size_t diagonal = row[0];
        row[0] = i;
        for (std::size_t j = 1; j <= b.size(); ++j) {
            std::size_t above = row[j];
            bool same = std::tolower(static_cast<unsigned char>(a[i - 1])) ==
                        std::tolower(static_cast<unsigned char>(b[j - 1]));
            row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (same ? 0 : 1)});
            diagonal = above;
        }
    }
    return row[b.size()];
}

std::string suggest(std::string_view word, const std::vector<std::string_view>& candidates) {
    std::string_view best;
    std::size_t best_distance = SIZE_MAX;
    for (auto c : candidates) {
        auto d = edit_distance(word, c);
        if (d < best_distance) best_distance = d, best = c;
    }
    if (best.empty() || best_distance > std::max<std::size_t>(2, word.size() / 3)) return {};
    return std::string(best);
}

}  // namespace prefsync::base
