#include "daemon/init/column_guess.hpp"

#include <algorithm>
#include <array>
#include <set>
#include <utility>

#include "daemon/api/value_convert.hpp"

namespace prefsync::init {
namespace {

bool is_lower(char c) {
    return c >= 'a' && c <= 'z';
}
bool is_upper(char c) {
    return c >= 'A' && c <= 'Z';
}
bool is_digit(char c) {
    return c >= '0' && c <= '9';
}
bool is_ascii_alnum(char c) {
    return is_lower(c) || is_upper(c) || is_digit(c);
}
bool non_ascii(char c) {
    return static_cast<unsigned char>(c) >= 0x80;
}

// U+00C0..U+00FF (lead byte C3) folded to ASCII; "" for × and ÷.
constexpr std::array<const char*, 64> kLatin1Fold{
    "a", "a", "a", "a", "a", "a", "ae", "c", "e",  "e",  "e", "e", "i", "i", "i", "i", "d",  "n", "o",  "o", "o", "o",
    "o", "",  "o", "u", "u", "u", "u",  "y", "th", "ss", "a", "a", "a", "a", "a", "a", "ae", "c", "e",  "e", "e", "e",
    "i", "i", "i", "i", "d", "n", "o",  "o", "o",  "o",  "o", "",  "o", "u", "u", "u", "u",  "y", "th", "y"};

bool contains(std::string_view key, std::string_view part) {
    return key.find(part) != std::string_view::npos;
}

template <class Words>
bool contains_any(std::string_view key, const Words& parts) {
    return std::any_of(std::begin(parts), std::end(parts), [&](std::string_view p) { return contains(key, p); });
}

template <class Words>
bool one_of(std::string_view key, const Words& words) {
    return std::find(std::begin(words), std::end(words), key) != std::end(words);
}

std::string upper(std::string_view s) {
    std::string out(s);
    api::to_upper_ascii(out);
    return out;
}

struct Synonyms {
    Role role;
    std::initializer_list<std::string_view> keys;
};

// Exact names, after match_key. Order matters only where one key could appear twice.
const std::initializer_list<Synonyms> kSynonyms{
    {Role::FirstName,
     {"firstname", "fname", "first", "givenname", "forename", "namefirst", "firstnm", "prenom", "vorname", "nombre"}},
    {Role::MiddleName, {"middlename", "middle", "mname", "middleinitial", "mi", "namemiddle"}},
    {Role::LastName,
     {"lastname", "lname", "last", "surname", "familyname", "namelast", "lastnm", "nom", "nachname", "apellido",
      "apellidos"}},
    {Role::Prefix, {"prefix", "nameprefix", "salutation", "honorific", "anrede", "civilite", "title"}},
    {Role::Suffix, {"suffix", "namesuffix"}},
    {Role::CustomerType, {"customertype", "customercategory", "customerclass", "profiletype"}},
    {Role::Locale,
     {"locale", "language", "lang", "languagecode", "langcode", "preferredlanguage", "preferredlocale", "defaultlocale",
      "culture", "langue", "sprache", "idioma"}},
    {Role::Tags, {"tags", "tag", "taglist", "profiletags", "labels", "label", "interests", "keywords"}},
    {Role::Address1,
     {"address1", "address", "addressline1", "addressline", "line1", "street", "street1", "streetaddress",
      "streetaddress1", "addr", "addr1", "adresse", "strasse", "calle", "direccion"}},
    {Role::Address2,
     {"address2", "addressline2", "line2", "street2", "streetaddress2", "addr2", "apt", "apartment", "suite", "unit",
      "aptsuite"}},
    {Role::City, {"city", "town", "cityname", "locality", "municipality", "ville", "ort", "stadt", "ciudad"}},
    {Role::StateProvince,
     {"state", "province", "region", "stateprovince", "stateorprovince", "stateregion", "provincestate", "stateprov",
      "statecode", "provinceregion", "bundesland"}},
    {Role::PostalCode,
     {"zip", "zipcode", "postalcode", "postcode", "postal", "zippostalcode", "postalzip", "zippostal", "plz",
      "postleitzahl", "codepostal"}},
    {Role::Country,
     {"country", "countrycode", "countryname", "countryiso", "countryregion", "nation", "pays", "land", "pais"}},
};

// Identity names, surest first.
const std::initializer_list<std::pair<std::string_view, int>> kIdentityNames{
    {"crmid", 1},      {"crmkey", 1},         {"crmnumber", 1},   {"customerid", 2},  {"custid", 2},
    {"customerno", 2}, {"customernumber", 2}, {"customernum", 2}, {"customerkey", 2}, {"kundennummer", 2},
    {"kundenid", 2},   {"numeroclient", 2},   {"contactid", 3},   {"accountid", 3},   {"accountnumber", 3},
    {"memberid", 3},   {"membernumber", 3},   {"loyaltyid", 3},   {"clientid", 3},    {"userid", 4},
    {"personid", 4},   {"externalid", 4},     {"sourceid", 4},    {"recordid", 4},    {"id", 6},
    {"uid", 6},        {"uuid", 6},           {"guid", 6}};

// Prefixes that qualify a field without changing what it is: "billing_city" is a City.
// The second member is the AddressType they imply, if any.
const std::initializer_list<std::pair<std::string_view, std::string_view>> kQualifiers{
    {"billing", "Billing"}, {"shipping", "Shipping"}, {"mailing", "Mailing"},
    {"home", "Home"},       {"work", "Work"},         {"business", "Work"},
    {"office", "Work"},     {"postal", "Mailing"},    {"primary", ""},
    {"main", ""},           {"customer", ""},         {"cust", ""},
    {"contact", ""},        {"client", ""},           {"member", ""},
    {"person", ""},         {"personal", ""},         {"profile", ""},
    {"user", ""},           {"default", ""}};

const std::array kOptOutWords{"optout", "optedout", "unsubscri", "donot", "dnc", "nocontact"};
const std::array kConsentWords{"consent", "gdpr"};
const std::array kOptInWords{"optin", "optedin", "subscri", "newsletter", "permission", "marketing", "allow",
                             "agree", "accept",  "emailok", "smsok",      "mailok",     "contactok"};

// Words of a flag's name that say "flag" rather than which program it is.
const std::array kFlagStopWords{"opt",          "opted",       "in",         "out",       "optin",        "optout",
                                "optedin",      "optedout",    "subscribed", "subscribe", "subscription", "subscriber",
                                "unsubscribed", "unsubscribe", "is",         "has",       "flag",         "yn",
                                "ok",           "allow",       "allowed",    "consent",   "consents",     "consented",
                                "status",       "do",          "not",        "dnc",       "to",           "preference",
                                "pref",         "agree",       "agreed",     "accept",    "accepted",     "the"};

std::string flag_channel(std::string_view key) {
    if (contains_any(key, std::array{"sms", "text", "whatsapp"})) return "SMS";
    if (contains_any(key, std::array{"email", "newsletter", "courriel"})) return "EMAIL";
    if (contains_any(key, std::array{"phone", "call", "tele", "voice"})) return "PHONE";
    if (contains_any(key, std::array{"post", "mail", "letter", "catalog"})) return "MAIL";
    return "";
}

// The words of a flag's name that name its program: "Newsletter Opt-In" → {newsletter}.
std::vector<std::string> program_words(std::string_view name) {
    std::vector<std::string> out;
    for (auto& w : name_words(name)) {
        auto k = match_key(w);
        if (k.empty() || one_of(k, kFlagStopWords)) continue;
        out.push_back(w);
    }
    return out;
}

void flag_guess(std::string_view name, std::string_view key, NameGuess& g) {
    g.channel = flag_channel(key);
    auto words = program_words(name);
    if (g.role == Role::Consent) {
        // The bundled example's email consent type; other consents are named after the column.
        if (g.channel == "EMAIL")
            g.program = "EmailMarketing";
        else if (g.channel == "SMS")
            g.program = "SmsMarketing";
        else {
            for (auto& w : words) g.program += pascal_case(w);
            if (g.program.empty()) g.program = "Marketing";
        }
        return;
    }
    for (auto& w : words) {
        auto k = match_key(w);
        if (k.empty()) continue;
        g.program += (g.program.empty() ? "" : "-") + upper(k);
    }
    if (g.program.empty()) g.program = g.channel.empty() ? "MARKETING" : g.channel;
}

std::string email_type(std::string_view key, int index) {
    if (contains_any(key, std::array{"work", "business", "office", "company", "corporate", "job", "arbeit", "travail",
                                     "bureau", "trabajo"}))
        return "Work";
    if (contains_any(key, std::array{"personal", "private", "home", "privat"})) return "Personal";
    if (contains_any(key, std::array{"other", "alt", "secondary", "second", "backup"}) || index >= 2) return "Other";
    return "";
}

std::string phone_type(std::string_view key, int index) {
    if (contains_any(key, std::array{"mobile", "cell", "handy", "portable", "sms", "gsm"})) return "Mobile";
    if (contains_any(key, std::array{"home", "private", "privat", "residence", "evening", "house"})) return "Home";
    if (contains_any(key, std::array{"work", "business", "office", "direct", "company", "arbeit", "day", "travail",
                                     "bureau", "trabajo"}))
        return "Work";
    if (contains_any(key, std::array{"other", "alt", "secondary", "second"}) || index >= 2) return "Other";
    return "";
}

bool is_email_name(std::string_view key) {
    return contains_any(key, std::array{"email", "courriel", "correo"}) || key == "mail" || key == "mailaddress";
}

bool is_phone_name(std::string_view key) {
    if (contains(key, "fax")) return false;
    return contains_any(key, std::array{"phone", "mobile", "cell", "handy"}) || key.starts_with("tel");
}

std::optional<Role> synonym(std::string_view key) {
    for (const auto& s : kSynonyms)
        if (one_of(key, s.keys)) return s.role;
    return std::nullopt;
}

int identity_rank(std::string_view key) {
    for (auto& [k, rank] : kIdentityNames)
        if (k == key) return rank;
    // customer_ref_id, household_id: an id, but less sure than the names above.
    if (key.size() > 2 && key.ends_with("id") && !one_of(key, std::array{"paid", "valid", "void", "invalid"})) return 5;
    return 0;
}

}  // namespace

std::string match_key(std::string_view name) {
    std::string out;
    for (std::size_t i = 0; i < name.size(); ++i) {
        char c = name[i];
        if (is_upper(c))
            out += static_cast<char>(c + 32);
        else if (is_lower(c) || is_digit(c))
            out += c;
        else if (static_cast<unsigned char>(c) == 0xC3 && i + 1 < name.size()) {
            auto next = static_cast<unsigned char>(name[i + 1]);
            if (next >= 0x80 && next <= 0xBF) {
                out += kLatin1Fold[next - 0x80];
                ++i;
            } else {
                out += c;
            }
        } else if (non_ascii(c)) {
            out += c;
        }
    }
    return out;
}

std::vector<std::string> name_words(std::string_view name) {
    std::vector<std::string> words;
    std::string word;
    auto flush = [&] {
        if (!word.empty()) words.push_back(std::move(word));
        word.clear();
    };
    for (std::size_t i = 0; i < name.size(); ++i) {
        char c = name[i];
        if (!is_ascii_alnum(c) && !non_ascii(c)) {
            flush();
            continue;
        }
        // camelCase: "newsletterOptIn" splits before O and I; "SMSOptIn" before O (the last
        // capital of a run that a lowercase letter follows).
        if (is_upper(c) && !word.empty()) {
            char prev = word.back();
            bool next_lower = i + 1 < name.size() && is_lower(name[i + 1]);
            if (is_lower(prev) || is_digit(prev) || (is_upper(prev) && next_lower)) flush();
        }
        word += c;
    }
    flush();
    return words;
}

std::string pascal_case(std::string_view name) {
    std::string out;
    for (auto& w : name_words(name)) {
        if (is_lower(w[0])) w[0] = static_cast<char>(w[0] - 32);
        out += w;
    }
    return out;
}

std::string alternate_id_type_for(std::string_view name) {
    auto key = upper(match_key(name));
    std::erase_if(key, [](char c) { return non_ascii(c); });
    return key.empty() ? "ID" : key.substr(0, 40);
}

std::string_view to_string(Role role) {
    switch (role) {
        case Role::None: return "none";
        case Role::Identity: return "identity";
        case Role::FirstName: return "CustomerName.FirstName";
        case Role::MiddleName: return "CustomerName.MiddleName";
        case Role::LastName: return "CustomerName.LastName";
        case Role::Prefix: return "CustomerName.Prefix";
        case Role::Suffix: return "CustomerName.Suffix";
        case Role::CustomerType: return "CustomerType";
        case Role::Locale: return "DefaultLocale";
        case Role::Tags: return "ProfileTags";
        case Role::Email: return "email";
        case Role::Phone: return "phone";
        case Role::Address1: return "Address1";
        case Role::Address2: return "Address2";
        case Role::City: return "City";
        case Role::StateProvince: return "StateProvince";
        case Role::PostalCode: return "PostalCode";
        case Role::Country: return "country";
        case Role::OptIn: return "opt-in";
        case Role::OptOut: return "opt-out";
        case Role::Consent: return "consent";
    }
    return "?";
}

NameGuess guess_from_name(std::string_view name) {
    NameGuess g;
    const std::string key = match_key(name);
    std::string base = key;
    while (!base.empty() && is_digit(base.back())) base.pop_back();
    if (base.empty()) return g;
    if (base.size() < key.size() && key.size() - base.size() <= 2)
        g.index = std::stoi(key.substr(base.size()));
    else
        base = key;  // a long number is part of the name, not an index

    // Flags first: "email_consent" and "sms_opt_in" are flags about an email or a phone.
    if (contains_any(key, kConsentWords))
        g.role = Role::Consent;
    else if (contains_any(key, kOptOutWords))
        g.role = Role::OptOut;
    else if (contains_any(key, kOptInWords))
        g.role = Role::OptIn;
    if (g.role != Role::None) {
        flag_guess(name, key, g);
        return g;
    }

    for (std::string_view k : {std::string_view(key), std::string_view(base)}) {
        if (auto rank = identity_rank(k); rank > 0 && rank < 5) {
            g.role = Role::Identity;
            g.identity_rank = rank;
        } else if (auto role = synonym(k)) {
            g.role = *role;
        } else {
            continue;
        }
        break;
    }
    if (g.role == Role::None) {
        if (is_email_name(key)) {
            g.role = Role::Email;
            g.type = email_type(key, g.index);
        } else if (is_phone_name(key)) {
            g.role = Role::Phone;
            g.type = phone_type(key, g.index);
        } else if (auto rank = identity_rank(base)) {
            g.role = Role::Identity;
            g.identity_rank = rank;
        } else {
            // "billing_city", "customer_first_name": a qualifier, then a known name.
            for (auto& [prefix, address_type] : kQualifiers) {
                if (!base.starts_with(prefix) || base.size() == prefix.size()) continue;
                if (auto role = synonym(base.substr(prefix.size()))) {
                    g.role = *role;
                    g.type = address_type;
                    break;
                }
            }
        }
    }
    if (g.role == Role::Identity) {
        std::string stem = base;
        for (std::string_view suffix : {"number", "nummer", "num", "no", "nr", "key", "code", "id"}) {
            if (stem.size() > suffix.size() && stem.ends_with(suffix)) {
                stem.resize(stem.size() - suffix.size());
                break;
            }
        }
        g.alternate_id_type = stem == base ? alternate_id_type_for(base) : alternate_id_type_for(stem) + "ID";
    }
    g.needs_short_values = g.role == Role::Prefix && base == "title";
    return g;
}

bool date_hint(std::string_view name) {
    auto key = match_key(name);
    return contains_any(key, std::array{"date", "dob", "birth", "day", "time", "since", "created", "updated",
                                        "modified", "joined", "datum", "fecha"});
}

std::string_view to_string(ValueKind kind) {
    switch (kind) {
        case ValueKind::Empty: return "empty";
        case ValueKind::Flag: return "yes/no flags";
        case ValueKind::Email: return "email addresses";
        case ValueKind::Date: return "dates";
        case ValueKind::Phone: return "phone numbers";
        case ValueKind::Integer: return "whole numbers";
        case ValueKind::Text: return "text";
    }
    return "?";
}

namespace {

// The shape a format demands, before the calendar check: %Y exactly four digits, %y two,
// the others one or two (03/14/2021 and 3/14/2021 both read with %m/%d/%Y).
bool matches_shape(std::string_view text, std::string_view format) {
    std::size_t pos = 0;
    for (std::size_t i = 0; i < format.size(); ++i) {
        if (format[i] != '%' || i + 1 >= format.size()) {
            if (pos >= text.size() || text[pos] != format[i]) return false;
            ++pos;
            continue;
        }
        char d = format[++i];
        std::size_t min = d == 'Y' ? 4 : d == 'y' ? 2 : 1, max = d == 'Y' ? 4 : 2;
        std::size_t n = 0;
        while (pos + n < text.size() && n < max && is_digit(text[pos + n])) ++n;
        if (n < min) return false;
        pos += n;
    }
    return pos == text.size();
}

struct DateFormat {
    std::string_view in, out;
};

// Tried in order; the first that reads every sampled value wins. Month-first before
// day-first: US exports are the common case, and a value with a day past 12 settles it.
constexpr std::array kDateFormats{
    DateFormat{"%Y-%m-%d", "%Y-%m-%d"},
    DateFormat{"%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%dT%H:%M:%S"},
    DateFormat{"%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%S"},
    DateFormat{"%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S"},
    DateFormat{"%Y-%m-%d %H:%M:%S+00", "%Y-%m-%dT%H:%M:%S"},
    DateFormat{"%Y-%m-%d %H:%M:%SZ", "%Y-%m-%dT%H:%M:%S"},
    DateFormat{"%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S"},
    DateFormat{"%Y/%m/%d", "%Y-%m-%d"},
    DateFormat{"%Y.%m.%d", "%Y-%m-%d"},
    DateFormat{"%m/%d/%Y", "%Y-%m-%d"},
    DateFormat{"%d/%m/%Y", "%Y-%m-%d"},
    DateFormat{"%m/%d/%Y %H:%M:%S", "%Y-%m-%dT%H:%M:%S"},
    DateFormat{"%d/%m/%Y %H:%M:%S", "%Y-%m-%dT%H:%M:%S"},
    DateFormat{"%m/%d/%Y %H:%M", "%Y-%m-%dT%H:%M:%S"},
    DateFormat{"%d/%m/%Y %H:%M", "%Y-%m-%dT%H:%M:%S"},
    DateFormat{"%m-%d-%Y", "%Y-%m-%d"},
    DateFormat{"%d-%m-%Y", "%Y-%m-%d"},
    DateFormat{"%d.%m.%Y", "%Y-%m-%d"},
    DateFormat{"%d.%m.%Y %H:%M", "%Y-%m-%dT%H:%M:%S"},
    DateFormat{"%m/%d/%y", "%Y-%m-%d"},
    DateFormat{"%d/%m/%y", "%Y-%m-%d"},
    DateFormat{"%d.%m.%y", "%Y-%m-%d"},
    DateFormat{"%Y%m%d", "%Y-%m-%d"},  // only with a date-like name: otherwise it is a number
};

bool reads_all(const std::vector<std::string_view>& values, std::string_view format) {
    return std::all_of(values.begin(), values.end(), [&](std::string_view v) {
        return matches_shape(v, format) && api::reformat_date(v, format, "%Y-%m-%d");
    });
}

// The same format with day and month swapped, if it is one of the candidates; else "".
std::string_view swapped_day_month(std::string_view format) {
    std::string s(format);
    auto m = s.find("%m"), d = s.find("%d");
    if (m == std::string::npos || d == std::string::npos) return {};
    std::swap(s[m + 1], s[d + 1]);
    for (const auto& f : kDateFormats)
        if (f.in == s) return f.in;
    return {};
}

bool is_email(std::string_view v) {
    auto at = v.find('@');
    return at != std::string_view::npos && at > 0 && at + 1 < v.size() &&
           v.find('@', at + 1) == std::string_view::npos && v.find_first_of(" \t,;<>") == std::string_view::npos;
}

// Digits, and the punctuation phone numbers are written with; the count of digits.
std::optional<std::size_t> phone_digits(std::string_view v) {
    std::size_t digits = 0;
    for (char c : v) {
        if (is_digit(c))
            ++digits;
        else if (c != ' ' && c != '+' && c != '-' && c != '(' && c != ')' && c != '.')
            return std::nullopt;
    }
    return digits;
}

}  // namespace

ValueProfile sniff_values(const std::vector<std::optional<std::string>>& cells, bool hint) {
    ValueProfile p;
    std::vector<std::string_view> values;
    std::set<std::string_view> seen;
    for (const auto& cell : cells) {
        auto v = cell ? api::trim(*cell) : std::string_view();
        if (v.empty()) {
            ++p.empty;
            continue;
        }
        values.push_back(v);
        if (!seen.insert(v).second) p.unique = false;
        p.max_length = std::max(p.max_length, v.size());
    }
    p.present = values.size();
    if (values.empty()) return p;

    auto all = [&](auto&& pred) { return std::all_of(values.begin(), values.end(), pred); };
    for (auto d : {";", "|", ","}) {
        if (std::any_of(values.begin(), values.end(), [&](std::string_view v) { return contains(v, d); })) {
            p.list_delimiter = d;
            break;
        }
    }
    p.all_digits = all([](std::string_view v) { return std::all_of(v.begin(), v.end(), is_digit); });
    auto letters = values[0].size();
    auto is_letter = [](char c) { return is_lower(c) || is_upper(c); };
    if (all([&](std::string_view v) { return v.size() == letters && std::all_of(v.begin(), v.end(), is_letter); }))
        p.letters_only_length = letters;

    if (all([](std::string_view v) { return api::parse_bool(v).has_value(); })) {
        p.kind = ValueKind::Flag;
        for (auto v : values) {
            std::string s(v);
            api::to_lower_ascii(s);
            if (std::find(p.flag_spellings.begin(), p.flag_spellings.end(), s) == p.flag_spellings.end())
                p.flag_spellings.push_back(s);
        }
        return p;
    }
    if (all(is_email)) {
        p.kind = ValueKind::Email;
        return p;
    }
    for (const auto& f : kDateFormats) {
        if (f.in == "%Y%m%d" && !hint) continue;
        if (!reads_all(values, f.in)) continue;
        p.kind = ValueKind::Date;
        p.date_in = f.in;
        p.date_out = f.out;
        auto other = swapped_day_month(f.in);
        p.day_month_ambiguous = !other.empty() && reads_all(values, other);
        return p;
    }
    std::size_t min_digits = SIZE_MAX, max_digits = 0;
    bool phone_chars = all([&](std::string_view v) {
        auto d = phone_digits(v);
        if (!d) return false;
        min_digits = std::min(min_digits, *d);
        max_digits = std::max(max_digits, *d);
        return true;
    });
    if (phone_chars) p.min_digits = min_digits;
    // Bare digits are a phone only from ten on (a seven-digit number is as likely an id);
    // written with phone punctuation ("555-0134"), seven do.
    if (phone_chars && min_digits >= 7 && max_digits <= 15 && (min_digits >= 10 || !p.all_digits)) {
        p.kind = ValueKind::Phone;
        return p;
    }
    if (all([](std::string_view v) { return api::parse_int(v).has_value(); })) {
        p.kind = ValueKind::Integer;
        return p;
    }
    p.kind = ValueKind::Text;
    return p;
}

}  // namespace prefsync::init
