#include "daemon/api/api_target.hpp"

#include <boost/url/parse.hpp>
#include <cctype>

namespace prefsync::api {
namespace {

std::string lower(std::string_view s) {
    std::string out(s);
    for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

}  // namespace

std::string api_target(std::string_view base_url, std::string_view client_id) {
    std::string url;
    if (auto parsed = boost::urls::parse_absolute_uri(base_url)) {
        auto scheme = lower(parsed->scheme());
        url = scheme + "://" + lower(parsed->encoded_host());
        auto port = std::string(parsed->port());
        if (!port.empty() && !(scheme == "https" && port == "443") && !(scheme == "http" && port == "80"))
            url += ":" + port;
        url += std::string(parsed->encoded_path());
    } else {
        url = base_url;  // validated when the config was loaded: not expected
    }
    while (!url.empty() && url.back() == '/') url.pop_back();
    return url + "\nclient_id=" + std::string(client_id);
}

}  // namespace prefsync::api
