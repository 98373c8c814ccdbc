// append_json_string: the escapes JSON needs, byte for byte as a one-byte-at-a-time escaper
// writes them, whatever the eight-byte scan sees around an escape.
#include "daemon/base/json_text.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <string>

namespace {

using prefsync::base::append_json_string;
using prefsync::base::json_string;

// The escaping rule, one byte at a time: what the eight-bytes-at-a-time scan must equal.
std::string reference(std::string_view s) {
    std::string out = "\"";
    for (unsigned char c : s) {
        switch (c) {
            case '"': out += "\\\""; break;
            case '\\': out += "\\\\"; break;
            case '\n': out += "\\n"; break;
            case '\r': out += "\\r"; break;
            case '\t': out += "\\t"; break;
            case '\b': out += "\\b"; break;
            case '\f': out += "\\f"; break;
            default:
                if (c < 0x20) {
                    static constexpr char hex[] = "0123456789abcdef";
                    out += "\\u00";
                    out += hex[c >> 4];
                    out += hex[c & 15];
                } else {
                    out += static_cast<char>(c);
                }
        }
    }
    return out + "\"";
}

TEST(JsonString, EscapesQuotesBackslashesAndControlsAndKeepsUtf8) {
    EXPECT_EQ(json_string(""), "\"\"");
    EXPECT_EQ(json_string("plain"), "\"plain\"");
    EXPECT_EQ(json_string("say \"hi\""), "\"say \\\"hi\\\"\"");
    EXPECT_EQ(json_string("C:\\dir\\file"), "\"C:\\\\dir\\\\file\"");
    EXPECT_EQ(json_string("a\nb\rc\td\be\ff"), "\"a\\nb\\rc\\td\\be\\ff\"");
    EXPECT_EQ(json_string(std::string("nul\0x\x01\x1f", 7)), "\"nul\\u0000x\\u0001\\u001f\"");
    EXPECT_EQ(json_string("Zoë Müller, 12 Königstraße, 伟 李"), "\"Zoë Müller, 12 Königstraße, 伟 李\"");
    EXPECT_EQ(json_string("\x7f space ~"), "\"\x7f space ~\"");  // DEL and the top of ASCII as they are
}

TEST(JsonString, EveryByteAtEveryPositionOfABlockIsEscapedAsOneByteAtATime) {
    // Lengths around the eight-byte blocks, each byte value at each position, in plain text
    // and in UTF-8 text (bytes of 0x80 and above next to the one looked at).
    for (const char* filler :
         {"abcdefghijklmnopqrstuvwx",
          "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"}) {
        ASSERT_GE(std::strlen(filler), 20u) << "each length below is cut from the filler";
        for (std::size_t length = 1; length <= 20; ++length) {
            for (std::size_t at = 0; at < length; ++at) {
                for (int b = 0; b < 256; ++b) {
                    std::string s(filler, length);
                    s[at] = static_cast<char>(b);
                    std::string out = "prefix:";
                    append_json_string(out, s);
                    ASSERT_EQ(out, "prefix:" + reference(s)) << "length " << length << ", byte " << b << " at " << at;
                }
            }
        }
    }
}

TEST(JsonString, SeveralEscapesInOneBlockAndRunsBetweenThem) {
    for (std::string s : {std::string("\"\"\"\"\"\"\"\"\"\""), std::string("a\"b\\c\nd\"e\\f\ng\"h\\"),
                          std::string(37, '\\'), std::string("0123456789abcdef\"0123456789abcdef\n")})
        EXPECT_EQ(json_string(s), reference(s));
}

}  // namespace
