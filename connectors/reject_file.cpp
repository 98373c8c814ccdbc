#include "connectors/reject_file.hpp"

#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <filesystem>

namespace prefsync::connectors {

RejectFile::RejectFile(std::string path, std::string job)
    : path_(std::move(path)), job_(std::move(job)) {}

void RejectFile::write(const std::string& origin, const std::string& why, const std::string& raw) {
    if (!file_) {
        std::error_code ec;
        auto dir = std::filesystem::path(path_).parent_path();
        if (!dir.empty()) std::filesystem::create_directories(dir, ec);
        file_.reset(std::fopen(path_.c_str(), "ab"));
        if (!file_)
            throw SourceError("cannot write the reject file " + path_ + ": " + std::strerror(errno));
        auto now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
        std::tm utc{};
        gmtime_r(&now, &utc);
        char stamp[32];
        std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", &utc);
        std::fprintf(file_.get(), "# prefsync rejects: job=%s run=%s\n", job_.c_str(), stamp);
    }
    std::string reason = why;
    for (auto& c : reason)
        if (c == '"' || c == '\n' || c == '\r') c = '\'';
    std::fprintf(file_.get(), "--- %s reason=\"%s\" bytes=%zu\n", origin.c_str(),
                 reason.c_str(), raw.size());
    std::fwrite(raw.data(), 1, raw.size(), file_.get());
    std::fputc('\n', file_.get());
    if (std::ferror(file_.get())) throw SourceError("cannot write the reject file " + path_);
    ++count_;
}

void RejectFile::flush() {
    if (file_ && std::fflush(file_.get()) != 0)
        throw SourceError("cannot write the reject file " + path_ + ": " + std::strerror(errno));
}

}  // namespace prefsync::connectors
