#include "daemon/api/value_convert.hpp"

#include <gtest/gtest.h>

namespace prefsync::api {
namespace {

TEST(ValueConvert, Booleans) {
    for (auto t : {"true", "TRUE", "Yes", "y", "1", "t", "on"}) EXPECT_EQ(parse_bool(t), true) << t;
    for (auto f : {"false", "No", "N", "0", "f", "OFF"}) EXPECT_EQ(parse_bool(f), false) << f;
    for (auto bad : {"", "2", "maybe", "yes!"}) EXPECT_EQ(parse_bool(bad), std::nullopt) << bad;
}

TEST(ValueConvert, Integers) {
    EXPECT_EQ(parse_int("42"), 42);
    EXPECT_EQ(parse_int("+7"), 7);
    EXPECT_EQ(parse_int("-3"), -3);
    EXPECT_EQ(parse_int("12345678901"), 12345678901LL);
    for (auto bad : {"", "4.2", "1e3", "12a", " 1", "99999999999999999999", "+-5", "+", "--5", "-+5"})
        EXPECT_EQ(parse_int(bad), std::nullopt) << bad;
}

TEST(ValueConvert, Normalisations) {
    EXPECT_EQ(trim("  a b \t\r\n"), "a b");
    std::string s = "Ab.C@Example.COM";
    to_lower_ascii(s);
    EXPECT_EQ(s, "ab.c@example.com");
    to_upper_ascii(s);
    EXPECT_EQ(s, "AB.C@EXAMPLE.COM");
    std::string phone = "+1 (404) 555-0100 ext";
    keep_digits(phone);
    EXPECT_EQ(phone, "14045550100");
    std::string spaced = "  a   b \t c ";
    collapse_spaces(spaced);
    EXPECT_EQ(spaced, "a b c");
    std::string accented = "ÉCOLE";
    to_lower_ascii(accented);
    EXPECT_EQ(accented, "École") << "ASCII only: multi-byte UTF-8 is left intact";
}

TEST(ValueConvert, Dates) {
    EXPECT_EQ(reformat_date("04/24/2022", "%m/%d/%Y", "%Y-%m-%d"), "2022-04-24");
    EXPECT_EQ(reformat_date("4/5/2022", "%m/%d/%Y", "%Y-%m-%d"), "2022-04-05");
    EXPECT_EQ(reformat_date("2022-04-24 13:05:09", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S"), "2022-04-24T13:05:09");
    EXPECT_EQ(reformat_date("29.02.24", "%d.%m.%y", "%Y-%m-%d"), "2024-02-29");
    EXPECT_EQ(reformat_date("29/02/2023", "%d/%m/%Y", "%Y-%m-%d"), std::nullopt) << "not a leap year";
    EXPECT_EQ(reformat_date("31/04/2023", "%d/%m/%Y", "%Y-%m-%d"), std::nullopt);
    EXPECT_EQ(reformat_date("13/01/2023", "%m/%d/%Y", "%Y-%m-%d"), std::nullopt);
    EXPECT_EQ(reformat_date("2023-01-01x", "%Y-%m-%d", "%Y-%m-%d"), std::nullopt) << "trailing text";
    EXPECT_EQ(reformat_date("2023/01/01", "%Y-%m-%d", "%Y-%m-%d"), std::nullopt);
    // Every field zero-padded to its width, whatever its value.
    EXPECT_EQ(reformat_date("7-3-5 1:2:3", "%Y-%m-%d %H:%M:%S", "%Y%m%d%H%M%S|%y|%%|%Q"), "00070305010203|07|%|Q");
    EXPECT_EQ(reformat_date("9999-12-31", "%Y-%m-%d", "%d.%m.%Y"), "31.12.9999");
    EXPECT_EQ(reformat_date("2000-01-01 00:00:00", "%Y-%m-%d %H:%M:%S", "%y%H%M%S"), "00000000");
}

TEST(ValueConvert, CheckConvertibleExplains) {
    EXPECT_EQ(check_convertible("yes", api::FieldType::Bool), "");
    EXPECT_EQ(check_convertible("x", api::FieldType::String), "");
    EXPECT_EQ(check_convertible("x", api::FieldType::Int), "expected a whole number, got \"x\"");
}

}  // namespace
}  // namespace prefsync::api
