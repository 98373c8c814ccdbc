#include "daemon/init/starter_config.hpp"

#include <algorithm>
#include <map>
#include <set>

#include "daemon/init/column_guess.hpp"
#include "daemon/init/yaml_scalar.hpp"

namespace prefsync::init {
namespace {

// A block-style YAML entry. Keys and scalars are rendered already (yaml_scalar and friends);
// a scalar may hold '\n' where a long flow mapping continues on the next line.
struct Yaml {
    std::string key;
    std::string scalar;                    // a flow value; empty when the entry is a block
    std::vector<Yaml> children;            // block mapping
    std::vector<std::vector<Yaml>> items;  // block sequence of mappings
    bool is_list = false;
    std::vector<std::string> comments;  // lines before the entry (before the "- " of an item)
    std::string trailing;               // a comment after a scalar, on its line
};

Yaml scalar(std::string key, std::string value, std::string trailing = "") {
    Yaml y;
    y.key = std::move(key);
    y.scalar = std::move(value);
    y.trailing = std::move(trailing);
    return y;
}

Yaml block(std::string key, std::vector<Yaml> children) {
    Yaml y;
    y.key = std::move(key);
    y.children = std::move(children);
    return y;
}

Yaml list(std::string key, std::vector<std::vector<Yaml>> items) {
    Yaml y;
    y.key = std::move(key);
    y.items = std::move(items);
    y.is_list = true;
    return y;
}

void emit(std::string& out, const std::vector<Yaml>& entries, std::size_t indent, bool first_is_item = false) {
    for (std::size_t i = 0; i < entries.size(); ++i) {
        const Yaml& e = entries[i];
        bool dash = first_is_item && i == 0;
        std::string pad(dash ? indent - 2 : indent, ' ');
        for (const auto& c : e.comments) out += pad + "# " + c + "\n";
        out += pad + (dash ? "- " : "") + e.key + ":";
        if (e.is_list) {
            out += "\n";
            for (const auto& item : e.items) emit(out, item, indent + 4, true);
        } else if (!e.scalar.empty()) {
            out += ' ';
            for (char c : e.scalar) out += c == '\n' ? "\n" + std::string(indent + 4, ' ') : std::string(1, c);
            if (!e.trailing.empty()) out += "  # " + e.trailing;
            out += "\n";
        } else if (e.children.empty()) {
            out += " {}\n";
        } else {
            out += "\n";
            emit(out, e.children, indent + 2);
        }
    }
}

// The same block as comments at the same indentation, to be uncommented as a whole.
std::string commented(const std::string& text, std::size_t indent) {
    std::string out;
    std::size_t start = 0;
    while (start < text.size()) {
        auto end = text.find('\n', start);
        std::string line = text.substr(start, end - start);
        out += std::string(indent, ' ') + "# " + line.substr(std::min(indent, line.size())) + "\n";
        start = end == std::string::npos ? text.size() : end + 1;
    }
    return out;
}

// "{ column: X, normalize: lowercase }"
class Flow {
public:
    Flow& add(std::string_view key, const std::string& value) {
        text_ += (text_.empty() ? "{ " : ", ") + std::string(key) + ": " + value;
        return *this;
    }
    std::string str() const { return text_ + " }"; }

private:
    std::string text_;
};

std::string constant(std::string_view value) {
    return Flow().add("const", config_value(value)).str();
}

// Every spelling the mapping's boolean conversion accepts: a flag column written with any
// of them maps, so no row of the file is rejected for a spelling the sample did not show.
const std::vector<std::string> kYes{"true", "yes", "y", "t", "1", "on"};
const std::vector<std::string> kNo{"false", "no", "n", "f", "0", "off"};

std::string flag_map(const std::string& yes, const std::string& no) {
    std::string out = "{ ";
    for (std::size_t i = 0; i < kYes.size(); ++i)
        out += yaml_scalar(kYes[i]) + ": " + config_value(yes) + (i + 1 < kYes.size() ? ", " : ",");
    out += "\n";
    for (std::size_t i = 0; i < kNo.size(); ++i)
        out += yaml_scalar(kNo[i]) + ": " + config_value(no) + (i + 1 < kNo.size() ? ", " : " }");
    return out;
}

// PreferenceStatus / ConsentStatus from a flag column.
Yaml flag_value(const std::string& key, const std::string& column, const std::string& yes, const std::string& no) {
    return block(key, {scalar("column", config_value(column)), scalar("normalize", "lowercase"),
                       scalar("map", flag_map(yes, no))});
}

// Text for a comment line: a path or name holding a control character cannot end the comment.
std::string comment_safe(std::string text) {
    for (auto& c : text)
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7F) c = '?';
    return text;
}

std::string join(const std::vector<std::string>& items, std::string_view separator) {
    std::string out;
    for (const auto& s : items) out += (out.empty() ? "" : std::string(separator)) + s;
    return out;
}

struct Column {
    std::size_t index = 0;
    std::string name;
    NameGuess guess;
    ValueProfile values;
    Role role = Role::None;  // the final decision
    std::string type;        // the final email/phone/address type
    std::string note;        // why it was not mapped as its name suggests
    bool identity = false;
};

bool complete(const Column& c) {
    return c.values.empty == 0 && c.values.unique;
}

bool is_flag_role(Role r) {
    return r == Role::OptIn || r == Role::OptOut || r == Role::Consent;
}

std::string describe_kind(const ValueProfile& v) {
    if (v.kind == ValueKind::Flag) return "yes/no flags (" + join(v.flag_spellings, ", ") + ")";
    return std::string(to_string(v.kind));
}

// Whether the values agree with what the name suggests; the reason when they do not.
std::string disagreement(const Column& c) {
    const auto& v = c.values;
    auto kind = v.kind;
    bool ok = true;
    switch (c.guess.role) {
        case Role::Email: ok = kind == ValueKind::Email || kind == ValueKind::Empty; break;
        case Role::Phone:
            ok = kind == ValueKind::Phone || kind == ValueKind::Empty ||
                 (kind == ValueKind::Integer && v.min_digits >= 7);
            break;
        case Role::OptIn:
        case Role::OptOut:
        case Role::Consent: ok = kind == ValueKind::Flag || kind == ValueKind::Empty; break;
        case Role::Prefix: ok = !c.guess.needs_short_values || v.max_length <= 6; break;
        default: break;
    }
    if (ok) return {};
    if (c.guess.role == Role::Prefix) return "named like a name prefix, but the values are too long for one";
    std::string role(to_string(c.guess.role));
    return "named like " +
           std::string(std::string_view("aeiou").find(role[0]) != std::string_view::npos ? "an " : "a ") + role +
           " column, but the values are " + describe_kind(v);
}

// "Account Number" with ten digits is an account number, not a phone.
bool identifier_like(std::string_view name) {
    auto key = match_key(name);
    for (std::string_view w : {"id", "number", "num", "no", "code", "key", "account", "ref", "sku", "zip", "postal"})
        if (key.find(w) != std::string::npos) return true;
    return false;
}

class Builder {
public:
    Builder(const StarterOptions& options, const StarterSource& source, const std::vector<std::string>& names,
            const std::vector<std::vector<std::optional<std::string>>>& rows)
        : options_(options), source_(source), rows_(rows.size()) {
        for (std::size_t i = 0; i < names.size(); ++i) {
            std::vector<std::optional<std::string>> cells;
            cells.reserve(rows.size());
            for (const auto& row : rows) cells.push_back(i < row.size() ? row[i] : std::nullopt);
            Column c;
            c.index = i;
            c.name = names[i];
            c.guess = guess_from_name(c.name);
            c.values = sniff_values(cells, date_hint(c.name));
            columns_.push_back(std::move(c));
        }
    }

    StarterConfig build() {
        if (columns_.empty()) throw StarterError("the source has no columns");
        if (rows_ == 0)
            result_.warnings.push_back("the source has no rows: the guesses come from the column names alone");
        choose_identity();
        decide_roles();
        std::string out =
            header() + api_section() + "\njobs:\n  " + yaml_scalar(options_.job) + ":\n    mode: upsert\n";
        std::vector<Yaml> job{source_section(), identity_section()};
        emit(out, job, 4);
        out += mapping_section();
        result_.yaml = std::move(out);
        return std::move(result_);
    }

private:
    std::string sampled() const {
        return rows_ == 1 ? "the 1 row sampled" : "the " + std::to_string(rows_) + " rows sampled";
    }

    void guessed(const std::string& field, const Column& c, const std::string& extra = "") {
        result_.guesses.push_back(field + " <- " + quoted(c.name) + (extra.empty() ? "" : " (" + extra + ")"));
    }

    Column* find_column(const std::string& name) {
        for (auto& c : columns_)
            if (c.name == name) return &c;
        // Forgiving like the guesses themselves: --id-column customer_id finds "Customer ID".
        Column* found = nullptr;
        for (auto& c : columns_) {
            if (match_key(c.name) != match_key(name)) continue;
            if (found) return nullptr;
            found = &c;
        }
        return found;
    }

    void choose_identity() {
        Column* id = nullptr;
        std::string why;
        if (!options_.id_column.empty()) {
            id = find_column(options_.id_column);
            if (!id) {
                std::vector<std::string> names;
                for (auto& c : columns_) names.push_back(quoted(c.name));
                throw StarterError("--id-column: " + source_.description + " has no column " +
                                   quoted(options_.id_column) + " (columns: " + join(names, ", ") + ")");
            }
            why = "given with --id-column";
        } else {
            std::vector<Column*> named;
            for (auto& c : columns_)
                if (c.guess.role == Role::Identity) named.push_back(&c);
            // Surest name first, but a column that is complete and unique beats one that is not.
            std::stable_sort(named.begin(), named.end(), [](const Column* a, const Column* b) {
                return std::pair(!complete(*a), a->guess.identity_rank) <
                       std::pair(!complete(*b), b->guess.identity_rank);
            });
            if (!named.empty()) {
                id = named.front();
                why = "named like an identifier";
            } else {
                for (auto& c : columns_)
                    if (!id && complete(c) && (c.guess.role == Role::Email || c.values.kind == ValueKind::Email)) {
                        id = &c;
                        why = "no column is named like an identifier, so the email addresses";
                    }
                for (auto& c : columns_)
                    if (!id && complete(c) && c.values.present > 0) {
                        id = &c;
                        why = "no column is named like an identifier, so the first column with values";
                    }
                if (!id) {
                    id = &columns_.front();
                    why = "no column is named like an identifier or has unique values, so the first column";
                }
            }
        }
        id->identity = true;
        if (!options_.id_type.empty())
            id_type_ = options_.id_type;
        else if (id->guess.role == Role::Identity)
            id_type_ = id->guess.alternate_id_type;
        else if (id->guess.role == Role::Email || id->values.kind == ValueKind::Email)
            id_type_ = "EMAIL";
        else
            id_type_ = alternate_id_type_for(id->name);

        std::string state = complete(*id)
                                ? "non-empty and unique in " + sampled()
                                : "WARNING: empty or repeated in " + sampled() +
                                      " (an empty identity rejects its row; a repeated one updates one profile twice)";
        if (!complete(*id))
            result_.warnings.push_back("the identity column " + quoted(id->name) + " has empty or repeated values in " +
                                       sampled() + "; choose another with --id-column");
        id_comments_ = {quoted(id->name) + ": " + why + "; " + state + ".",
                        "Use the alternate id type your MyPreferences account defines for it."};
        guessed("identity " + id_type_, *id);
    }

    void decide_roles() {
        std::set<Role> single_taken;
        std::set<std::pair<std::string, Role>> address_taken;
        std::map<Role, std::string> taken_by;
        for (auto& c : columns_) {
            // The identity is sent as the alternate id; an email picked as identity is also an email.
            if (c.identity && !(c.guess.role == Role::Email || c.values.kind == ValueKind::Email)) continue;
            Role role = c.guess.role;
            std::string type = c.guess.type;
            if (role == Role::Identity) {
                c.note = "another identifier";
                continue;
            }
            if (role != Role::None) {
                if (auto why = disagreement(c); !why.empty()) {
                    c.note = why;
                    role = Role::None;
                    type.clear();
                }
            }
            if (role == Role::None) {
                // The values speak where the name did not.
                if (c.values.kind == ValueKind::Email)
                    role = Role::Email;
                else if (c.values.kind == ValueKind::Phone && c.values.min_digits >= 10 && !identifier_like(c.name))
                    role = Role::Phone;
                if (role != Role::None) c.note = "the values are " + std::string(to_string(c.values.kind));
            }
            switch (role) {
                case Role::FirstName:
                case Role::MiddleName:
                case Role::LastName:
                case Role::Prefix:
                case Role::Suffix:
                case Role::CustomerType:
                case Role::Locale:
                case Role::Tags:
                    if (!single_taken.insert(role).second) {
                        c.note = "looks like " + std::string(to_string(role)) + " too, which is mapped from " +
                                 taken_by[role];
                        continue;
                    }
                    taken_by[role] = quoted(c.name);
                    break;
                case Role::Address1:
                case Role::Address2:
                case Role::City:
                case Role::StateProvince:
                case Role::PostalCode:
                case Role::Country:
                    if (type.empty()) type = "Home";
                    if (!address_taken.insert({type, role}).second) {
                        c.note = "a second " + std::string(to_string(role)) + " of the " + type + " address";
                        continue;
                    }
                    break;
                default: break;
            }
            c.role = role;
            c.type = type;
        }
        // Types of emails and phones the names did not say: the first is the personal email
        // or the home phone, later ones are "Other".
        bool personal = false, home = false;
        for (auto& c : columns_) {
            if (c.role == Role::Email) personal |= c.type == "Personal";
            if (c.role == Role::Phone) home |= c.type == "Home";
        }
        for (auto& c : columns_) {
            if (c.role == Role::Email && c.type.empty()) c.type = personal ? "Other" : "Personal", personal = true;
            if (c.role == Role::Phone && c.type.empty()) c.type = home ? "Other" : "Home", home = true;
        }
    }

    std::string header() const {
        const std::string run = "#   prefsync -c " + config_name() + " ";
        std::string out =
            "# prefsync config written by `prefsync init` from " + comment_safe(source_.description) + ",\n";
        out += "# guessed from its column names and " + sampled() + ". Every column appears below:\n";
        out += "# as the identity, mapped to a Profile field, or as a commented-out custom field.\n";
        out += "# Check the guesses, then:\n";
        out += run + "check-config\n";
        out += run + "dry-run " + options_.job + " --limit 5\n";
        out += "#   " + options_.token_env + "=... prefsync -c " + config_name() + " sync " + options_.job + "\n";
        out += "# Every key: man prefsync.yaml (config/README.md).\n";
        return out;
    }

    std::string config_name() const {
        return comment_safe(options_.config_name.empty() ? "prefsync.yaml" : options_.config_name);
    }

    std::string api_section() const {
        std::vector<Yaml> api{scalar("base_url", config_value(options_.base_url)),
                              scalar("client_id", config_value(options_.client_id), "your MyPreferences account id"),
                              scalar("token_env", config_value(options_.token_env))};
        api[0].comments = {
            "`prefsync emulator` serves http://127.0.0.1:8080/Profiles/v2; MyPreferences is",
            "https://pm.mypreferences.com/Profiles/v2 (sandbox: https://pmstg.mypreferences.com/Profiles/v2)."};
        api[2].comments = {"The API token is read from this environment variable; it never goes into this file."};
        std::vector<Yaml> journal{scalar("path", "\"${PREFSYNC_JOURNAL:-state/journal.db}\"")};
        journal[0].comments = {"What was sent and what is pending (SQLite, personal data, created 0600), relative to",
                               "this file; the systemd units set PREFSYNC_JOURNAL to /var/lib/prefsync/journal.db."};
        std::string out = "\n";
        emit(out, {block("api", std::move(api))}, 0);
        out += "\n";
        emit(out, {block("journal", std::move(journal))}, 0);
        return out;
    }

    Yaml source_section() const {
        std::vector<Yaml> s{scalar("type", source_.type)};
        if (source_.type == "postgres") {
            s.push_back(scalar("conninfo", config_value(source_.conninfo)));
            if (!source_.password_env.empty())
                s.push_back(scalar("password_env", config_value(source_.password_env)));
            else
                s.back().comments = {"The password: libpq's PGPASSWORD or ~/.pgpass, or password_env: VAR naming the",
                                     "environment variable that holds it (never the password itself)."};
        } else {
            s.push_back(scalar("path", config_value(source_.path)));
        }
        if (!source_.table.empty()) s.push_back(scalar("table", config_value(source_.table)));
        if (source_.type == "csv" && source_.delimiter != ',')
            s.push_back(scalar("delimiter", quoted(std::string(1, source_.delimiter))));
        return block("source", std::move(s));
    }

    Yaml identity_section() const {
        const Column* id = nullptr;
        for (auto& c : columns_)
            if (c.identity) id = &c;
        std::vector<Yaml> s{scalar("alternate_id_type", config_value(id_type_)),
                            scalar("column", config_value(id->name))};
        s[0].comments = id_comments_;
        // An email names the same person in any case; its EmailAddress is lowercased too.
        if (id->guess.role == Role::Email || id->values.kind == ValueKind::Email)
            s.push_back(scalar("normalize", "lowercase"));
        return block("identity", std::move(s));
    }

    std::vector<const Column*> with_role(Role role) const {
        std::vector<const Column*> out;
        for (auto& c : columns_)
            if (c.role == role) out.push_back(&c);
        return out;
    }

    std::string mapping_section() {
        std::vector<Yaml> m;
        name_fields(m);
        for (auto [role, key] :
             {std::pair{Role::CustomerType, "CustomerType"}, std::pair{Role::Locale, "DefaultLocale"}})
            for (auto* c : with_role(role)) {
                m.push_back(scalar(key, config_value(c->name)));
                guessed(key, *c);
            }
        auto emails = email_items();
        auto phones = phone_items();
        attach_flags(emails, phones);
        if (!emails.empty()) m.push_back(list("Emails", std::move(emails)));
        if (!phones.empty()) m.push_back(list("PhoneNumbers", std::move(phones)));
        address_items(m);
        for (auto* c : with_role(Role::Tags)) {
            std::string delimiter = c->values.list_delimiter.empty() ? ";" : c->values.list_delimiter;
            m.push_back(
                scalar("ProfileTags", Flow().add("column", config_value(c->name)).add("split", quoted(delimiter)).str(),
                       c->values.list_delimiter.empty() ? "no list seen in the sample; \";\" assumed"
                                                        : "values hold lists separated by \"" + delimiter + "\""));
            guessed("ProfileTags", *c, "split on \"" + delimiter + "\"");
        }
        if (!consents_.empty()) m.push_back(list("Consents", std::move(consents_)));
        if (!preferences_.empty()) m.push_back(list("ProfilePreferences", std::move(preferences_)));

        auto custom = custom_fields();
        std::string out = "    mapping:";
        bool active = options_.custom_fields || m.empty();
        if (m.empty() && custom.empty()) {
            result_.warnings.push_back("no column besides the identity: the mapping is empty");
            return out + " {}  # only the identity: each row creates or finds its profile, nothing else\n";
        }
        out += "\n";
        emit(out, m, 6);
        if (custom.empty()) return out;
        std::vector<std::string> intro;
        if (options_.custom_fields) {
            intro = {"The other columns, as custom fields (--custom-fields): each must exist in your",
                     "MyPreferences account under this name."};
        } else if (active) {
            intro = {"Nothing else was recognised, so the columns go to custom fields: each must exist in",
                     "your MyPreferences account under this name (or remove it)."};
            result_.warnings.push_back(
                "no column was recognised as a Profile field; all of them are mapped to custom fields");
        } else {
            intro = {"Not recognised: to send a column, uncomment it as a custom field (which must exist",
                     "in your MyPreferences account under this name) or map it to a Profile field."};
        }
        for (auto& line : intro) out += "      # " + line + "\n";
        std::string block_text;
        emit(block_text, {block("CustomFields", std::move(custom))}, 6);
        out += active ? block_text : commented(block_text, 6);
        return out;
    }

    void name_fields(std::vector<Yaml>& m) {
        std::vector<Yaml> name;
        for (auto [role, key] : {std::pair{Role::Prefix, "Prefix"}, std::pair{Role::FirstName, "FirstName"},
                                 std::pair{Role::MiddleName, "MiddleName"}, std::pair{Role::LastName, "LastName"},
                                 std::pair{Role::Suffix, "Suffix"}})
            for (auto* c : with_role(role)) {
                name.push_back(scalar(key, config_value(c->name)));
                guessed("CustomerName." + std::string(key), *c);
            }
        if (!name.empty()) m.push_back(block("CustomerName", std::move(name)));
    }

    std::string because(const Column& c, const std::string& what) const {
        return quoted(c.name) + ": " + what + (c.note.empty() ? "" : " (" + c.note + ")");
    }

    std::vector<std::vector<Yaml>> email_items() {
        std::vector<std::vector<Yaml>> items;
        for (auto* c : with_role(Role::Email)) {
            std::vector<Yaml> e{
                scalar("EmailAddress", Flow().add("column", config_value(c->name)).add("normalize", "lowercase").str()),
                scalar("EmailAddressType", constant(c->type))};
            if (items.empty()) e.push_back(scalar("IsDefault", constant("true")));
            e[0].comments = {because(*c, (items.empty() ? "the default email, type " : "an email, type ") + c->type)};
            guessed("Emails[" + std::to_string(items.size()) + "] " + c->type, *c);
            items.push_back(std::move(e));
        }
        return items;
    }

    std::vector<std::vector<Yaml>> phone_items() {
        std::vector<std::vector<Yaml>> items;
        for (auto* c : with_role(Role::Phone)) {
            std::vector<Yaml> p{
                scalar("PhoneNumber", Flow().add("column", config_value(c->name)).add("normalize", "digits").str()),
                scalar("PhoneType", constant(c->type))};
            if (c->type == "Mobile") p.push_back(scalar("IsMobile", constant("true")));
            p[0].comments = {because(*c, "a phone number, type " + c->type + "; sent as digits only")};
            if (c->type == "Mobile" && mobile_ < 0) mobile_ = static_cast<int>(items.size());
            guessed("PhoneNumbers[" + std::to_string(items.size()) + "] " + c->type, *c);
            items.push_back(std::move(p));
        }
        return items;
    }

    // Opt-in, opt-out and consent flags: an SMS flag goes with the mobile phone and an email
    // consent with the default email, as in the bundled example; the rest are profile-level.
    void attach_flags(std::vector<std::vector<Yaml>>& emails, std::vector<std::vector<Yaml>>& phones) {
        std::set<std::string> programs;
        for (auto& c : columns_) {
            if (!is_flag_role(c.role)) continue;
            const auto& g = c.guess;
            std::string seen = c.values.flag_spellings.empty() ? "no values in the sample"
                                                               : "values " + join(c.values.flag_spellings, ", ");
            if (c.role == Role::Consent) {
                std::vector<Yaml> consent{scalar("ConsentType", constant(g.program)),
                                          scalar("ConsentVersion", constant("1")),
                                          flag_value("ConsentStatus", c.name, "1", "0")};
                std::string where = "Consents";
                std::vector<std::vector<Yaml>>* target = &consents_;
                if (g.channel == "EMAIL" && !emails.empty())
                    target = &nested(emails[0], "Consents"), where = "Emails[0].Consents";
                else if (g.channel == "SMS" && mobile_ >= 0)
                    target = &nested(phones[mobile_], "Consents"),
                    where = "PhoneNumbers[" + std::to_string(mobile_) + "].Consents";
                consent[0].comments = {because(c, "a consent flag (" + seen + "): yes -> ConsentStatus 1, no -> 0"),
                                       "ConsentType and ConsentVersion: use the ones your account defines."};
                guessed(where + " " + g.program, c);
                target->push_back(std::move(consent));
                continue;
            }
            std::string program = g.program;
            for (int n = 2; !programs.insert(program + "|" + g.channel).second; ++n)
                program = g.program + "-" + std::to_string(n);
            bool out = c.role == Role::OptOut;
            std::vector<Yaml> pref{scalar("ProgramId", constant(program))};
            if (!g.channel.empty()) pref.push_back(scalar("ChannelId", constant(g.channel)));
            pref.push_back(flag_value("PreferenceStatus", c.name, out ? "OptOut" : "OptIn", out ? "OptIn" : "OptOut"));
            pref[0].comments = {
                because(c, std::string(out ? "an opt-out" : "an opt-in") + " flag (" + seen + "): yes -> " +
                               (out ? "OptOut" : "OptIn") + ", no -> " + (out ? "OptIn" : "OptOut")),
                "ProgramId and ChannelId: use the program your account defines."};
            std::string where = "ProfilePreferences";
            if (g.channel == "SMS" && mobile_ >= 0) {
                where = "PhoneNumbers[" + std::to_string(mobile_) + "].PhonePreferences";
                nested(phones[mobile_], "PhonePreferences").push_back(std::move(pref));
            } else {
                preferences_.push_back(std::move(pref));
            }
            guessed(where + " " + program, c);
        }
    }

    // The list `key` inside a list element, created on first use.
    static std::vector<std::vector<Yaml>>& nested(std::vector<Yaml>& element, const std::string& key) {
        for (auto& e : element)
            if (e.key == key) return e.items;
        element.push_back(list(key, {}));
        return element.back().items;
    }

    void address_items(std::vector<Yaml>& m) {
        // One address per type, in the order its first part appears.
        std::vector<std::string> types;
        for (auto& c : columns_)
            if (c.role >= Role::Address1 && c.role <= Role::Country &&
                std::find(types.begin(), types.end(), c.type) == types.end())
                types.push_back(c.type);
        std::vector<std::vector<Yaml>> items;
        for (auto& type : types) {
            std::vector<Yaml> a;
            std::vector<std::string> from;
            for (Role role :
                 {Role::Address1, Role::Address2, Role::City, Role::StateProvince, Role::PostalCode, Role::Country})
                for (auto* c : with_role(role)) {
                    if (c->type != type) continue;
                    std::string field(to_string(role)), value = config_value(c->name), trailing;
                    if (role == Role::Country) country(*c, field, value, trailing);
                    a.push_back(scalar(field, value, trailing));
                    from.push_back(quoted(c->name));
                    guessed("Addresses[" + std::to_string(items.size()) + "]." + field, *c);
                }
            a.push_back(scalar("AddressType", constant(type)));
            a[0].comments = {"the " + type + " address, from " + join(from, ", ")};
            items.push_back(std::move(a));
        }
        if (!items.empty()) m.push_back(list("Addresses", std::move(items)));
    }

    static void country(const Column& c, std::string& field, std::string& value, std::string& trailing) {
        const auto& v = c.values;
        auto upper = [&] { return Flow().add("column", config_value(c.name)).add("normalize", "uppercase").str(); };
        if (v.letters_only_length == 2)
            field = "CountryCode_Alpha2", value = upper(), trailing = "two-letter codes";
        else if (v.letters_only_length == 3)
            field = "CountryCode_Alpha3", value = upper(), trailing = "three-letter codes";
        else if (v.all_digits && v.max_length <= 3)
            field = "CountryCode_Numeric", trailing = "numeric codes";
        else
            field = "Country", trailing = v.present ? "country names" : "no values in the sample";
    }

    std::vector<Yaml> custom_fields() {
        std::vector<Yaml> out;
        std::set<std::string> names;
        for (auto& c : columns_) {
            if (c.role != Role::None || c.identity) continue;
            std::string name = pascal_case(c.name);
            if (name.empty()) name = "Column" + std::to_string(c.index + 1);
            // Custom field names are matched case-insensitively by the API.
            std::string base = name;
            for (int n = 2; !names.insert(match_key(name)).second; ++n) name = base + std::to_string(n);
            std::string value = config_value(c.name);
            std::string note = c.note;
            const auto& v = c.values;
            if (v.kind == ValueKind::Date) {
                value = Flow()
                            .add("column", config_value(c.name))
                            .add("date",
                                 Flow().add("in", config_value(v.date_in)).add("out", config_value(v.date_out)).str())
                            .str();
                note = "dates like " + v.date_in +
                       (v.day_month_ambiguous ? " (or day first? the sample fits both)" : "") +
                       (note.empty() ? "" : "; " + note);
            } else if (v.kind == ValueKind::Empty) {
                note = "empty in " + sampled() + (note.empty() ? "" : "; " + note);
            } else if (note.empty() && v.kind != ValueKind::Text) {
                note = describe_kind(v);
            }
            out.push_back(scalar(yaml_scalar(name), value, note));
            guessed(std::string(options_.custom_fields ? "CustomFields." : "(commented out) CustomFields.") + name, c,
                    c.note);
        }
        return out;
    }

    const StarterOptions& options_;
    const StarterSource& source_;
    std::size_t rows_;
    std::vector<Column> columns_;
    std::string id_type_;
    std::vector<std::string> id_comments_;
    int mobile_ = -1;
    std::vector<std::vector<Yaml>> consents_, preferences_;
    StarterConfig result_;
};

}  // namespace

StarterConfig make_starter_config(const StarterOptions& options, const StarterSource& source,
                                  const std::vector<std::string>& columns,
                                  const std::vector<std::vector<std::optional<std::string>>>& rows) {
    return Builder(options, source, columns, rows).build();
}

}  // namespace prefsync::init
