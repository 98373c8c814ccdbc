#pragma once
// A scratch directory per test, removed afterwards.
#include <chrono>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>

namespace prefsync::testing {

class TempDir {
public:
    TempDir() {
        std::random_device rd;
        path_ =
            std::filesystem::temp_directory_path() / ("prefsync-test-" + std::to_string(rd()) + std::to_string(rd()));
        std::filesystem::create_directories(path_);
    }
    ~TempDir() {
        std::error_code ec;
        std::filesystem::remove_all(path_, ec);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;

    std::string path() const { return path_.string(); }
    std::string file(const std::string& name) const { return (path_ / name).string(); }
    // Dated an hour back: a source file modified just now is taken for one still being
    // written (a CSV source's `settle`), and a run would wait for it. A test of settling
    // dates its file itself (touch()).
    std::string write(const std::string& name, const std::string& content) const {
        auto p = file(name);
        std::ofstream(p, std::ios::binary) << content;
        touch(p, std::chrono::hours(-1));
        return p;
    }
    // Sets the modification time of `path` to now + `offset` (negative: in the past).
    static void touch(const std::string& path, std::chrono::milliseconds offset) {
        using Clock = std::filesystem::file_time_type::clock;
        std::filesystem::last_write_time(path, Clock::now() + offset);
    }

private:
    std::filesystem::path path_;
};

inline std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
}

}  // namespace prefsync::testing
