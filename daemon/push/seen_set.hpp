#pragma once
// The identities a push run has read, as 64-bit hashes, in memory that does not grow with the
// source: a 10,000,000-row file would otherwise hold ~180 MB of hash set (measured: 228 MB
// RSS against 50 MB for 1,000,000 rows), and a 100,000,000-row backfill would outgrow the
// unit's MemoryMax.
//
// Design constraints:
// - Up to `spill_at` hashes live in a hash set (fewer: once it holds half of them, it spills
//   where it would otherwise double its table, since the doubling holds old and new table at
//   once: at the default, 8 MiB of slots instead of 16 plus the 8 being copied from); beyond
//   that they are sorted and written to
//   an unnamed temporary file next to the journal (not /tmp: often a tmpfs, i.e. memory
//   charged to the service), and the file's every 512th hash is kept as an index, so a look-up
//   on disk is one 4 KiB read. Runs of files merge when a newer one grows as large as an
//   older one, so there are O(log n) of them.
// - Files are gone when the set is: O_TMPFILE, so a crash leaves nothing (where a filesystem
//   lacks it, a `.prefsync-seen-*` file unlinked at once: only a crash between the two
//   leaves it). Disk: 8 bytes per identity, 16 at the peak of a merge.
// - A write or read error throws std::system_error naming the directory: the run stops
//   (exit 3) rather than take an unread identity for a new or a missing one.
#include <boost/unordered/unordered_flat_set.hpp>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace prefsync::push {

class SeenSet {
public:
    explicit SeenSet(std::string spill_dir, std::size_t spill_at = std::size_t{1} << 20);
    SeenSet(const SeenSet&) = delete;
    SeenSet& operator=(const SeenSet&) = delete;

    // True when `hash` is new.
    bool insert(std::uint64_t hash);
    bool contains(std::uint64_t hash) const;
    std::size_t size() const { return size_; }
    std::size_t files() const { return runs_.size(); }

private:
    // A file descriptor closed exactly once, whatever throws.
    class Fd {
    public:
        explicit Fd(int fd = -1) : fd_(fd) {}
        Fd(Fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
        Fd& operator=(Fd&& o) noexcept {
            if (this != &o) {
                reset();
                fd_ = std::exchange(o.fd_, -1);
            }
            return *this;
        }
        ~Fd() { reset(); }
        int get() const { return fd_; }
        void reset();

    private:
        int fd_;
    };
    struct Run {
        Fd fd;
        std::size_t count = 0;
        std::vector<std::uint64_t> index;  // the first hash of every block
    };
    bool in_run(const Run& run, std::uint64_t hash) const;
    bool full() const;
    void spill();
    Run write_run(const std::vector<std::uint64_t>& sorted) const;
    Run merge(Run& older, Run& newer) const;
    Fd open_file() const;
    [[noreturn]] void fail(const std::string& what) const;

    std::string dir_;
    std::size_t spill_at_;
    std::size_t size_ = 0;
    boost::unordered_flat_set<std::uint64_t> memory_;
    std::vector<Run> runs_;  // oldest (largest) first
};

}  // namespace prefsync::push
