#include "daemon/mapping/mapper.hpp"

#include <simdjson.h>

#include <openssl/evp.h>

#include <algorithm>
#include <stdexcept>
#include <unordered_map>

#include "daemon/api/value_convert.hpp"
#include "daemon/base/json_text.hpp"
#include "daemon/base/text.hpp"

namespace prefsync::mapping {

using api::check_convertible;
using api::collapse_spaces;
using api::keep_digits;
using api::parse_bool;
using api::parse_int;
using api::reformat_date;
using api::to_lower_ascii;
using api::to_upper_ascii;
using api::trim;
using base::append_json_string;
using config::ArraySpec;
using config::ConfigError;
using config::Diagnostic;
using config::FieldEntry;
using config::ObjectSpec;
using config::ValueSpec;

// JSON string literal: UTF-8 passes through (sources are validated), quotes, backslashes
// and control characters are escaped.

namespace {

void apply_normalize(std::string& text, const std::vector<config::Normalize>& steps) {
    for (auto n : steps) {
        switch (n) {
            case config::Normalize::Lowercase: to_lower_ascii(text); break;
            case config::Normalize::Uppercase: to_upper_ascii(text); break;
            case config::Normalize::Digits: keep_digits(text); break;
            case config::Normalize::CollapseSpaces: collapse_spaces(text); break;
        }
    }
}

constexpr std::size_t kConstant = SIZE_MAX;

struct CompiledValue {
    const ValueSpec* spec;
    std::size_t column = kConstant;  // index into Row::values, or kConstant
    // A constant's JSON, written once at compile time ("" when it is absent). Unset where
    // evaluating it fails: every row then fails with its own origin and identity, as a
    // column's bad value does.
    std::optional<std::string> json;
};

struct CompiledField;
struct CompiledObject {
    std::vector<CompiledField> fields;
    bool has_columns = false;  // false: an element of constants only, always sent
};

struct CompiledArray {
    std::vector<CompiledObject> elements;
    std::optional<CompiledValue> split_item;
    const config::SplitSpec* split = nullptr;
    CompiledObject split_with;
    std::string split_key;                                     // json_key(split->field)
    std::vector<std::pair<std::string, CompiledValue>> named;  // (escaped name, value)
    std::string name_key, value_key;
};

// `"Name":`, escaped once at compile time: keys are most of what a row writes.
std::string json_key(std::string_view name) {
    std::string out;
    append_json_string(out, name);
    out += ':';
    return out;
}

struct CompiledField {
    // ',' + json_key(name): written from its second byte for an object's first field (one
    // append per field instead of a comma and a key).
    std::string comma_key;
    std::variant<CompiledValue, CompiledObject, CompiledArray> node;
    // A constant's whole member, ',' + key + JSON, written once at compile time ("" when
    // the constant is absent); unset for anything else, and for a constant that fails.
    std::optional<std::string> constant;
};

class Compiler {
public:
    Compiler(const config::JobConfig& job, const std::vector<std::string>& columns) : job_(job), columns_(columns) {
        for (std::size_t i = 0; i < columns.size(); ++i) index_.emplace(columns[i], i);
    }

    CompiledObject object(const ObjectSpec& spec) { return object(spec.fields); }

    // Compiled values point into the spec: `fields` must outlive the Mapper (it is the
    // job's config), never a temporary.
    CompiledObject object(const std::vector<FieldEntry>& fields) {
        CompiledObject out;
        for (const FieldEntry& e : fields) {
            CompiledField f{"," + json_key(e.name), CompiledValue{}, std::nullopt};
            if (auto* v = std::get_if<ValueSpec>(&e.spec)) {
                f.node = value(*v);
                const auto& compiled = std::get<CompiledValue>(f.node);
                out.has_columns |= compiled.column != kConstant;
                if (compiled.json) f.constant = compiled.json->empty() ? "" : f.comma_key + *compiled.json;
            } else if (auto* o = std::get_if<ObjectSpec>(&e.spec)) {
                f.node = object(*o);
                out.has_columns |= std::get<CompiledObject>(f.node).has_columns;
            } else {
                f.node = array(std::get<ArraySpec>(e.spec));
                out.has_columns |= true;
            }
            out.fields.push_back(std::move(f));
        }
        return out;
    }

    CompiledArray array(const ArraySpec& spec) {
        CompiledArray out;
        for (const auto& element : spec.elements) out.elements.push_back(object(element));
        if (spec.split) {
            out.split = &*spec.split;
            out.split_item = value(spec.split->item);
            out.split_with = object(spec.split->with);
            out.split_key = json_key(spec.split->field);
        }
        for (const auto& n : spec.named) {
            std::string name;
            append_json_string(name, n.name);
            out.named.emplace_back(std::move(name), value(n.value));
        }
        out.name_key = json_key(spec.name_field);
        out.value_key = json_key(spec.value_field);
        return out;
    }

    CompiledValue value(const ValueSpec& spec);

    std::size_t column(const std::string& name, const config::SourcePos& pos, const std::string& key_path) {
        auto it = index_.find(name);
        if (it != index_.end()) return it->second;
        std::vector<std::string_view> candidates(columns_.begin(), columns_.end());
        auto hint = base::suggest(name, candidates);
        std::string message = "unknown column \"" + name + "\" in " + job_.source.path();
        if (auto other = other_delimiter(); !other.empty())
            message += " (its header reads as one column, \"" + columns_[0] + "\": the file seems delimited by " +
                       other + "; check source.delimiter)";
        else if (!hint.empty())
            message += " (did you mean \"" + hint + "\"?)";
        else if (name == "true" || name == "false" || std::isdigit(static_cast<unsigned char>(name[0])) ||
                 std::isupper(static_cast<unsigned char>(name[0])))
            message += "; to send a constant, write {const: " + name + "}";
        errors_.push_back({pos, key_path, message});
        return 0;
    }

    std::vector<Diagnostic>& errors() { return errors_; }

private:
    // A CSV header read as one column that holds another usual delimiter: the wrong
    // source.delimiter (a SQL source's one column is just that).
    std::string other_delimiter() const {
        const auto* csv = std::get_if<connectors::CsvSourceConfig>(&job_.source.settings);
        if (!csv || columns_.size() != 1) return "";
        for (auto [c, name] : {std::pair{',', "\",\""}, {';', "\";\""}, {'\t', "tabs"}, {'|', "\"|\""}})
            if (c != csv->delimiter && columns_[0].find(c) != std::string::npos) return name;
        return "";
    }

    const config::JobConfig& job_;
    const std::vector<std::string>& columns_;
    std::unordered_map<std::string, std::size_t> index_;
    std::vector<Diagnostic> errors_;
};

// Writes one row's JSON straight into a string, without building a DOM: every optional
// part remembers where it started and is cut off again if it turns out empty ("empty means
// absent"). This is the mapper's hot path; a DOM per row cost three times as much.
class Evaluator {
public:
    Evaluator(const connectors::Row& row, RowError& error, std::string& out) : row_(row), error_(error), out_(out) {}

    bool failed() const { return failed_; }

    // The body: always an object, "{}" when nothing is present.
    void body(const CompiledObject& o) {
        if (!object(o)) out_ += "{}";
    }

    // A constant's JSON ("" when absent), the same for every row; nullopt if it fails.
    static std::optional<std::string> constant_json(const CompiledValue& v) {
        const connectors::Row no_row;
        RowError error;
        std::string out;
        Evaluator e(no_row, error, out);
        bool wrote = e.value(v);
        if (e.failed()) return std::nullopt;
        return wrote ? out : std::string();
    }

private:
    // The cleaned text of a value before type conversion; nullopt when absent. It views the
    // input, the spec or scratch_: valid until the next call (no copy of a plain cell).
    std::optional<std::string_view> text(const CompiledValue& v, std::string_view input, bool is_null) {
        const ValueSpec& s = *v.spec;
        std::string_view t = s.trim ? trim(input) : input;
        if (!s.normalize.empty()) {
            scratch_.assign(t);
            apply_normalize(scratch_, s.normalize);
            t = scratch_;
        }
        if (t.empty() || is_null) {
            if (s.default_value) {
                column_empty_ = true;  // a stand-in, not data from the row
                return *s.default_value;
            }
            if (s.required) {
                fail(s.key_path,
                     is_null ? "is required, but the value is NULL" : "is required, but the value is empty");
                return std::nullopt;
            }
            if (s.empty == config::EmptyPolicy::Keep && !is_null) return std::string_view();
            return std::nullopt;
        }
        if (!s.value_map.empty()) {
            auto it = s.value_map.find(std::string(t));
            if (it == s.value_map.end()) it = s.value_map.find("*");
            if (it == s.value_map.end()) {
                std::string expected;
                for (auto& [k, _] : s.value_map) expected += (expected.empty() ? "" : ", ") + k;
                fail(s.key_path,
                     "value \"" + std::string(t) + "\" is not in the map (expected one of " + expected + ")");
                return std::nullopt;
            }
            return it->second;  // map targets were checked at config time
        }
        if (!s.date_in.empty()) {
            auto d = reformat_date(t, s.date_in, s.date_out);
            if (!d) {
                fail(s.key_path, "value \"" + std::string(t) + "\" is not a date in the format \"" + s.date_in + "\"");
                return std::nullopt;
            }
            scratch_ = std::move(*d);
            return scratch_;
        }
        return t;
    }

    // Appends `t` converted to the field's type; false (and nothing appended) when absent.
    bool write_typed(const CompiledValue& v, std::optional<std::string_view> t) {
        if (failed_ || !t) return false;
        const ValueSpec& s = *v.spec;
        switch (s.target) {
            case api::FieldType::Bool:
                if (auto b = parse_bool(*t))
                    out_ += *b ? "true" : "false";
                else
                    return fail(s.key_path, check_convertible(*t, s.target));
                return true;
            case api::FieldType::Int:
                if (auto i = parse_int(*t))
                    out_ += std::to_string(*i);
                else
                    return fail(s.key_path, check_convertible(*t, s.target));
                return true;
            default: append_json_string(out_, *t); return true;
        }
    }

    bool value(const CompiledValue& v) {
        column_empty_ = false;
        if (v.json) {
            out_ += *v.json;
            return !v.json->empty();
        }
        if (v.column == kConstant) return write_typed(v, text(v, *v.spec->constant, false));
        const auto& cell = row_.values[v.column];
        return write_typed(v, text(v, cell ? std::string_view(*cell) : std::string_view(), !cell));
    }

    // Appends {...}; false (and nothing appended) when there is nothing to send.
    bool object(const CompiledObject& o) {
        const std::size_t start = out_.size();
        out_ += '{';
        bool any = false, has_data = false;
        for (const auto& f : o.fields) {
            if (f.constant) {
                // Never data from the row, never a failure: only written, when present.
                if (!f.constant->empty()) {
                    out_.append(std::string_view(*f.constant).substr(any ? 0 : 1));
                    any = true;
                }
                continue;
            }
            const std::size_t mark = out_.size();
            out_.append(std::string_view(f.comma_key).substr(any ? 0 : 1));
            bool wrote = false;
            if (auto* v = std::get_if<CompiledValue>(&f.node)) {
                wrote = value(*v);
                // A default standing in for an empty cell is not data from the row.
                has_data |= wrote && v->column != kConstant && !column_empty_;
            } else if (auto* obj = std::get_if<CompiledObject>(&f.node)) {
                wrote = object(*obj);
                has_data |= wrote && obj->has_columns;
            } else {
                wrote = array(std::get<CompiledArray>(f.node));
                has_data |= wrote;
            }
            if (failed_) break;
            if (wrote)
                any = true;
            else
                out_.resize(mark);
        }
        // An element whose column-fed fields are all empty is not sent, whatever its
        // constants and defaults hold: "work email" with no address is no email.
        if (failed_ || !any || (o.has_columns && !has_data)) {
            out_.resize(start);
            return false;
        }
        out_ += '}';
        return true;
    }

    bool array(const CompiledArray& a) {
        const std::size_t start = out_.size();
        out_ += '[';
        std::size_t count = 0;
        auto comma = [&] {
            if (count++ > 0) out_ += ',';
        };
        for (const auto& element : a.elements) {
            const std::size_t mark = out_.size();
            comma();
            if (!object(element)) {
                out_.resize(mark);
                --count;
            }
            if (failed_) break;
        }
        if (a.split && !failed_) split(a, count);
        for (const auto& [name, v] : a.named) {
            if (failed_) break;
            const std::size_t mark = out_.size();
            comma();
            out_ += '{';
            out_ += a.name_key;
            out_ += name;
            out_ += ',';
            out_ += a.value_key;
            if (value(v)) {
                out_ += '}';
            } else {
                out_.resize(mark);
                --count;
            }
        }
        if (failed_ || count == 0) {
            out_.resize(start);
            return false;
        }
        out_ += ']';
        return true;
    }

    void split(const CompiledArray& a, std::size_t& count) {
        const auto& item = *a.split_item;
        const auto& cell = row_.values[item.column];
        if (!cell) return;
        std::optional<std::string> with;  // ",\"GroupType\":\"Household\"": the same for every item
        std::vector<std::string> seen;
        std::string_view rest = *cell;
        while (!failed_) {
            auto cut = rest.find(a.split->delimiter);
            auto t = text(item, rest.substr(0, cut), false);
            if (t && !t->empty() && std::find(seen.begin(), seen.end(), *t) == seen.end()) {
                seen.emplace_back(*t);
                t = seen.back();  // with_fields() below may reuse the scratch `t` views
                if (!with) with = with_fields(a.split_with);
                const std::size_t mark = out_.size();
                if (count > 0) out_ += ',';
                out_ += '{';
                out_ += a.split_key;
                if (write_typed(item, t)) {
                    out_ += *with;
                    out_ += '}';
                    ++count;
                } else {
                    out_.resize(mark);
                }
            }
            if (cut == std::string_view::npos) break;
            rest.remove_prefix(cut + a.split->delimiter.size());
        }
    }

    // The fields of `with` as a fragment to append after an item's own field.
    std::string with_fields(const CompiledObject& with) {
        std::string saved;
        saved.swap(out_);
        std::string fragment;
        if (object(with)) fragment = "," + out_.substr(1, out_.size() - 2);
        out_.swap(saved);
        return fragment;
    }

    bool fail(const std::string& key_path, std::string message) {
        if (!failed_) {
            failed_ = true;
            error_.key_path = key_path;
            error_.message = std::move(message);
        }
        return false;
    }

    const connectors::Row& row_;
    RowError& error_;
    std::string& out_;
    std::string scratch_;  // a value's text where it is not the cell's or the spec's (text())
    bool failed_ = false;
    bool column_empty_ = false;  // the last value read came from an empty cell (a default or nothing)
};

CompiledValue Compiler::value(const ValueSpec& spec) {
    CompiledValue out{&spec, kConstant, std::nullopt};
    if (spec.column)
        out.column = column(*spec.column, spec.pos, spec.key_path);
    else
        out.json = Evaluator::constant_json(out);
    return out;
}

struct DigestDeleter {
    void operator()(EVP_MD* md) const { EVP_MD_free(md); }
    void operator()(EVP_MD_CTX* ctx) const { EVP_MD_CTX_free(ctx); }
};

std::string to_hex(const unsigned char* digest, unsigned int length) {
    static constexpr char hex[] = "0123456789abcdef";
    std::string out(std::size_t{length} * 2, '0');
    for (std::size_t i = 0; i < length; ++i) {
        out[2 * i] = hex[digest[i] >> 4];
        out[2 * i + 1] = hex[digest[i] & 15];
    }
    return out;
}

// The first `bytes` bytes of the digest (all of it by default), as hex digits.
std::string hex_digest(std::string_view data, const EVP_MD* md, unsigned int bytes = EVP_MAX_MD_SIZE) {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    EVP_Digest(data.data(), data.size(), digest, &length, md, nullptr);
    return to_hex(digest, std::min(length, bytes));
}

std::string json_string(std::string_view s) {
    std::string out;
    append_json_string(out, s);
    return out;
}

}  // namespace

struct Mapper::Compiled {
    const config::JobConfig* job;
    // Fetched once: OpenSSL 3 looks the algorithm up again on every EVP_sha256() digest.
    std::unique_ptr<EVP_MD, DigestDeleter> sha256{EVP_MD_fetch(nullptr, "SHA256", nullptr)};
    // Reused from row to row (map() runs on one thread): EVP_Digest allocates a context per
    // call, and the row's hash covers two pieces that need not be copied into one string.
    std::unique_ptr<EVP_MD_CTX, DigestDeleter> hashing{EVP_MD_CTX_new()};
    // The largest body so far (up to 4 KiB): a body reserved that big is written without a reallocation
    // (a 1.2 KB body took two allocations above glibc's small-request size, each one
    // consolidating its fast bins).
    std::size_t body_room = 1024;
    CompiledObject body;
    bool has_body = true;
    std::size_t identity_column = 0;
    std::optional<std::size_t> deleted_column;
};

std::string alternate_id_of(const config::IdentitySpec& identity, std::string_view cell) {
    std::string id(trim(cell));
    apply_normalize(id, identity.normalize);
    return id;
}

std::string Identity::key() const {
    if (profile_id) return "profile:" + std::to_string(*profile_id);
    return alternate_id_type + ":" + alternate_id;
}

std::string Identity::to_json() const {
    if (profile_id) return "{\"profile_id\":" + std::to_string(*profile_id) + "}";
    return "{\"alternate_id_type\":" + json_string(alternate_id_type) +
           ",\"alternate_id\":" + json_string(alternate_id) + "}";
}

Mapper::Mapper(std::unique_ptr<Compiled> compiled) : compiled_(std::move(compiled)) {}
Mapper::Mapper(Mapper&&) noexcept = default;
Mapper& Mapper::operator=(Mapper&&) noexcept = default;
Mapper::~Mapper() = default;

Mapper Mapper::compile(const config::JobConfig& job, const std::vector<std::string>& columns) {
    Compiler compiler(job, columns);
    auto c = std::make_unique<Compiled>();
    c->job = &job;
    const auto& id = job.identity;
    c->identity_column = compiler.column(id.by_profile_id() ? id.profile_id_column : id.column, id.pos, id.key_path);
    c->has_body = job.mode != config::Mode::Delete;
    c->body = compiler.object(job.mapping);
    if (!job.deleted_column.empty())
        c->deleted_column = compiler.column(job.deleted_column, job.pos, "jobs." + job.name + ".deleted_column");
    if (!compiler.errors().empty()) throw ConfigError(std::move(compiler.errors()));
    return Mapper(std::move(c));
}

std::optional<RowError> Mapper::read_identity(const connectors::Row& row, Identity& identity) const {
    const auto& job = *compiled_->job;
    const auto& cell = row.values[compiled_->identity_column];
    auto id_text = cell ? trim(*cell) : std::string_view();
    const auto& id_spec = job.identity;
    auto id_path = [&] { return id_spec.key_path + "." + (id_spec.by_profile_id() ? "profile_id_column" : "column"); };
    if (id_text.empty())
        return RowError{id_path(),
                        "the identity column \"" +
                            (id_spec.by_profile_id() ? id_spec.profile_id_column : id_spec.column) + "\" is empty",
                        std::nullopt};
    if (id_spec.by_profile_id()) {
        auto pid = parse_int(id_text);
        if (!pid || *pid <= 0 || *pid > INT32_MAX)
            return RowError{id_path(), "profile id \"" + std::string(id_text) + "\" is not a positive 32-bit integer",
                            std::nullopt};
        identity.profile_id = *pid;
    } else {
        identity.alternate_id_type = id_spec.alternate_id_type;
        identity.alternate_id = alternate_id_of(id_spec, id_text);
        if (identity.alternate_id.empty())
            return RowError{id_path(),
                            "the identity column \"" + id_spec.column + "\" is empty once normalized (\"" +
                                std::string(id_text) + "\")",
                            std::nullopt};
    }
    return std::nullopt;
}

std::optional<Identity> Mapper::identity_of(const connectors::Row& row) const {
    if (row.values.size() <= compiled_->identity_column) return std::nullopt;
    const auto& cell = row.values[compiled_->identity_column];
    if (cell && (!simdjson::validate_utf8(cell->data(), cell->size()) || cell->find('\0') != std::string::npos))
        return std::nullopt;
    Identity identity;
    if (read_identity(row, identity)) return std::nullopt;
    return identity;
}

MapResult Mapper::map(const connectors::Row& row) const {
    MappedRow out;
    if (auto error = read_identity(row, out.identity)) return std::move(*error);
    if (compiled_->deleted_column) {
        // NULL, empty or false-ish: present. true-ish or any other value (a deletion time): gone.
        const auto& d = row.values[*compiled_->deleted_column];
        auto text = d ? trim(*d) : std::string_view();
        auto flag = parse_bool(text);
        out.deleted = !text.empty() && (!flag || *flag);
        if (out.deleted) return out;  // no body: the row stands only for its identity
    }
    if (compiled_->has_body) {
        RowError error;
        out.body.reserve(compiled_->body_room);
        Evaluator eval(row, error, out.body);
        eval.body(compiled_->body);
        if (eval.failed()) {
            error.identity = std::move(out.identity);
            return error;
        }
        // Bounded low: the capacity travels with the body into the journal's batch and the
        // request, so one odd 64 KB row must not make a thousand later bodies 64 KB each.
        compiled_->body_room = std::clamp(out.body.size(), compiled_->body_room, std::size_t{4} << 10);
    }
    // 128 bits of SHA-256 over "identity key \n body": collisions stay out of reach (about 1
    // in 10^19 among 10^9 rows), and the journal keeps 16 bytes per identity instead of 32.
    auto key = out.identity.key();
    auto* ctx = compiled_->hashing.get();
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    if (!ctx || EVP_DigestInit_ex2(ctx, compiled_->sha256.get(), nullptr) != 1 ||
        EVP_DigestUpdate(ctx, key.data(), key.size()) != 1 || EVP_DigestUpdate(ctx, "\n", 1) != 1 ||
        EVP_DigestUpdate(ctx, out.body.data(), out.body.size()) != 1 || EVP_DigestFinal_ex(ctx, digest, &length) != 1)
        throw std::runtime_error("SHA-256 failed (OpenSSL)");
    out.hash = to_hex(digest, std::min(length, 16u));
    return out;
}

std::string sha256_hex(std::string_view data) {
    std::unique_ptr<EVP_MD, DigestDeleter> md{EVP_MD_fetch(nullptr, "SHA256", nullptr)};
    return hex_digest(data, md.get());
}

}  // namespace prefsync::mapping
