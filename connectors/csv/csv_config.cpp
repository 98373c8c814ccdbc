#include "connectors/csv/csv_config.hpp"

#include "config/yaml/yaml_reader.hpp"
#include "connectors/source_keys.hpp"

namespace prefsync::connectors {

using config::ValueType;

const config::KeyTable& csv_source_keys() {
    static const config::KeyTable table{
        .id = "source.csv",
        .description = "A CSV file (RFC 4180; UTF-8), read as it streams.",
        .keys =
            {
                source_type_key("csv", "a CSV file"),
                {.name = "path",
                 .type = ValueType::Path,
                 .required = "the CSV file to read",
                 .description = "the CSV file"},
                {.name = "delimiter",
                 .type = ValueType::String,
                 .default_value = ",",
                 .doc_type = "one character",
                 .description = "the field delimiter; `\"\\t\"` for tab"},
                {.name = "header",
                 .type = ValueType::Boolean,
                 .default_value = "true",
                 .description = "the first row names the columns"},
                {.name = "columns",
                 .type = ValueType::StringList,
                 .doc_type = "list",
                 .description = "the column names, required when `header: false` (and only then)"},
                kRejectFileKey,
                {.name = "max_record_bytes",
                 .type = ValueType::Size,
                 .default_value = "1MiB",
                 .description = "longer records, and records of more than max_record_bytes / 32 fields (32,768 at the "
                                "default, at least 1,024), are rejected and reading goes on with the next record; the "
                                "reader holds at most about 8 × this, whatever the file"},
                {.name = "settle",
                 .type = ValueType::Duration,
                 .default_value = "2s",
                 .description = "a run reads the file only once it has been unchanged this long (its modification "
                                "time): one still being written is waited for (`sync`, `backfill`, `plan`, `explain`, "
                                "`dry-run`: at most a minute past this, then exit 4) or read again later (the daemon); "
                                "`0s` reads it at once, and so does a modification time over a minute ahead of this "
                                "machine's clock (a share's wrong clock). A writer paused longer than this is not "
                                "noticed: write the file under another name and rename it into place"},
            },
    };
    return table;
}

const config::KeyTable& csv_sink_keys() {
    static const config::KeyTable table{
        .id = "sink.csv",
        .description = "A CSV file of the pulled profiles, one row per profile (or per element of `each`).",
        .keys =
            {
                sink_type_key("csv", "a CSV file"),
                kSinkColumnsKey,
                {.name = "each",
                 .type = ValueType::String,
                 .doc_type = "array path",
                 .description = "one row per element of this array (e.g. `Consents` of a history), where `@.Field` "
                                "in `columns` is a field of the element"},
                kSinkPathKey,
            },
    };
    return table;
}

CsvSourceConfig parse_csv_source(config::YamlReader& r, const YAML::Node& n, const std::string& p) {
    const auto& keys = csv_source_keys();
    CsvSourceConfig s;
    r.check_keys(n, p, keys);
    r.read(n, p, keys.key("path"), s.path);
    std::string delimiter;
    if (r.read(n, p, keys.key("delimiter"), delimiter)) {
        std::string delim = delimiter == "\\t" ? "\t" : delimiter;
        if (delim.size() != 1 || delim[0] == '"' || delim[0] == '\n' || delim[0] == '\r')
            r.error(n["delimiter"], p + ".delimiter",
                    "must be one character (not a quote or newline); write \"\\t\" for tab");
        else
            s.delimiter = delim[0];
    }
    r.read(n, p, keys.key("header"), s.header);
    r.read(n, p, keys.key("columns"), s.columns);
    if (!s.header && s.columns.empty()) r.error(n, p + ".columns", "is required when header: false (the column names)");
    if (s.header && !s.columns.empty())
        r.error(n["columns"], p + ".columns", "is only for files without a header row (header: false)");
    r.read(n, p, keys.key("max_record_bytes"), s.max_record_bytes);
    r.read(n, p, keys.key("settle"), s.settle);
    return s;
}

CsvSinkConfig parse_csv_sink(config::YamlReader& r, const YAML::Node& n, const std::string& p) {
    const auto& keys = csv_sink_keys();
    CsvSinkConfig s;
    r.check_keys(n, p, keys);
    s.path = read_sink_path(r, n, p);
    s.columns = read_sink_columns(r, n, p);
    r.read(n, p, keys.key("each"), s.each);
    return s;
}

}  // namespace prefsync::connectors
