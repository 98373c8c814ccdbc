#pragma once
// A CSV file as a Source: header (or configured column names), rows with "path:line"
// origins, and a reject for every record that is malformed, has the wrong number of fields
// or is not valid UTF-8.
#include <cstdint>
#include <fstream>
#include <memory>
#include <optional>

#include "connectors/csv/csv_config.hpp"
#include "connectors/csv/csv_reader.hpp"
#include "connectors/source.hpp"

namespace prefsync::connectors {

// How long until a file last modified at `modified_ms` will have been quiet for `settle_ms`,
// at `now_ms` (all wall-clock milliseconds, as file times are): 0 once it has. A time a little
// ahead of the clock (another machine's, on a share) counts as a write now; one more than
// kSettleClockSkewMs ahead cannot be judged, and the file is read.
std::int64_t settle_remaining(std::int64_t modified_ms, std::int64_t now_ms, std::int64_t settle_ms);
// A modification time further ahead of our clock than this is a wrong clock, not a write.
inline constexpr std::int64_t kSettleClockSkewMs = 60'000;

class CsvSource final : public Source {
public:
    // Opens the file and reads the header. Throws SourceError; given `now_ms` (the wall
    // clock, ms since the epoch), SourceUnsettledError for a regular file modified less than
    // config.settle before it, whose read would find a premature end if it is still being
    // written (the check is of the file as opened: what the read then sees is that version).
    explicit CsvSource(const CsvSourceConfig& config, std::optional<std::int64_t> now_ms = std::nullopt);
    // For tests: reads from a stream already open; `name` is used in origins.
    CsvSource(std::unique_ptr<std::istream> in, std::string name, const CsvSourceConfig& config);

    const std::vector<std::string>& columns() const override { return columns_; }
    bool next_batch(std::vector<Row>& rows, std::size_t max_rows) override;
    std::string describe() const override { return "csv " + name_; }
    std::string end_warning() const override;

private:
    void read_header(const CsvSourceConfig& config);
    std::string origin(std::size_t line) const;  // "path:line"

    std::unique_ptr<std::istream> in_;
    std::string name_;
    CsvReader reader_;
    CsvRecord record_;
    std::vector<std::string> columns_;
    std::size_t unterminated_line_ = 0;  // the line of a record the input ended in without a line end
};

}  // namespace prefsync::connectors
