#pragma once
// Checks a request body against the API's schema, as the real service would reject it:
// unknown fields and wrong JSON types are 400s. Read-only fields (ProfileId, Edited,
// UpdateStatus, Cass*) are accepted and dropped, since clients PUT back what they GET.
#include <boost/json.hpp>
#include <optional>
#include <string>

#include "daemon/api/profile_schema.hpp"

namespace prefsync::emulator {

// On success strips read-only fields from `body` and returns nullopt; otherwise the message
// for a 400 ("Emails[0].IsDefault: expected a boolean").
std::optional<std::string> validate_body(boost::json::object& body, const api::ObjectSchema& schema);

}  // namespace prefsync::emulator
