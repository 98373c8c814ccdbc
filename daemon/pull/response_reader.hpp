#pragma once
// The pull side's fast path: API answers (one profile, or a search's array of profiles) split
// into the profiles' JSON text and ProfileId with simdjson: one validating DOM pass, which
// also gives the ProfileIds, and for arrays an On-Demand pass for each element's text.
// Tolerant where the reference is inconsistent (ProfileId as a number or a numeric string;
// anything else in the profile is passed through untouched), strict about what it needs:
// the answer must be JSON, an object or an array of objects.
#include <simdjson.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace prefsync::pull {

struct PulledProfile {
    std::optional<std::int64_t> profile_id;
    std::string_view json;  // the profile as received (valid until the next read())
};

class ResponseReader {
public:
    // Fills `out`; returns "" or why the answer cannot be read.
    std::string read(std::string_view body, std::vector<PulledProfile>& out);

private:
    simdjson::ondemand::parser parser_;
    simdjson::dom::parser validator_;
    std::string buffer_;  // the answer with simdjson's padding, reused across answers
    std::vector<std::optional<std::int64_t>> ids_;
};

}  // namespace prefsync::pull
