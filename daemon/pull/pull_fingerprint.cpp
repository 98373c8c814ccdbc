#include "daemon/pull/pull_fingerprint.hpp"

#include <optional>
#include <string_view>
#include <type_traits>
#include <variant>

#include "connectors/open_source.hpp"
#include "daemon/api/api_target.hpp"
#include "daemon/mapping/mapper.hpp"

namespace prefsync::pull {
namespace {

// One setting per line, its value length-prefixed: no two different settings make the
// same text, whatever the values hold.
class Canon {
public:
    void add(const std::string& name, std::string_view value) {
        text_ += name;
        text_ += '=';
        text_ += std::to_string(value.size());
        text_ += ':';
        text_ += value;
        text_ += '\n';
    }
    void add(const std::string& name, const std::string& value) { add(name, std::string_view(value)); }
    void add(const std::string& name, const char* value) { add(name, std::string_view(value)); }
    void add(const std::string& name, const std::optional<std::string>& value) {
        if (value)
            add(name, *value);
        else
            add(name + "?", "absent");
    }
    template <class T>
    requires std::is_arithmetic_v<T> || std::is_enum_v<T>
    void add(const std::string& name, T value) {
        if constexpr (std::is_enum_v<T>)
            add(name, std::to_string(static_cast<long long>(value)));
        else
            add(name, std::to_string(value));
    }
    const std::string& text() const { return text_; }

private:
    std::string text_;
};

void add_fields(Canon& c, const std::string& at, const std::vector<config::FieldEntry>& fields);

void add_value(Canon& c, const std::string& at, const config::ValueSpec& v) {
    c.add(at + ".target", v.target);
    c.add(at + ".column", v.column);
    c.add(at + ".const", v.constant);
    c.add(at + ".trim", v.trim);
    for (std::size_t i = 0; i < v.normalize.size(); ++i)
        c.add(at + ".normalize[" + std::to_string(i) + "]", v.normalize[i]);
    for (const auto& [from, to] : v.value_map) c.add(at + ".map." + from, to);
    c.add(at + ".default", v.default_value);
    c.add(at + ".date_in", v.date_in);
    c.add(at + ".date_out", v.date_out);
    c.add(at + ".empty", v.empty);
    c.add(at + ".required", v.required);
}

void add_spec(Canon& c, const std::string& at, const config::FieldSpec& spec) {
    std::visit(
        [&](const auto& s) {
            using T = std::decay_t<decltype(s)>;
            if constexpr (std::is_same_v<T, config::ValueSpec>) {
                add_value(c, at, s);
            } else if constexpr (std::is_same_v<T, config::ObjectSpec>) {
                add_fields(c, at, s.fields);
            } else {
                for (std::size_t i = 0; i < s.elements.size(); ++i)
                    add_fields(c, at + "[" + std::to_string(i) + "]", s.elements[i].fields);
                if (s.split) {
                    add_value(c, at + ".split", s.split->item);
                    c.add(at + ".split.delimiter", s.split->delimiter);
                    c.add(at + ".split.field", s.split->field);
                    add_fields(c, at + ".split.with", s.split->with);
                }
                for (const auto& n : s.named) add_value(c, at + ".named." + n.name, n.value);
                c.add(at + ".name_field", s.name_field);
                c.add(at + ".value_field", s.value_field);
            }
        },
        spec);
}

void add_fields(Canon& c, const std::string& at, const std::vector<config::FieldEntry>& fields) {
    c.add(at + ".fields", fields.size());
    for (const auto& f : fields) add_spec(c, at + "." + f.name, f.spec);
}

// Where the identities come from: the rows read (the source) and the column(s) read in them.
void add_identities(Canon& c, const config::JobConfig& ids) {
    c.add("source", connectors::position_identity(ids.source));
    if (const auto* csv = std::get_if<connectors::CsvSourceConfig>(&ids.source.settings)) {
        c.add("source.delimiter", csv->delimiter);
        c.add("source.header", csv->header);
        for (const auto& name : csv->columns) c.add("source.columns[]", name);
        c.add("source.max_record_bytes", csv->max_record_bytes);
    }
    c.add("identity.alternate_id_type", ids.identity.alternate_id_type);
    c.add("identity.column", ids.identity.column);
    c.add("identity.profile_id_column", ids.identity.profile_id_column);
}

}  // namespace

std::string pull_fingerprint(const config::Config& config, const config::JobConfig& job) {
    Canon c;
    c.add("fingerprint", "2");  // the layout of this text: a change of it starts every unfinished pull afresh
    // The API the output's profiles come from: resumed against another, one file would hold
    // two servers' profiles.
    c.add("api", api::api_target(config.api.base_url, config.api.client_id));
    const auto& pull = *job.pull;
    c.add("pull.searches", pull.searches.size());
    for (std::size_t i = 0; i < pull.searches.size(); ++i) {
        auto at = "pull.searches[" + std::to_string(i) + "]";
        c.add(at + ".endpoint", pull.searches[i].endpoint);
        for (const auto& [key, value] : pull.searches[i].params) c.add(at + ".params." + key, value);
    }
    c.add("pull.history", pull.history ? config::to_string(*pull.history) : "");
    c.add("pull.filter_id", pull.filter_id);
    c.add("pull.implied", pull.implied);
    c.add("pull.match_inactive", pull.match_inactive);
    c.add("pull.reconcile", pull.reconcile);
    if (job.sink) {
        const auto& sink = *job.sink;
        c.add("sink.type", sink.type());
        c.add("sink.path", sink.path());
        c.add("sink.table", sink.table());
        c.add("sink.key", sink.key());
        c.add("sink.each", sink.each());
        c.add("sink.columns", sink.columns().size());
        for (const auto& column : sink.columns()) c.add("sink.columns." + column.name, column.path);
        if (const auto* pg = std::get_if<connectors::PostgresSinkConfig>(&sink.settings))
            c.add("sink.conninfo", pg->connection.conninfo);
    }
    const auto* ids = pull.reconcile.empty() ? (job.has_source ? &job : nullptr) : config.find_job(pull.reconcile);
    if (ids) add_identities(c, *ids);
    if (ids && !pull.reconcile.empty()) {
        c.add("reconcile.mode", config::to_string(ids->mode));
        add_fields(c, "reconcile.mapping", ids->mapping.fields);
    }
    return mapping::sha256_hex(c.text());
}

}  // namespace prefsync::pull
