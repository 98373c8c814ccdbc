#include "daemon/pull/pull_output.hpp"

#include <simdjson.h>

#include <sys/stat.h>
#include <unistd.h>

#include "connectors/csv/csv_writer.hpp"
#include "connectors/file_sink.hpp"
#include "connectors/table_sink.hpp"
#include "daemon/pull/flattener.hpp"

namespace prefsync::pull {
namespace {

// Outputs to a file: durable on commit, renamed from .partial on finish.
class FileOutput : public Output {
public:
    FileOutput(const std::string& path, std::int64_t offset) : file_(path, offset) {}
    std::int64_t commit() override { return file_.sync(); }
    std::int64_t begin_commit() override { return file_.begin_sync(); }
    bool commit_done(bool wait) override { return file_.sync_done(wait); }
    void publish() override { file_.finish(); }

protected:
    connectors::FileSink file_;
};

class JsonlOutput final : public FileOutput {
public:
    JsonlOutput(const std::string& path, std::int64_t offset) : FileOutput(path, offset) {}
    std::string write(std::string_view json) override {
        // One line per profile whatever the server's formatting: minified.
        line_.resize(json.size() + 1);
        std::size_t length = 0;
        if (simdjson::minify(json.data(), json.size(), line_.data(), length) != simdjson::SUCCESS) {
            line_.assign(json);
            length = json.size();
        }
        line_.resize(length);
        line_ += '\n';
        file_.append(line_);
        ++rows;
        return "";
    }

private:
    std::string line_;
};

class CsvOutput final : public FileOutput {
public:
    CsvOutput(const config::SinkConfig& sink, std::int64_t offset)
        : FileOutput(sink.path(), offset), flattener_(Flattener::compile(sink)) {
        if (offset == 0) {
            std::string header;
            for (const auto& name : flattener_.column_names()) {
                if (!header.empty()) header += ',';
                connectors::append_csv_field(header, name);
            }
            file_.append(header + "\r\n");
        }
    }
    std::string write(std::string_view json) override {
        out_.clear();
        flattener_.rows(json, out_);
        for (const auto& row : out_) {
            line_.clear();
            for (std::size_t i = 0; i < row.size(); ++i) {
                if (i) line_ += ',';
                if (row[i]) connectors::append_csv_field(line_, *row[i]);
            }
            line_ += "\r\n";
            file_.append(line_);
            ++rows;
        }
        return "";
    }

private:
    Flattener flattener_;
    std::vector<OutputRow> out_;
    std::string line_;
};

class TableOutput final : public Output {
public:
    explicit TableOutput(const config::SinkConfig& sink) : flattener_(Flattener::compile(sink)) {
        connectors::TableLayout layout;
        for (std::size_t i = 0; i < sink.columns().size(); ++i) {
            const auto& c = sink.columns()[i];
            layout.columns.push_back(
                {c.name, c.path == "ProfileId" ? connectors::ColumnType::Integer : connectors::ColumnType::Text});
            if (c.name == sink.key()) {
                layout.key = i;
                no_key_ = "key column \"" + c.name + "\" (" + c.path + ") has no value in this answer";
            }
        }
        key_ = layout.key;
        table_ = connectors::open_table_sink(sink, layout);
    }
    std::string write(std::string_view json) override {
        out_.clear();
        flattener_.rows(json, out_);
        // A row without its key is never upserted: SQLite would invent a rowid for an
        // INTEGER key (a new row every run) or keep NULLs that never conflict, PostgreSQL
        // refuses it and stops the run. None of the profile's rows is written then.
        for (const auto& row : out_)
            if (key_ >= row.size() || !row[key_] || row[key_]->empty()) return no_key_;
        for (const auto& row : out_) {
            if (auto problem = table_->upsert(row); !problem.empty()) return problem;
            ++rows;
        }
        return "";
    }
    std::int64_t commit() override {
        table_->commit();
        return 0;
    }
    void publish() override {}

private:
    Flattener flattener_;
    std::unique_ptr<connectors::TableSink> table_;
    std::vector<OutputRow> out_;
    std::size_t key_ = 0;
    std::string no_key_;
};

}  // namespace

std::unique_ptr<Output> open_output(const config::SinkConfig& sink, std::int64_t offset) {
    if (sink.type() == "jsonl") return std::make_unique<JsonlOutput>(sink.path(), offset);
    if (sink.type() == "csv") return std::make_unique<CsvOutput>(sink, offset);
    return std::make_unique<TableOutput>(sink);
}

std::string describe_output(const config::SinkConfig& sink) {
    if (sink.type() == "postgres") return "postgres table " + sink.table();
    if (sink.type() == "sqlite") return sink.path() + " table " + sink.table();
    return sink.path();
}

bool can_resume(const config::SinkConfig& sink, std::int64_t offset) {
    auto partial = partial_path(sink);
    if (partial.empty()) return true;
    struct stat st {};
    if (::stat(partial.c_str(), &st) != 0) return offset == 0;
    return st.st_size >= offset;
}

std::string partial_path(const config::SinkConfig& sink) {
    if (sink.type() != "jsonl" && sink.type() != "csv") return "";
    return sink.path() + ".partial";
}

std::string discard_partial(const std::string& partial_path) {
    if (partial_path.empty()) return "the rows it upserted stay in its table";
    // Never renamed to its final name: half an export in a layout nobody asked for any more.
    ::unlink(partial_path.c_str());
    return "its partial output " + partial_path + " is discarded";
}

}  // namespace prefsync::pull
