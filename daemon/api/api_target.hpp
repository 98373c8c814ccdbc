#pragma once
// Which API a base URL and client id name, in a form two spellings of the same one compare
// equal in: what a job's journal state (push) and an unfinished pull's output belong to.
#include <string>
#include <string_view>

namespace prefsync::api {

// Scheme and host in lower case, the scheme's default port and trailing slashes dropped,
// then the client id.
std::string api_target(std::string_view base_url, std::string_view client_id);

}  // namespace prefsync::api
