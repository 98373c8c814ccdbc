#pragma once
// One run of a job at a time, across processes (the daemon, a timer's `sync`, a hand-run
// backfill): an flock(2) on a per-job lock file beside the journal
// (<journal dir>/locks/<job>.lock). The kernel drops the lock when its holder exits, however
// it exits, so a stale lock cannot survive a crash, a reused pid or a renamed host. The
// file holds who took it, for the refusal message.
#include <string>

namespace prefsync::journal {

class JobLock {
public:
    // Tries to take the lock at once (never waits). Throws JournalError when the lock file
    // cannot be created.
    JobLock(const std::string& journal_path, const std::string& job, const std::string& owner);
    ~JobLock();
    JobLock(const JobLock&) = delete;
    JobLock& operator=(const JobLock&) = delete;

    bool held() const { return refusal_.empty(); }
    // "job crm is being run by the daemon (pid 123 on host h) since 2026-11-28T02:00:00Z; ..."
    const std::string& refusal() const { return refusal_; }

private:
    int fd_ = -1;
    std::string refusal_;
};

}  // namespace prefsync::journal
