#pragma once
// Masking personal data in text that is about to be logged (request bodies and the server's
// answers, with `log.bodies: true`).
#include <string>
#include <string_view>

namespace prefsync::base {

// `text` with every email address reduced to its first character and domain
// ("jane@example.com" → "j***@example.com"; any name before an '@' is masked, valid address
// or not) and every phone number to its last four digits
// ("+1 (555) 123-4567" → "***4567"). A phone number is a run of 7 to 15 digits with only
// "+-(). " between them, standing alone (a date "2026-01-31" is not one). In JSON (text
// starting with '{' or '['), only string values are looked at: a ProfileId stays readable.
// Errs on the side of masking: an order number that looks like a phone is masked too.
std::string mask_personal_data(std::string_view text);

}  // namespace prefsync::base
