#include "daemon/patch/natural_key.hpp"

#include <array>

namespace prefsync::patch {
namespace {

constexpr auto Exact = KeyMatch::Exact;
constexpr auto Fold = KeyMatch::CaseInsensitive;

constexpr std::array email{KeyField{"EmailAddress", Fold}};
constexpr std::array phone{KeyField{"PhoneNumber", KeyMatch::Digits}};
constexpr std::array address{KeyField{"Address1", Fold}, KeyField{"City", Fold}, KeyField{"PostalCode", Fold}};
constexpr std::array name{KeyField{"Name", Fold}};
constexpr std::array group{KeyField{"GroupType", Exact}, KeyField{"GroupName", Exact}};
constexpr std::array alternate_id{KeyField{"AlternateIdType", Exact}};
constexpr std::array consent{KeyField{"ConsentType", Exact}, KeyField{"ConsentVersion", Exact}};
constexpr std::array preference{KeyField{"ProgramId", Exact}, KeyField{"ChannelId", Exact},
                                KeyField{"FilterId", Exact}};
constexpr std::array attribute{KeyField{"Key", Exact}};

// The reference names no keys; these are the emulator's documented merge keys.
// ConsentAssociations (inside a preference) identify a consent the way Consents do.
constexpr std::array table{
    NaturalKey{"Emails", email},
    NaturalKey{"PhoneNumbers", phone},
    NaturalKey{"Addresses", address},
    NaturalKey{"ProfileTags", name},
    NaturalKey{"CustomFields", name},
    NaturalKey{"Groups", group},
    NaturalKey{"AlternateIds", alternate_id},
    NaturalKey{"Consents", consent},
    NaturalKey{"ConsentAssociations", consent},
    NaturalKey{"ProfilePreferences", preference},
    NaturalKey{"EmailPreferences", preference},
    NaturalKey{"PhonePreferences", preference},
    NaturalKey{"AddressPreferences", preference},
    NaturalKey{"PreferenceAttributes", attribute},
};

std::string normalise(std::string_view text, KeyMatch match) {
    std::string out;
    out.reserve(text.size());
    for (char c : text) {
        if (match == KeyMatch::Digits) {
            if (c >= '0' && c <= '9') out += c;
        } else if (match == KeyMatch::CaseInsensitive && c >= 'A' && c <= 'Z') {
            out += static_cast<char>(c - 'A' + 'a');
        } else {
            out += c;
        }
    }
    return out;
}

}  // namespace

const NaturalKey* natural_key(std::string_view collection) {
    for (const auto& k : table)
        if (k.collection == collection) return &k;
    return nullptr;
}

std::span<const NaturalKey> natural_keys() {
    return table;
}

std::string element_key(const NaturalKey& key, const boost::json::object& element) {
    std::string out;
    bool any = false;
    for (const auto& field : key.fields) {
        std::string part;
        if (const auto* v = element.if_contains(field.name); v && v->is_string())
            part = normalise(v->get_string(), field.match);
        any = any || !part.empty();
        // Length-prefixed, so no text inside a field can make two different keys collide.
        out += std::to_string(part.size());
        out += ':';
        out += part;
    }
    return any ? out : std::string();
}

}  // namespace prefsync::patch
