#pragma once
// The round-trip check: does a pulled profile hold what the push job sends for the same
// row? The expected body (the push job's mapping of the source row) is compared as a
// subset: every field it sets must be in the pulled profile with the same value; what the
// server adds (ProfileId, Edited, UpdateStatus, defaults) is ignored. Array elements match
// an element of the pulled array wherever it is, since the server keeps its own order.
#include <string>
#include <string_view>
#include <vector>

namespace prefsync::pull {

// The differing fields as paths ("CustomerName.FirstName", "Emails[1]"); empty: identical.
std::vector<std::string> differing_fields(std::string_view expected_json, std::string_view pulled_json);

}  // namespace prefsync::pull
