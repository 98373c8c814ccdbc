#include "daemon/pull/reconcile.hpp"

#include <boost/json.hpp>

namespace prefsync::pull {
namespace {

namespace json = boost::json;

// Scalars compare by meaning: 1 and 1.0, and true and "true" (the reference sends some
// booleans as strings), are the same value.
std::string scalar_text(const json::value& v) {
    if (v.is_string()) return std::string(v.as_string());
    if (v.is_double()) {
        double d = v.as_double();
        if (d == static_cast<double>(static_cast<long long>(d))) return std::to_string(static_cast<long long>(d));
    }
    return json::serialize(v);
}

bool contains(const json::value& expected, const json::value& pulled);

void diff(const json::value& expected, const json::value& pulled, const std::string& path,
          std::vector<std::string>& out) {
    if (expected.is_object()) {
        if (!pulled.is_object()) {
            out.push_back(path.empty() ? "(profile)" : path);
            return;
        }
        const auto& po = pulled.as_object();
        for (const auto& [key, value] : expected.as_object()) {
            auto sub = path.empty() ? std::string(key) : path + "." + std::string(key);
            auto* p = po.if_contains(key);
            if (!p) {
                if (!value.is_null()) out.push_back(sub);
                continue;
            }
            diff(value, *p, sub, out);
        }
        return;
    }
    if (expected.is_array()) {
        if (!pulled.is_array()) {
            out.push_back(path);
            return;
        }
        const auto& pa = pulled.as_array();
        std::size_t i = 0;
        for (const auto& e : expected.as_array()) {
            bool found = false;
            for (const auto& p : pa)
                if (contains(e, p)) {
                    found = true;
                    break;
                }
            if (!found) out.push_back(path + "[" + std::to_string(i) + "]");
            ++i;
        }
        return;
    }
    if (pulled.is_object() || pulled.is_array() || scalar_text(expected) != scalar_text(pulled)) out.push_back(path);
}

bool contains(const json::value& expected, const json::value& pulled) {
    std::vector<std::string> out;
    diff(expected, pulled, "", out);
    return out.empty();
}

}  // namespace

std::vector<std::string> differing_fields(std::string_view expected_json, std::string_view pulled_json) {
    boost::system::error_code ec1, ec2;
    auto expected = json::parse(expected_json, ec1);
    auto pulled = json::parse(pulled_json, ec2);
    if (ec1 || ec2) return {"(unreadable JSON)"};
    std::vector<std::string> out;
    diff(expected, pulled, "", out);
    return out;
}

}  // namespace prefsync::pull
