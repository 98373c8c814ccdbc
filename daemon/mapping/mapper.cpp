#include "daemon/mapping/mapper.hpp"

#include <openssl/evp.h>

#include <algorithm>
#include <boost/json.hpp>
#include <unordered_map>

#include "config/yaml_reader.hpp"
#include "daemon/mapping/value_convert.hpp"

namespace prefsync::mapping {
namespace json = boost::json;
using config::ArraySpec;
using config::ConfigError;
using config::Diagnostic;
using config::FieldEntry;
using config::ObjectSpec;
using config::ValueSpec;

namespace {

constexpr std::size_t kConstant = SIZE_MAX;

struct CompiledValue {
    const ValueSpec* spec;
    std::size_t column = kConstant;  // index into Row::values, or kConstant
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
    std::vector<std::pair<std::string, CompiledValue>> named;
    std::string name_field, value_field;
};

struct CompiledField {
    std::string name;
    std::variant<CompiledValue, CompiledObject, CompiledArray> node;
};

// Evaluation of one value: absent, a JSON value, or an error (which rejects the row).
struct Eval {
    enum class Kind { Absent, Present, Error } kind = Kind::Absent;
    json::value value;
    static Eval absent() { return {}; }
};

class Compiler {
public:
    Compiler(const config::JobConfig& job, const std::vector<std::string>& columns)
        : job_(job), columns_(columns) {
        for (std::size_t i = 0; i < columns.size(); ++i) index_.emplace(columns[i], i);
    }

    CompiledObject object(const ObjectSpec& spec) {
        CompiledObject out;
        for (const FieldEntry& e : spec.fields) {
            CompiledField f{e.name, CompiledValue{}};
            if (auto* v = std::get_if<ValueSpec>(&e.spec)) {
                f.node = value(*v);
                out.has_columns |= std::get<CompiledValue>(f.node).column != kConstant;
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
            out.split_with = object(ObjectSpec{spec.split->with});
        }
        for (const auto& n : spec.named) out.named.emplace_back(n.name, value(n.value));
        out.name_field = spec.name_field;
        out.value_field = spec.value_field;
        return out;
    }

    CompiledValue value(const ValueSpec& spec) {
        CompiledValue out{&spec, kConstant};
        if (spec.column) out.column = column(*spec.column, spec.pos, spec.key_path);
        return out;
    }

    std::size_t column(const std::string& name, const config::SourcePos& pos,
                       const std::string& key_path) {
        auto it = index_.find(name);
        if (it != index_.end()) return it->second;
        std::vector<std::string_view> candidates(columns_.begin(), columns_.end());
        auto hint = config::suggest(name, candidates);
        std::string message = "unknown column \"" + name + "\" in " + job_.source.path;
        if (!hint.empty()) message += " (did you mean \"" + hint + "\"?)";
        else if (name == "true" || name == "false" || std::isdigit(static_cast<unsigned char>(name[0])) ||
                 std::isupper(static_cast<unsigned char>(name[0])))
            message += "; to send a constant, write {const: " + name + "}";
        errors_.push_back({pos, key_path, message});
        return 0;
    }

    std::vector<Diagnostic>& errors() { return errors_; }

private:
    const config::JobConfig& job_;
    const std::vector<std::string>& columns_;
    std::unordered_map<std::string, std::size_t> index_;
    std::vector<Diagnostic> errors_;
};

class Evaluator {
public:
    Evaluator(const connectors::Row& row, RowError& error) : row_(row), error_(error) {}

    bool failed() const { return failed_; }

    // The cleaned text of a value before type conversion; nullopt when absent.
    std::optional<std::string> text(const CompiledValue& v, std::string_view input, bool is_null) {
        const ValueSpec& s = *v.spec;
        std::string t(s.trim ? trim(input) : input);
        for (auto n : s.normalize) {
            switch (n) {
                case config::Normalize::Lowercase: to_lower_ascii(t); break;
                case config::Normalize::Uppercase: to_upper_ascii(t); break;
                case config::Normalize::Digits: keep_digits(t); break;
                case config::Normalize::CollapseSpaces: collapse_spaces(t); break;
            }
        }
        if (t.empty() || is_null) {
            if (s.default_value) return *s.default_value;
            if (s.required) {
                fail(s.key_path, is_null ? "is required, but the value is NULL"
                                         : "is required, but the value is empty");
                return std::nullopt;
            }
            if (s.empty == config::EmptyPolicy::Keep && !is_null) return std::string();
            return std::nullopt;
        }
        if (!s.value_map.empty()) {
            auto it = s.value_map.find(t);
            if (it == s.value_map.end()) it = s.value_map.find("*");
            if (it == s.value_map.end()) {
                std::string expected;
                for (auto& [k, _] : s.value_map) expected += (expected.empty() ? "" : ", ") + k;
                fail(s.key_path, "value \"" + t + "\" is not in the map (expected one of " +
                                     expected + ")");
                return std::nullopt;
            }
            return it->second;  // map targets were checked at config time
        }
        if (!s.date_in.empty()) {
            auto d = reformat_date(t, s.date_in, s.date_out);
            if (!d) {
                fail(s.key_path, "value \"" + t + "\" is not a date in the format \"" + s.date_in + "\"");
                return std::nullopt;
            }
            return d;
        }
        return t;
    }

    Eval convert(const CompiledValue& v, std::optional<std::string> t) {
        if (failed_ || !t) return Eval::absent();
        const ValueSpec& s = *v.spec;
        Eval e;
        e.kind = Eval::Kind::Present;
        switch (s.target) {
            case api::FieldType::Bool:
                if (auto b = parse_bool(*t)) e.value = *b;
                else return fail(s.key_path, check_convertible(*t, s.target));
                break;
            case api::FieldType::Int:
                if (auto i = parse_int(*t)) e.value = *i;
                else return fail(s.key_path, check_convertible(*t, s.target));
                break;
            default: e.value = json::string(*t); break;
        }
        return e;
    }

    Eval value(const CompiledValue& v) {
        if (v.column == kConstant) return convert(v, text(v, *v.spec->constant, false));
        const auto& cell = row_.values[v.column];
        return convert(v, text(v, cell ? std::string_view(*cell) : std::string_view(), !cell));
    }

    // nullopt when the object has nothing to send.
    std::optional<json::object> object(const CompiledObject& o) {
        json::object out;
        bool has_data = false;
        for (const auto& f : o.fields) {
            if (failed_) return std::nullopt;
            if (auto* v = std::get_if<CompiledValue>(&f.node)) {
                Eval e = value(*v);
                if (e.kind != Eval::Kind::Present) continue;
                has_data |= v->column != kConstant;
                out.emplace(f.name, std::move(e.value));
            } else if (auto* obj = std::get_if<CompiledObject>(&f.node)) {
                if (auto nested = object(*obj)) {
                    has_data |= obj->has_columns;
                    out.emplace(f.name, std::move(*nested));
                }
            } else if (auto arr = array(std::get<CompiledArray>(f.node))) {
                has_data = true;
                out.emplace(f.name, std::move(*arr));
            }
        }
        if (failed_ || out.empty()) return std::nullopt;
        // An element whose column-fed fields are all empty is not sent, even if its
        // constants are set: "work email" with no address is no email.
        if (o.has_columns && !has_data) return std::nullopt;
        return out;
    }

    std::optional<json::array> array(const CompiledArray& a) {
        json::array out;
        for (const auto& element : a.elements)
            if (auto obj = object(element)) out.push_back(std::move(*obj));
        if (a.split) split(a, out);
        for (const auto& [name, v] : a.named) {
            Eval e = value(v);
            if (e.kind != Eval::Kind::Present) continue;
            json::object obj;
            obj.emplace(a.name_field, name);
            obj.emplace(a.value_field, std::move(e.value));
            out.push_back(std::move(obj));
        }
        if (failed_ || out.empty()) return std::nullopt;
        return out;
    }

    void split(const CompiledArray& a, json::array& out) {
        const auto& item = *a.split_item;
        const auto& cell = row_.values[item.column];
        if (!cell) return;
        std::optional<json::object> with;
        std::vector<std::string> seen;
        std::string_view rest = *cell;
        while (!failed_) {
            auto cut = rest.find(a.split->delimiter);
            auto piece = rest.substr(0, cut);
            auto t = text(item, piece, false);
            if (t && !t->empty() && std::find(seen.begin(), seen.end(), *t) == seen.end()) {
                seen.push_back(*t);
                Eval e = convert(item, t);
                if (e.kind == Eval::Kind::Present) {
                    if (!with) with = object(a.split_with).value_or(json::object());
                    json::object obj;
                    obj.emplace(a.split->field, std::move(e.value));
                    for (auto& kv : *with) obj.emplace(kv.key(), kv.value());
                    out.push_back(std::move(obj));
                }
            }
            if (cut == std::string_view::npos) break;
            rest.remove_prefix(cut + a.split->delimiter.size());
        }
    }

    Eval fail(const std::string& key_path, std::string message) {
        if (!failed_) {
            failed_ = true;
            error_.key_path = key_path;
            error_.message = std::move(message);
        }
        Eval e;
        e.kind = Eval::Kind::Error;
        return e;
    }

private:
    const connectors::Row& row_;
    RowError& error_;
    bool failed_ = false;
};

std::string json_string(std::string_view s) { return json::serialize(json::string(s)); }

}  // namespace

struct Mapper::Compiled {
    const config::JobConfig* job;
    CompiledObject body;
    bool has_body = true;
    std::size_t identity_column = 0;
};

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
    c->identity_column = compiler.column(id.by_profile_id() ? id.profile_id_column : id.column,
                                         id.pos, id.key_path);
    c->has_body = job.mode != config::Mode::Delete;
    c->body = compiler.object(job.mapping);
    if (!compiler.errors().empty()) throw ConfigError(std::move(compiler.errors()));
    return Mapper(std::move(c));
}

MapResult Mapper::map(const connectors::Row& row) const {
    const auto& job = *compiled_->job;
    const auto& cell = row.values[compiled_->identity_column];
    auto id_text = cell ? trim(*cell) : std::string_view();
    const auto& id_spec = job.identity;
    std::string id_path = id_spec.key_path + "." +
                          (id_spec.by_profile_id() ? "profile_id_column" : "column");
    if (id_text.empty())
        return RowError{id_path, "the identity column \"" +
                                     (id_spec.by_profile_id() ? id_spec.profile_id_column : id_spec.column) +
                                     "\" is empty"};
    MappedRow out;
    if (id_spec.by_profile_id()) {
        auto pid = parse_int(id_text);
        if (!pid || *pid <= 0 || *pid > INT32_MAX)
            return RowError{id_path, "profile id \"" + std::string(id_text) +
                                         "\" is not a positive 32-bit integer"};
        out.identity.profile_id = *pid;
    } else {
        out.identity.alternate_id_type = id_spec.alternate_id_type;
        out.identity.alternate_id = std::string(id_text);
    }
    if (compiled_->has_body) {
        RowError error;
        Evaluator eval(row, error);
        auto body = eval.object(compiled_->body);
        if (eval.failed()) return error;
        out.body = json::serialize(body.value_or(json::object()));
    }
    std::string key = out.identity.key();
    key += '\n';
    key += out.body;
    out.hash = sha256_hex(key);
    return out;
}

std::string sha256_hex(std::string_view data) {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    EVP_Digest(data.data(), data.size(), digest, &length, EVP_sha256(), nullptr);
    static constexpr char hex[] = "0123456789abcdef";
    std::string out(length * 2, '0');
    for (unsigned i = 0; i < length; ++i) {
        out[2 * i] = hex[digest[i] >> 4];
        out[2 * i + 1] = hex[digest[i] & 15];
    }
    return out;
}

}  // namespace prefsync::mapping
