#include "daemon/emulator/body_validation.hpp"

namespace prefsync::emulator {
namespace {

namespace json = boost::json;

std::optional<std::string> check_object(json::object& o, const api::ObjectSchema& schema, const std::string& path) {
    std::vector<std::string> drop;
    for (auto& kv : o) {
        std::string key(kv.key());
        std::string at = path.empty() ? key : path + "." + key;
        const auto* field = schema.find(key);
        if (!field) return at + ": unknown field of " + std::string(schema.name);
        if (field->read_only) {
            drop.push_back(key);
            continue;
        }
        json::value& v = kv.value();
        if (v.is_null()) continue;  // null is "not given"
        switch (field->type) {
            case api::FieldType::String:
                if (!v.is_string()) return at + ": expected a string";
                // The one content rule the emulator enforces, so clients meet a real 400.
                if (key == "EmailAddress" && !v.as_string().empty() &&
                    std::string_view(v.as_string()).find('@') == std::string_view::npos)
                    return at + ": not an email address";
                break;
            case api::FieldType::Int:
                if (!v.is_int64() && !v.is_uint64()) return at + ": expected an integer";
                break;
            case api::FieldType::Bool:
                // The reference's own samples send IsMobile as "false": tolerate string booleans there.
                if (v.is_string() && key == "IsMobile" && (v.as_string() == "true" || v.as_string() == "false")) {
                    v = v.as_string() == "true";
                    break;
                }
                if (!v.is_bool()) return at + ": expected a boolean";
                break;
            case api::FieldType::Object:
                if (!v.is_object()) return at + ": expected an object";
                if (auto e = check_object(v.as_object(), *field->element, at)) return e;
                break;
            case api::FieldType::Array: {
                if (!v.is_array()) return at + ": expected an array";
                auto& arr = v.as_array();
                for (std::size_t i = 0; i < arr.size(); ++i) {
                    std::string item = at + "[" + std::to_string(i) + "]";
                    if (!arr[i].is_object()) return item + ": expected an object";
                    if (auto e = check_object(arr[i].as_object(), *field->element, item)) return e;
                }
                break;
            }
        }
    }
    for (auto& key : drop) o.erase(key);
    return std::nullopt;
}

}  // namespace

std::optional<std::string> validate_body(json::object& body, const api::ObjectSchema& schema) {
    return check_object(body, schema, "");
}

}  // namespace prefsync::emulator
