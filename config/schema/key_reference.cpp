// The key reference tables of config/README.md, from the same tables as the JSON Schema
// (config_schema.hpp). scripts/config-docs.py splices them into the README between their
// markers and a test fails when the README's copy is stale.
#include <cmath>
#include <set>
#include <span>

#include "config/config_keys.hpp"
#include "config/connector_types.hpp"
#include "config/schema/config_schema.hpp"

namespace prefsync::config {
namespace {

struct Row {
    std::string key, type, default_value, meaning;
};

std::string number_text(double v) {
    if (v == std::floor(v)) return std::to_string(static_cast<long long>(v));
    std::string s = std::to_string(v);
    while (s.ends_with('0')) s.pop_back();
    return s;
}

std::string type_text(const KeySpec& k) {
    if (!k.doc_type.empty()) return std::string(k.doc_type);
    auto joined = [&](std::string_view separator) {
        std::string out;
        for (auto v : k.value_list()) out += (out.empty() ? "" : std::string(separator)) + std::string(v);
        return out;
    };
    switch (k.type) {
        case ValueType::String: return "string";
        case ValueType::Path: return "path";
        case ValueType::Integer:
            // A bound in the billions says "no practical limit": only the minimum is worth reading.
            if (k.max >= 1e9) return "int ≥ " + number_text(k.min);
            return "int " + number_text(k.min) + "–" + number_text(k.max);
        case ValueType::Number: return "number";
        case ValueType::Boolean: return "bool";
        case ValueType::Duration: return "duration";
        case ValueType::Size: return "size";
        case ValueType::Enum:
            // Values with a slash of their own (search endpoints) are listed with commas.
            return joined(k.values.find('/') == std::string_view::npos ? "/" : ", ") +
                   (k.pattern.empty() ? "" : ", or `" + std::string(k.pattern) + "`");
        case ValueType::EnumList: return joined("/") + ", or a list of them";
        case ValueType::StringList:
        case ValueType::SectionList: return "list";
        default: return "map";
    }
}

std::string default_text(const KeySpec& k) {
    if (!k.required.empty()) return "required";
    if (!k.default_value.empty()) return "`" + std::string(k.default_value) + "`";
    if (!k.default_note.empty()) return std::string(k.default_note);
    return "—";
}

using Types = std::vector<std::pair<std::string_view, const KeyTable*>>;

template <class Registry>
Types types_of(const Registry& registry) {
    Types out;
    for (const auto& type : registry) out.emplace_back(type.name, &type.keys());
    return out;
}

std::string names(const std::vector<std::string_view>& types) {
    return join_alternatives(types, ", ");
}

// The keys of every connector type in one list, as the README documents a source or a sink:
// a key several types have is one row, saying which types when not all `all` of them. In a
// nested section (incremental), "required" is among the types that have the section.
void connector_rows(std::vector<Row>& out, const std::string& prefix, const Types& types, std::size_t all) {
    std::vector<std::string_view> order;
    for (const auto& [type, table] : types)
        for (const auto& k : table->keys)
            if (std::find(order.begin(), order.end(), k.name) == order.end()) order.push_back(k.name);
    for (auto name : order) {
        std::vector<std::pair<std::string_view, const KeySpec*>> specs;
        for (const auto& [type, table] : types)
            if (const auto* k = table->find(name)) specs.emplace_back(type, k);
        const KeySpec& first = *specs.front().second;
        std::vector<std::string_view> having;
        for (const auto& [type, k] : specs) having.push_back(type);
        if (first.type == ValueType::Section) {
            Types nested;
            for (const auto& [type, k] : specs) nested.emplace_back(type, &k->nested());
            connector_rows(out, prefix + std::string(name) + ".", nested, all);
            continue;
        }
        Row row{prefix + std::string(name), type_text(first), "", ""};
        if (name == "type") {  // each table names its own type: together, the choice
            row.type.clear();
            for (const auto& [type, k] : specs) row.type += (row.type.empty() ? "" : "/") + std::string(type);
            row.default_value = "required";
        } else {
            std::vector<std::string_view> required;
            std::set<std::string> defaults;
            for (const auto& [type, k] : specs) {
                if (!k->required.empty())
                    required.push_back(type);
                else
                    defaults.insert(default_text(*k));
            }
            if (!required.empty()) {
                row.default_value = "required";
                if (required.size() < types.size()) row.default_value += " (" + names(required) + ")";
            }
            for (const auto& d : defaults)
                if (d != "—" || required.empty()) row.default_value += (row.default_value.empty() ? "" : "; ") + d;
        }
        // One sentence per distinct description, prefixed with its types unless all have it.
        std::vector<std::pair<std::string_view, std::vector<std::string_view>>> meanings;
        for (const auto& [type, k] : specs) {
            // Clang 14 cannot capture a structured binding; name the description first.
            const std::string_view description = k->description;
            auto it = std::find_if(meanings.begin(), meanings.end(), [&](auto& m) { return m.first == description; });
            if (it == meanings.end())
                meanings.push_back({description, {type}});
            else
                it->second.push_back(type);
        }
        for (const auto& [meaning, of] : meanings) {
            if (!row.meaning.empty()) row.meaning += "; ";
            if (of.size() < all) row.meaning += names(of) + ": ";
            row.meaning += meaning;
        }
        out.push_back(std::move(row));
    }
}

// The rows of a table's keys, nested sections flattened into dotted keys.
void rows(std::vector<Row>& out, const KeyTable& table, const std::string& prefix,
          const std::set<std::string_view>& skip = {}) {
    for (const auto& k : table.keys) {
        if (k.type == ValueType::Refused || skip.contains(k.name)) continue;
        std::string key = prefix + std::string(k.name);
        if (k.type == ValueType::Section) {
            rows(out, k.nested(), key + ".");
        } else if (k.custom == custom::kSource) {
            auto types = types_of(source_types());
            connector_rows(out, key + ".", types, types.size());
        } else if (k.custom == custom::kSink) {
            auto types = types_of(sink_types());
            connector_rows(out, key + ".", types, types.size());
        } else {
            out.push_back({k.type == ValueType::SectionMap ? key + ".NAME" : key, type_text(k), default_text(k),
                           std::string(k.description)});
            if (k.type == ValueType::SectionList) rows(out, k.nested(), key + "[].");
        }
    }
}

std::string cell(const std::string& text) {
    std::string out;
    for (char c : text) {
        if (c == '|') out += '\\';
        out += c;
    }
    return out;
}

std::string block(std::string_view name, const std::vector<Row>& rows) {
    // The markers say how to change the table: not here, but in the key tables.
    std::string out = "<!-- BEGIN keys: " + std::string(name) +
                      " (generated from the key tables: scripts/config-docs.py --write) -->\n";
    out += "| key | type | default | meaning |\n|---|---|---|---|\n";
    for (const auto& r : rows)
        out += "| `" + cell(r.key) + "` | " + cell(r.type) + " | " + cell(r.default_value) + " | " + cell(r.meaning) +
               " |\n";
    out += "<!-- END keys: " + std::string(name) + " -->\n";
    return out;
}

}  // namespace

std::string config_key_reference() {
    std::string out;
    std::vector<Row> r;
    rows(r, root_keys(), "", {"daemon"});
    out += block("top", r);
    r.clear();
    rows(r, daemon_keys(), "daemon.");
    out += block("daemon", r);
    r.clear();
    rows(r, push_job_keys(), "");
    out += block("jobs", r);
    r.clear();
    rows(r, pull_keys(), "pull.");
    rows(r, pull_job_keys(), "", {"schedule", "pull", "source", "identity"});
    out += block("pull", r);
    r.clear();
    rows(r, value_keys(), "");
    out += block("value", r);
    return out;
}

}  // namespace prefsync::config
