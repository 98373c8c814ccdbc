#include "config/yaml/key_table.hpp"

#include <stdexcept>

namespace prefsync::config {
namespace {

std::vector<std::string_view> split(std::string_view text, char separator) {
    std::vector<std::string_view> out;
    if (text.empty()) return out;
    for (std::size_t start = 0;;) {
        auto end = text.find(separator, start);
        out.push_back(text.substr(start, end == std::string_view::npos ? end : end - start));
        if (end == std::string_view::npos) return out;
        start = end + 1;
    }
}

}  // namespace

std::vector<std::string_view> KeySpec::value_list() const {
    return split(values, '|');
}

std::vector<std::vector<std::string_view>> KeyRule::alternatives() const {
    std::vector<std::vector<std::string_view>> out;
    for (auto alternative : split(keys, '|')) out.push_back(split(alternative, '+'));
    return out;
}

const KeySpec* KeyTable::find(std::string_view name) const {
    for (const auto& k : keys)
        if (k.name == name) return &k;
    return nullptr;
}

const KeySpec& KeyTable::key(std::string_view name) const {
    if (const auto* k = find(name)) return *k;
    throw std::logic_error("config key table " + std::string(id) + " has no key " + std::string(name));
}

std::vector<std::string_view> KeyTable::names() const {
    std::vector<std::string_view> out;
    for (const auto& k : keys)
        if (k.type != ValueType::Refused) out.push_back(k.name);
    return out;
}

std::string join_alternatives(const std::vector<std::string_view>& names, std::string_view last) {
    std::string out;
    for (std::size_t i = 0; i < names.size(); ++i) {
        if (i > 0) out += i + 1 == names.size() ? last : std::string_view(", ");
        out += names[i];
    }
    return out;
}

}  // namespace prefsync::config
