#pragma once
// A CSV file as a Source: header (or configured column names), rows with "path:line"
// origins, and a reject for every record that is malformed, has the wrong number of fields
// or is not valid UTF-8.
#include <fstream>
#include <memory>

#include "connectors/csv/csv_config.hpp"
#include "connectors/csv/csv_reader.hpp"
#include "connectors/source.hpp"

namespace prefsync::connectors {

class CsvSource final : public Source {
public:
    // Opens the file and reads the header. Throws SourceError.
    explicit CsvSource(const CsvSourceConfig& config);
    // For tests: reads from a stream already open; `name` is used in origins.
    CsvSource(std::unique_ptr<std::istream> in, std::string name, const CsvSourceConfig& config);

    const std::vector<std::string>& columns() const override { return columns_; }
    bool next_batch(std::vector<Row>& rows, std::size_t max_rows) override;
    std::string describe() const override { return "csv " + name_; }

private:
    void read_header(const CsvSourceConfig& config);
    std::string origin(std::size_t line) const;  // "path:line"

    std::unique_ptr<std::istream> in_;
    std::string name_;
    CsvReader reader_;
    CsvRecord record_;
    std::vector<std::string> columns_;
};

}  // namespace prefsync::connectors
