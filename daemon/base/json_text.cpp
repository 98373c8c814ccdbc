#include "daemon/base/json_text.hpp"

#include <cstdint>
#include <cstring>

namespace prefsync::base {

namespace {

constexpr std::uint64_t kOnes = 0x0101010101010101ULL;
constexpr std::uint64_t kHighs = 0x8080808080808080ULL;

// Whether any of the eight bytes in `w` is below `n` (n <= 0x80). The classic bit trick
// (exact as a yes/no answer): a byte below n borrows in w - n * kOnes and had its top bit clear.
constexpr std::uint64_t any_below(std::uint64_t w, std::uint8_t n) {
    return (w - kOnes * n) & ~w & kHighs;
}

// Whether any of the eight bytes in `w` needs an escape: a control character, '"' or '\\'.
// Most values (names, addresses, ids) need none: they are checked eight bytes at a time
// instead of one, and appended in one piece.
constexpr bool needs_escape(std::uint64_t w) {
    return (any_below(w, 0x20) | any_below(w ^ (kOnes * '"'), 1) | any_below(w ^ (kOnes * '\\'), 1)) != 0;
}

}  // namespace

void append_json_string(std::string& out, std::string_view s) {
    out += '"';
    std::size_t run = 0;  // start of the pending run of bytes that need no escape
    std::size_t i = 0;
    while (i < s.size()) {
        if (s.size() - i >= 8) {
            std::uint64_t w;
            std::memcpy(&w, s.data() + i, 8);
            if (!needs_escape(w)) {
                i += 8;
                continue;
            }
        }
        auto c = static_cast<unsigned char>(s[i++]);
        if (c >= 0x20 && c != '"' && c != '\\') continue;
        out.append(s.data() + run, i - 1 - run);
        run = i;
        switch (c) {
            case '"': out += "\\\""; break;
            case '\\': out += "\\\\"; break;
            case '\n': out += "\\n"; break;
            case '\r': out += "\\r"; break;
            case '\t': out += "\\t"; break;
            case '\b': out += "\\b"; break;
            case '\f': out += "\\f"; break;
            default: {
                static constexpr char hex[] = "0123456789abcdef";
                out += "\\u00";
                out += hex[c >> 4];
                out += hex[c & 15];
            }
        }
    }
    out.append(s.data() + run, s.size() - run);
    out += '"';
}

}  // namespace prefsync::base
