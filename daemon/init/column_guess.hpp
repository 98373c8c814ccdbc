#pragma once
// What `prefsync init` guesses about one source column: a Profile role from its name, and
// what its sampled values look like. Pure functions, no I/O; starter_config.hpp combines
// the two and writes the YAML.
//
// Design constraints:
// - Names match case-insensitively, ignoring separators, digits at the end and Latin
//   accents: "First Name", "first_name", "FIRSTNAME" and "Prénom" are all a first name,
//   "Mobile Phone #" a mobile phone, "E-mail 2" a second email.
// - A name only proposes; the values decide where they must agree with the API (an email
//   column whose values have no '@', an opt-in column that is not yes/no) — see
//   starter_config.cpp.
// - Nothing sniffed here leads to a conversion that rejects a sampled value: a value kind
//   or date format is reported only if every sampled value fits it.
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace prefsync::init {

// The form names are matched in: ASCII letters lowercased, Latin-1 accents folded
// ("é" → "e", "ß" → "ss"), every other ASCII character dropped, other bytes kept.
// "Mobile Phone #" → "mobilephone", "Straße" → "strasse", "E-mail 2" → "email2".
std::string match_key(std::string_view name);

// The words of a name, split at separators and camelCase boundaries, as written:
// "NewsletterOptIn" → {Newsletter, Opt, In}, "Loyalty: Tier" → {Loyalty, Tier}.
std::vector<std::string> name_words(std::string_view name);

// A Profile custom field name for a column: its words in PascalCase ("loyalty_tier" →
// "LoyaltyTier", "Größe" → "Größe"); "" when the name has no letters or digits.
std::string pascal_case(std::string_view name);

enum class Role {
    None,
    Identity,  // an alternate id (customer_id, crm_id, id, ...)
    FirstName,
    MiddleName,
    LastName,
    Prefix,
    Suffix,
    CustomerType,
    Locale,
    Tags,
    Email,
    Phone,
    Address1,
    Address2,
    City,
    StateProvince,
    PostalCode,
    Country,
    OptIn,    // a yes/no flag: yes → OptIn
    OptOut,   // a yes/no flag: yes → OptOut (unsubscribed, do_not_email, ...)
    Consent,  // a yes/no flag: yes → ConsentStatus 1
};
std::string_view to_string(Role role);

struct NameGuess {
    Role role = Role::None;
    // Email: Personal/Work/Other; Phone: Mobile/Home/Work/Other; address parts: the
    // AddressType (Billing, Shipping, ...). "" when the name does not say.
    std::string type;
    int index = 0;                    // a trailing number: "E-mail 2" → 2
    int identity_rank = 0;            // Identity: 1 is the surest (crm_id), larger is weaker (id)
    std::string alternate_id_type;    // Identity: customer_id → CUSTOMERID, crm_id → CRMID
    std::string channel;              // flags: EMAIL, SMS, PHONE, MAIL or ""
    std::string program;              // OptIn/OptOut: a ProgramId; Consent: a ConsentType
    bool needs_short_values = false;  // "title" is a name prefix only if its values are short
};
NameGuess guess_from_name(std::string_view name);

// An alternate id type for any column name: its letters and digits uppercased ("E-Mail" →
// "EMAIL"), "ID" when there are none.
std::string alternate_id_type_for(std::string_view name);

enum class ValueKind { Empty, Flag, Email, Date, Phone, Integer, Text };
std::string_view to_string(ValueKind kind);

// Sampled values of one column, summarised. Values are trimmed; NULL and "" are empty.
struct ValueProfile {
    ValueKind kind = ValueKind::Empty;  // the first kind every non-empty value fits, in enum order
    std::size_t present = 0;            // non-empty values
    std::size_t empty = 0;              // empty or NULL values
    bool unique = true;                 // no non-empty value repeats
    std::size_t max_length = 0;         // bytes, of the longest value
    // Flag: the distinct spellings seen, lowercased, in order of appearance ("y", "n").
    std::vector<std::string> flag_spellings;
    // Date: the format every value parses with, and the output format that keeps its time.
    std::string date_in, date_out;
    bool day_month_ambiguous = false;  // both %m/%d and %d/%m read every value
    // When every value is digits and phone punctuation: the fewest digits in one; else 0.
    std::size_t min_digits = 0;
    std::size_t letters_only_length = 0;  // every value is this many ASCII letters (US, USA); else 0
    bool all_digits = false;              // every value is digits only
    std::string list_delimiter;           // ";", "," or "|": the first that appears in a value
};

// `date_hint`: the name says date (signup_date, dob): bare 8-digit values may be %Y%m%d.
ValueProfile sniff_values(const std::vector<std::optional<std::string>>& values, bool date_hint = false);

// Whether a name suggests a date or time (so 20240131 may be one).
bool date_hint(std::string_view name);

}  // namespace prefsync::init
