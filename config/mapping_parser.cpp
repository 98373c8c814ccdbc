#include "config/mapping_parser.hpp"

#include <algorithm>
#include <stdexcept>

#include "config/config_keys.hpp"
#include "daemon/api/value_convert.hpp"

namespace prefsync::config {
namespace {

using api::FieldSchema;
using api::FieldType;
using api::ObjectSchema;

class MappingParser {
public:
    explicit MappingParser(YamlReader& r) : r_(r) {}

    ObjectSpec object(const YAML::Node& node, const std::string& path, const ObjectSchema& schema) {
        ObjectSpec out;
        if (!r_.expect_map(node, path)) return out;
        for (auto& [key, value] : r_.entries(node, path)) add_dotted(out, key, value, path, schema);
        return out;
    }

private:
    static std::string join(const std::string& path, const std::string& key) {
        return path.empty() ? key : path + "." + key;
    }

    std::string unknown_field(const ObjectSchema& schema, const std::string& name) {
        std::string msg = "unknown " + std::string(schema.name) + " field \"" + name + "\"";
        auto hint = schema.closest(name);
        if (!hint.empty()) msg += " (did you mean \"" + std::string(hint) + "\"?)";
        return msg;
    }

    // "CustomerName.FirstName: col" is the same as "CustomerName: {FirstName: col}".
    void add_dotted(ObjectSpec& out, const std::string& key, const YAML::Node& value, const std::string& path,
                    const ObjectSchema& schema) {
        auto dot = key.find('.');
        std::string head = key.substr(0, dot);
        std::string head_path = join(path, head);
        const FieldSchema* field = schema.find(head);
        if (!field) {
            r_.error(value, head_path, unknown_field(schema, head));
            return;
        }
        if (dot == std::string::npos) {
            add_field(out, *field, value, head_path);
            return;
        }
        if (field->type != FieldType::Object) {
            r_.error(value, head_path,
                     "is " + std::string(api::to_string(field->type)) +
                         "; only object fields take a dotted path (lists are written as YAML lists)");
            return;
        }
        if (auto* nested = nested_object(out, head, value, head_path))
            add_dotted(*nested, key.substr(dot + 1), value, head_path, *field->element);
    }

    // The object entry `name` of `out`, created on first use; nullptr if `name` is already
    // mapped as something other than an object.
    ObjectSpec* nested_object(ObjectSpec& out, const std::string& name, const YAML::Node& at, const std::string& path) {
        for (auto& e : out.fields) {
            if (e.name != name) continue;
            if (auto* obj = std::get_if<ObjectSpec>(&e.spec)) return obj;
            r_.error(at, path, "is mapped twice");
            return nullptr;
        }
        out.fields.push_back({name, ObjectSpec{}});
        return &std::get<ObjectSpec>(out.fields.back().spec);
    }

    void add_field(ObjectSpec& out, const FieldSchema& field, const YAML::Node& value, const std::string& path) {
        std::string name(field.name);
        auto existing = std::find_if(out.fields.begin(), out.fields.end(), [&](auto& e) { return e.name == name; });
        if (field.read_only) {
            r_.error(value, path, "is read-only in the API and cannot be sent");
            return;
        }
        if (field.type == FieldType::Object && existing != out.fields.end() &&
            std::holds_alternative<ObjectSpec>(existing->spec) && value.IsMap()) {
            // Merge with fields given through dotted keys.
            for (auto& [k, v] : r_.entries(value, path))
                add_dotted(std::get<ObjectSpec>(existing->spec), k, v, path, *field.element);
            return;
        }
        if (existing != out.fields.end()) {
            r_.error(value, path, "is mapped twice");
            return;
        }
        if (auto spec = parse_field(field, value, path)) out.fields.push_back({name, std::move(*spec)});
    }

    std::optional<FieldSpec> parse_field(const FieldSchema& field, const YAML::Node& value, const std::string& path) {
        switch (field.type) {
            case FieldType::String:
            case FieldType::Int:
            case FieldType::Bool:
                if (auto v = this->value(value, path, field.type)) return FieldSpec{std::move(*v)};
                return std::nullopt;
            case FieldType::Object:
                if (!value.IsMap()) {
                    r_.error(value, path, "expected a mapping of " + std::string(field.element->name) + " fields");
                    return std::nullopt;
                }
                return FieldSpec{object(value, path, *field.element)};
            case FieldType::Array: return array(field, value, path);
        }
        return std::nullopt;
    }

    std::optional<FieldSpec> array(const FieldSchema& field, const YAML::Node& value, const std::string& path) {
        const ObjectSchema& element = *field.element;
        ArraySpec out;
        if (value.IsSequence()) {
            for (std::size_t i = 0; i < value.size(); ++i) {
                std::string item_path = path + "[" + std::to_string(i) + "]";
                if (!value[i].IsMap()) {
                    r_.error(value[i], item_path, "expected a mapping of " + std::string(element.name) + " fields");
                    continue;
                }
                out.elements.push_back(object(value[i], item_path, element));
            }
            return FieldSpec{std::move(out)};
        }
        if (!value.IsMap()) {
            r_.error(value, path,
                     "expected a list of " + std::string(element.name) +
                         " elements, or a split column ({column: c, split: \";\"})");
            return std::nullopt;
        }
        if (value["column"]) {
            if (auto split = this->split(element, value, path)) {
                out.split = std::move(*split);
                return FieldSpec{std::move(out)};
            }
            return std::nullopt;
        }
        const char* name_field = element.find("Name") ? "Name" : element.find("Key") ? "Key" : nullptr;
        if (!name_field || !element.find("Value")) {
            r_.error(value, path,
                     "expected a list of " + std::string(element.name) +
                         " elements, or a split column ({column: c, split: \";\"})");
            return std::nullopt;
        }
        out.name_field = name_field;
        out.value_field = "Value";
        for (auto& [name, v] : r_.entries(value, path)) {
            if (auto spec = this->value(v, join(path, name), FieldType::String))
                out.named.push_back({name, std::move(*spec)});
        }
        return FieldSpec{std::move(out)};
    }

    std::optional<SplitSpec> split(const ObjectSchema& element, const YAML::Node& node, const std::string& path) {
        const auto& keys = split_keys();
        r_.check_keys(node, path, keys);
        SplitSpec out;
        if (r_.read(node, path, keys.key("split"), out.delimiter) && out.delimiter.empty())
            r_.error(node["split"], path + ".split", "must not be empty");
        if (node["field"]) {
            r_.read(node, path, keys.key("field"), out.field);
        } else {
            // The obvious target when the element has one writable string field (ProfileTags).
            const FieldSchema* only = nullptr;
            int count = 0;
            for (auto& f : element.fields)
                if (!f.read_only && f.type == FieldType::String) only = &f, ++count;
            if (count == 1)
                out.field = std::string(only->name);
            else
                r_.error(node, path + ".field",
                         "is required: which " + std::string(element.name) + " field gets each item");
        }
        const FieldSchema* target = out.field.empty() ? nullptr : element.find(out.field);
        if (!out.field.empty() && !target) {
            r_.error(node["field"], path + ".field", unknown_field(element, out.field));
            return std::nullopt;
        }
        if (target && target->type != FieldType::String && target->type != FieldType::Int) {
            r_.error(node["field"], path + ".field", "must be a string or integer field");
            return std::nullopt;
        }
        // The item spec is the node itself minus the split-only keys.
        YAML::Node item_node = YAML::Clone(node);
        for (auto key : {"split", "field", "with"}) item_node.remove(key);
        auto item = value(item_node, path, target ? target->type : FieldType::String, node);
        if (!item) return std::nullopt;
        out.item = std::move(*item);
        if (auto w = node["with"]) {
            std::string wp = path + ".with";
            if (r_.expect_map(w, wp)) {
                ObjectSpec with = object(w, wp, element);
                for (auto& e : with.fields) {
                    if (e.name == out.field) r_.error(w, wp + "." + e.name, "is the split field itself");
                }
                out.with = std::move(with.fields);
            }
        }
        return out;
    }

    std::optional<ValueSpec> value(const YAML::Node& node, const std::string& path, FieldType target,
                                   const YAML::Node& pos_node = YAML::Node()) {
        ValueSpec v;
        v.pos = r_.pos(pos_node.IsDefined() && !pos_node.IsNull() ? pos_node : node);
        v.key_path = path;
        v.target = target;
        if (node.IsScalar()) {
            auto column = r_.string(node, path);
            if (!column) return std::nullopt;
            if (column->empty()) {
                r_.error(node, path, "column name is empty");
                return std::nullopt;
            }
            v.column = *column;
            return v;
        }
        if (!node.IsMap()) {
            r_.error(node, path,
                     node.IsNull() ? "is empty; give a column name or {const: VALUE}"
                                   : "expected a column name or a mapping such as {column: c}");
            return std::nullopt;
        }
        // A split's item spec arrives here without split, field and with (split()); anywhere
        // else they would be silently ignored, so they are not in the table.
        const auto& keys = value_keys();
        auto errors = r_.diagnostics().size();
        r_.check_keys(node, path, keys);  // with the rule: column or const
        bool ok = r_.diagnostics().size() == errors;
        std::string column;
        if (r_.read(node, path, keys.key("column"), column)) v.column = column;
        if (auto c = node["const"]) {
            if (auto s = r_.string(c, path + ".const")) {
                v.constant = *s;
                ok &= convertible(c, path + ".const", *s, target);
            }
        }
        r_.read(node, path, keys.key("trim"), v.trim);
        r_.read(node, path, keys.key("required"), v.required);
        if (node["normalize"]) ok &= normalize(node, path, keys.key("normalize"), v);
        if (auto n = node["map"]) {
            std::string mp = path + ".map";
            if (r_.expect_map(n, mp)) {
                for (auto& [from, to] : r_.entries(n, mp)) {
                    if (auto s = r_.string(to, mp + "." + from)) {
                        ok &= convertible(to, mp + "." + from, *s, target);
                        v.value_map.emplace(from, *s);
                    }
                }
            }
        }
        if (auto n = node["default"]) {
            if (auto s = r_.string(n, path + ".default")) {
                ok &= convertible(n, path + ".default", *s, target);
                v.default_value = *s;
            }
        }
        if (auto n = node["date"]) ok &= date(n, path + ".date", v);
        std::string empty;
        if (r_.read(node, path, keys.key("empty"), empty))
            v.empty = empty == "keep" ? EmptyPolicy::Keep : EmptyPolicy::Absent;
        else if (node["empty"])
            ok = false;
        if (v.empty == EmptyPolicy::Keep && target != FieldType::String) {
            r_.error(node["empty"], path + ".empty",
                     "keep is only for string fields (\"\" is not a " + std::string(api::to_string(target)) + ")");
            ok = false;
        }
        return ok ? std::optional<ValueSpec>(std::move(v)) : std::nullopt;
    }

    bool normalize(const YAML::Node& map, const std::string& path, const KeySpec& key, ValueSpec& v) {
        std::vector<std::string> names;
        if (!r_.read(map, path, key, names)) return false;
        for (const auto& name : names) {
            if (name == "lowercase")
                v.normalize.push_back(Normalize::Lowercase);
            else if (name == "uppercase")
                v.normalize.push_back(Normalize::Uppercase);
            else if (name == "digits")
                v.normalize.push_back(Normalize::Digits);
            else if (name == "collapse_spaces")
                v.normalize.push_back(Normalize::CollapseSpaces);
            else if (name == "trim")
                v.trim = true;
            else
                throw std::logic_error("normalize: the parser has no value " + name);
        }
        return true;
    }

    bool date(const YAML::Node& n, const std::string& path, ValueSpec& v) {
        if (n.IsScalar()) {
            if (auto s = r_.string(n, path)) v.date_in = *s;
        } else if (n.IsMap()) {
            const auto& keys = date_keys();
            r_.check_keys(n, path, keys);
            r_.read(n, path, keys.key("in"), v.date_in);
            r_.read(n, path, keys.key("out"), v.date_out);
        } else {
            r_.error(n, path, "expected an input format such as \"%m/%d/%Y\" or {in: ..., out: ...}");
            return false;
        }
        bool ok = true;
        for (auto* f : {&v.date_in, &v.date_out}) {
            if (auto problem = check_date_format(*f); !problem.empty()) {
                r_.error(n, path, problem);
                ok = false;
            }
        }
        if (v.target != FieldType::String) {
            r_.error(n, path, "dates go into string fields only");
            ok = false;
        }
        return ok;
    }

    bool convertible(const YAML::Node& n, const std::string& path, const std::string& text, FieldType target) {
        auto problem = api::check_convertible(text, target);
        if (problem.empty()) return true;
        r_.error(n, path, problem);
        return false;
    }

    YamlReader& r_;
};

}  // namespace

std::string check_date_format(std::string_view format) {
    if (format.empty()) return "date format is empty";
    for (std::size_t i = 0; i < format.size(); ++i) {
        if (format[i] != '%') continue;
        if (i + 1 >= format.size()) return "date format ends with a lone %";
        char d = format[++i];
        if (std::string_view("YmdHMSy%").find(d) == std::string_view::npos)
            return std::string("date format directive %") + d + " is not supported (use %Y %y %m %d %H %M %S)";
    }
    return {};
}

ObjectSpec parse_mapping(YamlReader& reader, const YAML::Node& node, const std::string& path,
                         const api::ObjectSchema& schema) {
    return MappingParser(reader).object(node, path, schema);
}

}  // namespace prefsync::config
