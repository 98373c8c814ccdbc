#include "connectors/csv/csv_config.hpp"

#include "config/yaml/yaml_reader.hpp"

namespace prefsync::connectors {

CsvSourceConfig parse_csv_source(config::YamlReader& r, const YAML::Node& n, const std::string& p) {
    CsvSourceConfig s;
    r.check_keys(n, p, {"type", "path", "delimiter", "header", "columns", "reject_file", "max_record_bytes"});
    if (auto path = r.required_string(n, p, "path", "the CSV file to read")) s.path = r.resolve_path(*path);
    if (auto v = n["delimiter"]) {
        if (auto d = r.string(v, p + ".delimiter")) {
            std::string delim = *d == "\\t" ? "\t" : *d;
            if (delim.size() != 1 || delim[0] == '"' || delim[0] == '\n' || delim[0] == '\r')
                r.error(v, p + ".delimiter", "must be one character (not a quote or newline); write \"\\t\" for tab");
            else
                s.delimiter = delim[0];
        }
    }
    r.optional_field(n, p, "header", s.header, [&](auto& v, auto path) { return r.boolean(v, path); });
    if (auto v = n["columns"]) {
        if (auto cols = r.string_list(v, p + ".columns")) s.columns = *cols;
    }
    if (!s.header && s.columns.empty())
        r.error(n, p + ".columns", "is required when header: false (the column names)");
    if (s.header && !s.columns.empty())
        r.error(n["columns"], p + ".columns", "is only for files without a header row (header: false)");
    r.optional_field(n, p, "max_record_bytes", s.max_record_bytes, [&](auto& v, auto path) { return r.size(v, path); });
    return s;
}

CsvSinkConfig parse_csv_sink(config::YamlReader& r, const YAML::Node& n, const std::string& p) {
    CsvSinkConfig s;
    r.check_keys(n, p, {"type", "columns", "each", "path"});
    s.path = read_sink_path(r, n, p);
    s.columns = read_sink_columns(r, n, p);
    r.optional_string(n, p, "each", s.each);
    return s;
}

}  // namespace prefsync::connectors
