#include "daemon/push/seen_set.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <system_error>

namespace prefsync::push {
namespace {

constexpr std::size_t kBlock = 512;  // hashes per indexed block: 4 KiB, one read
constexpr std::size_t kBuffer = 1 << 16;

// Reads exactly `count` hashes at hash `at` of a file; false (errno set) when it cannot.
bool read_hashes(int fd, std::uint64_t* out, std::size_t count, std::size_t at) {
    auto bytes = count * sizeof(std::uint64_t);
    auto* p = reinterpret_cast<char*>(out);
    for (std::size_t done = 0; done < bytes;) {
        auto n = ::pread(fd, p + done, bytes - done, static_cast<off_t>(at * sizeof(std::uint64_t) + done));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            if (n == 0) errno = EIO;
            return false;
        }
        done += static_cast<std::size_t>(n);
    }
    return true;
}

// Sequential reads of a run's hashes, a buffer at a time.
class RunReader {
public:
    RunReader(int fd, std::size_t count) : fd_(fd), left_(count) {}
    // False at the end, or with `failed` set (and errno) when a read failed.
    bool next(std::uint64_t& out, bool& failed) {
        if (pos_ == buffer_.size()) {
            if (left_ == 0) return false;
            buffer_.resize(std::min(left_, kBuffer));
            if (!read_hashes(fd_, buffer_.data(), buffer_.size(), next_)) {
                failed = true;
                return false;
            }
            next_ += buffer_.size();
            left_ -= buffer_.size();
            pos_ = 0;
        }
        out = buffer_[pos_++];
        return true;
    }

private:
    int fd_;
    std::size_t left_, next_ = 0, pos_ = 0;
    std::vector<std::uint64_t> buffer_;
};

// Buffered writes of sorted hashes, indexing the first of every block.
class RunWriter {
public:
    RunWriter(int fd, std::vector<std::uint64_t>& index) : fd_(fd), index_(index) { buffer_.reserve(kBuffer); }
    bool add(std::uint64_t hash) {
        if (count_ % kBlock == 0) index_.push_back(hash);
        ++count_;
        buffer_.push_back(hash);
        return buffer_.size() < kBuffer || flush();
    }
    bool flush() {
        auto bytes = buffer_.size() * sizeof(std::uint64_t);
        const auto* p = reinterpret_cast<const char*>(buffer_.data());
        for (std::size_t done = 0; done < bytes;) {
            auto n = ::pwrite(fd_, p + done, bytes - done, static_cast<off_t>(offset_ + done));
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) {
                if (n == 0) errno = EIO;
                return false;
            }
            done += static_cast<std::size_t>(n);
        }
        offset_ += bytes;
        buffer_.clear();
        return true;
    }
    std::size_t count() const { return count_; }

private:
    int fd_;
    std::vector<std::uint64_t>& index_;
    std::vector<std::uint64_t> buffer_;
    std::size_t count_ = 0, offset_ = 0;
};

}  // namespace

SeenSet::SeenSet(std::string spill_dir, std::size_t spill_at)
    : dir_(spill_dir.empty() ? "." : std::move(spill_dir)), spill_at_(std::max<std::size_t>(spill_at, 1)) {}

void SeenSet::Fd::reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
}

bool SeenSet::insert(std::uint64_t hash) {
    if (runs_.empty() && !full()) {
        // Nothing on disk and room left: one hash-set operation, as before spilling existed.
        bool fresh = memory_.insert(hash).second;
        size_ += fresh ? 1 : 0;
        return fresh;
    }
    if (contains(hash)) return false;
    // Spilled before the insert: when the spill fails, the hash is not taken as seen.
    if (full()) spill();
    memory_.insert(hash);
    ++size_;
    return true;
}

bool SeenSet::full() const {
    auto n = memory_.size();
    return n > 0 && (n >= spill_at_ || (n >= memory_.max_load() && n >= spill_at_ / 2));
}

bool SeenSet::contains(std::uint64_t hash) const {
    if (memory_.contains(hash)) return true;
    return std::any_of(runs_.begin(), runs_.end(), [&](const Run& r) { return in_run(r, hash); });
}

bool SeenSet::in_run(const Run& run, std::uint64_t hash) const {
    auto it = std::upper_bound(run.index.begin(), run.index.end(), hash);
    if (it == run.index.begin()) return false;
    auto block = static_cast<std::size_t>(it - run.index.begin()) - 1;
    auto n = std::min(kBlock, run.count - block * kBlock);
    std::uint64_t keys[kBlock];
    if (!read_hashes(run.fd.get(), keys, n, block * kBlock)) fail("read");
    return std::binary_search(keys, keys + n, hash);
}

void SeenSet::spill() {
    std::vector<std::uint64_t> sorted(memory_.begin(), memory_.end());
    std::sort(sorted.begin(), sorted.end());
    runs_.push_back(write_run(sorted));
    memory_.clear();  // keeps its buckets: the next batch of hashes fits without growing
    // A binary counter of sizes: equal neighbours merge, so files stay O(log n).
    while (runs_.size() >= 2 && runs_[runs_.size() - 2].count <= runs_.back().count) {
        auto merged = merge(runs_[runs_.size() - 2], runs_.back());
        runs_.pop_back();
        runs_.back() = std::move(merged);
    }
}

SeenSet::Run SeenSet::write_run(const std::vector<std::uint64_t>& sorted) const {
    Run run;
    run.fd = open_file();
    RunWriter w(run.fd.get(), run.index);
    bool ok = true;
    for (auto h : sorted)
        if (!(ok = w.add(h))) break;
    if (!ok || !w.flush()) fail("write");
    run.count = w.count();
    return run;
}

SeenSet::Run SeenSet::merge(Run& older, Run& newer) const {
    Run out;
    out.fd = open_file();
    RunWriter w(out.fd.get(), out.index);
    RunReader a(older.fd.get(), older.count), b(newer.fd.get(), newer.count);
    bool failed = false, ok = true;
    std::uint64_t x = 0, y = 0;
    bool has_x = a.next(x, failed), has_y = b.next(y, failed);
    while (ok && !failed && (has_x || has_y)) {
        if (has_x && (!has_y || x < y)) {
            ok = w.add(x);
            has_x = a.next(x, failed);
        } else {
            ok = w.add(y);
            has_y = b.next(y, failed);
        }
    }
    if (failed || !ok || !w.flush()) fail(failed ? "read" : "write");
    out.count = w.count();
    return out;
}

SeenSet::Fd SeenSet::open_file() const {
    int fd = ::open(dir_.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd >= 0) return Fd(fd);
    if (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL) fail("create");
    // A filesystem without O_TMPFILE: a named file, unlinked at once.
    std::string name = dir_ + "/.prefsync-seen-XXXXXX";
    fd = ::mkostemp(name.data(), O_CLOEXEC);
    if (fd < 0) fail("create");
    ::unlink(name.c_str());
    return Fd(fd);
}

void SeenSet::fail(const std::string& what) const {
    const int error = errno;  // before anything below can change it
    throw std::system_error(
        error, std::generic_category(),
        "the identities read so far spill to a temporary file in " + dir_ + ": " + what + " failed");
}

}  // namespace prefsync::push
