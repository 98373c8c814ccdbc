#pragma once
// Where a pull writes what it fetched: a JSONL or CSV file (bytes durable on commit(),
// under their final name only after publish()), or an SQL table (rows committed on
// commit()). One profile in, one line (JSONL) or the sink's rows (CSV, table) out.
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "config/config.hpp"

namespace prefsync::pull {

class Output {
public:
    virtual ~Output() = default;
    // Writes the rows of one profile; "" or why it was not written (a table row without a
    // value for its key: its item fails, the run goes on).
    virtual std::string write(std::string_view profile_json) = 0;
    // Makes what was written durable; the size to journal (0 for tables).
    virtual std::int64_t commit() = 0;
    // commit() without waiting where the output can (a file's fsync, on a thread of its
    // own): the size to journal once commit_done(). Tables commit here, done at once.
    virtual std::int64_t begin_commit() { return commit(); }
    // Whether the last begin_commit() is durable, waiting for it if `wait`; throws as
    // commit() does.
    virtual bool commit_done(bool wait) {
        (void)wait;
        return true;
    }
    // The run is complete and recorded so: the output takes its final name.
    virtual void publish() = 0;
    std::int64_t rows = 0;
};

// Opens the sink of a pull job; a file sink resumes at `offset` bytes. Throws SinkError.
std::unique_ptr<Output> open_output(const config::SinkConfig& sink, std::int64_t offset);
// A file output can resume at `offset` only if its partial file holds at least that much.
bool can_resume(const config::SinkConfig& sink, std::int64_t offset);
// The file a file sink writes until the run completes; "" for a table.
std::string partial_path(const config::SinkConfig& sink);
// Removes the partial file of an unfinished run that is not resumed ("": it wrote a table,
// whose upserted rows stay); what became of its output, for the log.
std::string discard_partial(const std::string& partial_path);
// "path", or "<db> table T", for messages.
std::string describe_output(const config::SinkConfig& sink);

}  // namespace prefsync::pull
