#include "daemon/patch/json_pointer.hpp"

namespace prefsync::patch {

std::optional<std::vector<std::string>> parse_pointer(std::string_view pointer) {
    std::vector<std::string> tokens;
    if (pointer.empty()) return tokens;
    if (pointer.front() != '/') return std::nullopt;
    std::string token;
    for (std::size_t i = 1; i <= pointer.size(); ++i) {
        if (i == pointer.size() || pointer[i] == '/') {
            tokens.push_back(std::move(token));
            token.clear();
        } else if (pointer[i] == '~') {
            // RFC 6901 §3: "~" is only ever the start of "~0" or "~1"; anything else is not a
            // pointer, and guessing would address a member the client did not name.
            if (i + 1 == pointer.size() || (pointer[i + 1] != '0' && pointer[i + 1] != '1')) return std::nullopt;
            token += pointer[++i] == '0' ? '~' : '/';
        } else {
            token += pointer[i];
        }
    }
    return tokens;
}

void append_token(std::string& pointer, std::string_view token) {
    pointer += '/';
    for (char c : token) {
        if (c == '~')
            pointer += "~0";
        else if (c == '/')
            pointer += "~1";
        else
            pointer += c;
    }
}

std::string append_index(std::string pointer, std::size_t index) {
    pointer += '/';
    pointer += std::to_string(index);
    return pointer;
}

std::optional<std::size_t> array_index(std::string_view token, std::size_t size, IndexUse use) {
    if (token == "-") return use == IndexUse::Insert ? std::optional(size) : std::nullopt;
    if (token.empty() || (token.size() > 1 && token.front() == '0')) return std::nullopt;
    std::size_t index = 0;
    for (char c : token) {
        if (c < '0' || c > '9') return std::nullopt;
        // Any index beyond `size` is out of bounds, so stop before it could overflow.
        index = index * 10 + static_cast<std::size_t>(c - '0');
        if (index > size) return std::nullopt;
    }
    if (index == size && use == IndexUse::Existing) return std::nullopt;
    return index;
}

}  // namespace prefsync::patch
