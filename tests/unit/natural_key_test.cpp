// The natural-key table against the emulator's merge update, which documents the same keys:
// for every collection and every key field, a respelled or altered key must merge into the
// existing element in the emulator exactly when element_key calls it the same element.
#include "daemon/patch/natural_key.hpp"

#include <gtest/gtest.h>

#include "daemon/emulator/profile_store.hpp"

namespace prefsync::patch {
namespace {

namespace json = boost::json;

// Where a collection lives in a profile: the path of host elements around it.
json::object wrap(std::string_view collection, json::object element) {
    json::array inner{std::move(element)};
    if (collection == "EmailPreferences")
        return {{"Emails", json::array{json::object{{"EmailAddress", "host@x.com"}, {"EmailPreferences", inner}}}}};
    if (collection == "PhonePreferences")
        return {{"PhoneNumbers", json::array{json::object{{"PhoneNumber", "5550000"}, {"PhonePreferences", inner}}}}};
    if (collection == "AddressPreferences")
        return {{"Addresses", json::array{json::object{{"Address1", "1 Host St"},
                                                       {"City", "Host"},
                                                       {"PostalCode", "00000"},
                                                       {"AddressPreferences", inner}}}}};
    if (collection == "ConsentAssociations" || collection == "PreferenceAttributes")
        return {{"ProfilePreferences",
                 json::array{json::object{
                     {"ProgramId", "HP"}, {"ChannelId", "HC"}, {"FilterId", "HF"}, {std::string(collection), inner}}}}};
    return {{std::string(collection), inner}};
}

// The elements of `collection` in a stored profile, wherever wrap() put them.
const json::array& elements(const json::object& profile, std::string_view collection) {
    for (auto host : {"Emails", "PhoneNumbers", "Addresses", "ProfilePreferences"})
        if (auto* h = profile.if_contains(host); h && host != collection)
            if (auto* in = h->as_array()[0].as_object().if_contains(collection)) return in->as_array();
    return profile.at(collection).as_array();
}

// How many elements carry a Marker after upserting `first`, then `second`.
std::size_t stored_after(std::string_view collection, const json::object& first, const json::object& second) {
    emulator::ProfileStore store([] { return std::chrono::system_clock::time_point{}; }, std::chrono::milliseconds(0));
    emulator::AltId alt{"CRMID", "C1"};
    store.upsert(alt, wrap(collection, first));
    store.upsert(alt, wrap(collection, second));
    auto profile = store.get(*store.find(alt), true).body.as_object();
    std::size_t n = 0;
    for (const auto& e : elements(profile, collection)) n += e.as_object().contains("Marker");
    return n;
}

TEST(NaturalKey, EveryCollectionOfTheSchemaWithElementsHasAKey) {
    for (auto c : {"Emails", "PhoneNumbers", "Addresses", "ProfileTags", "CustomFields", "Groups", "AlternateIds",
                   "Consents", "ConsentAssociations", "ProfilePreferences", "EmailPreferences", "PhonePreferences",
                   "AddressPreferences", "PreferenceAttributes"})
        EXPECT_TRUE(natural_key(c)) << c;
    EXPECT_FALSE(natural_key("CustomerName"));
    EXPECT_EQ(natural_keys().size(), 14u);
}

TEST(NaturalKey, NormalisationAndTheEmptyKey) {
    const auto& phone = *natural_key("PhoneNumbers");
    EXPECT_EQ(element_key(phone, {{"PhoneNumber", "(555) 010-2000"}}),
              element_key(phone, {{"PhoneNumber", "5550102000"}}));
    EXPECT_EQ(element_key(phone, {{"PhoneNumber", "n/a"}}), "");
    const auto& address = *natural_key("Addresses");
    EXPECT_EQ(element_key(address, {{"Address1", "1 Main"}, {"City", "X"}}),
              element_key(address, {{"Address1", "1 MAIN"}, {"City", "x"}, {"PostalCode", ""}}));
    EXPECT_NE(element_key(address, {{"Address1", "a"}, {"City", "b"}}), element_key(address, {{"Address1", "ab"}}))
        << "fields do not run into each other";
    EXPECT_EQ(element_key(address, {{"Country", "US"}}), "");
    EXPECT_EQ(element_key(*natural_key("Emails"), {{"EmailAddress", 5}}), "") << "a non-string key is missing";
}

TEST(NaturalKey, AgreesWithTheEmulatorsMergeUpdateForEveryKeyField) {
    int checked = 0;
    for (const auto& key : natural_keys()) {
        json::object base{{"Marker", "1"}};
        for (const auto& f : key.fields)
            base[f.name] = f.match == KeyMatch::Digits ? std::string("555 0100") : "Val" + std::string(f.name);
        for (const auto& f : key.fields) {
            SCOPED_TRACE(std::string(key.collection) + "." + std::string(f.name));
            std::string text(base.at(f.name).as_string());
            std::string upper = text, dashed = text;
            for (auto& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
            dashed.insert(1, "-");
            for (const auto& variant : {upper, dashed, text + "Z9"}) {
                json::object other = base;
                other[f.name] = variant;
                other["Marker"] = "2";
                bool same_key = element_key(key, base) == element_key(key, other);
                EXPECT_EQ(stored_after(key.collection, base, other), same_key ? 1u : 2u)
                    << "variant \"" << variant << "\": element_key says " << (same_key ? "same" : "different");
                ++checked;
            }
        }
    }
    EXPECT_EQ(checked, 3 * 27);  // 27 key fields in the table
}

}  // namespace
}  // namespace prefsync::patch
