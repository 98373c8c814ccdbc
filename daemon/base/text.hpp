#pragma once
// Small text helpers every layer's error messages use.
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace prefsync::base {

// Levenshtein distance, ASCII case-insensitive.
std::size_t edit_distance(std::string_view a, std::string_view b);

// The candidate closest to `word`, for "did you mean"; "" when none is close enough (a
// suggestion further away than a third of the word is noise, not help).
std::string suggest(std::string_view word, const std::vector<std::string_view>& candidates);

}  // namespace prefsync::base
