// End to end: the commands that only look at the journal (status, failures, plan, explain)
// read it without writing to it. Root (as CI runs) may write any file, so permissions alone
// prove nothing here: each test checks that no byte of the journal's files changed and no
// file was added, and, run as root, one runs the binary as `nobody` against a journal and a
// directory that user may only read.
#include <fcntl.h>
#include <grp.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <pwd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "daemon/journal/journal.hpp"
#include "tests/support/push_workspace.hpp"
#include "tests/support/run.hpp"
#include "tests/support/temp_dir.hpp"

namespace prefsync {
namespace {

using ::testing::HasSubstr;
using Workspace = testing::PushWorkspace;

// Every file of the journal's directory with a hash of its bytes (a directory as 0).
std::map<std::string, std::size_t> journal_files(const Workspace& w) {
    std::map<std::string, std::size_t> out;
    for (const auto& e : std::filesystem::directory_iterator(w.dir.file("state")))
        out[e.path().filename().string()] =
            e.is_regular_file() ? std::hash<std::string>{}(testing::read_file(e.path().string())) : 0;
    return out;
}

// 20 rows synced, every 10th refused by the API (an invalid email): dead letters to list.
void sync_with_failures(Workspace& w) {
    auto text = testing::read_file(w.csv);
    std::string out;
    std::size_t line = 0, at = 0;
    for (std::size_t end; (end = text.find('\n', at)) != std::string::npos; at = end + 1, ++line) {
        auto row = text.substr(at, end - at + 1);
        if (line > 0 && line % 10 == 0 && row.find('@') != std::string::npos) row[row.find('@')] = '#';
        out += row;
    }
    w.dir.write("profiles.csv", out);
    ASSERT_EQ(w.prefsync("sync crm").exit_code, 2);
}

const std::vector<std::string> kInspections = {"status", "status crm --json", "failures crm", "plan crm --json",
                                               "explain crm C00000003"};

TEST(Inspection, StatusFailuresPlanAndExplainLeaveEveryByteOfTheJournalAsItWas) {
    Workspace w(20);
    sync_with_failures(w);
    auto idle = journal_files(w);
    ASSERT_EQ(idle.count("journal.db-wal") + idle.count("journal.db-shm"), 0u) << "no writer: no -wal, no -shm";
    for (const auto& args : kInspections) {
        auto r = w.prefsync(args);
        EXPECT_EQ(r.exit_code, 0) << args << ": " << r.err;
    }
    EXPECT_THAT(w.prefsync("failures crm").out, HasSubstr("400"));
    EXPECT_EQ(journal_files(w), idle) << "nothing written, no -wal or -shm created";

    // Beside a writer that has the journal open (its -wal and -shm there), as the daemon has.
    journal::Journal writer(w.dir.file("state/journal.db"));
    auto live = journal_files(w);
    ASSERT_EQ(live.count("journal.db-shm"), 1u);
    for (const auto& args : kInspections) {
        auto r = w.prefsync(args);
        EXPECT_EQ(r.exit_code, 0) << args << ": " << r.err;
    }
    EXPECT_EQ(journal_files(w), live) << "not the shared files either";
}

TEST(Inspection, AJournalOfAnOlderSchemaIsNamedWithWhatToDoAndLeftAsItWas) {
    Workspace w(3);
    ASSERT_EQ(w.prefsync("sync crm").exit_code, 0);
    auto path = w.dir.file("state/journal.db");
    {
        sqlite3* db = nullptr;
        ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
        ASSERT_EQ(sqlite3_exec(db, "PRAGMA user_version = 6", nullptr, nullptr, nullptr), SQLITE_OK);
        sqlite3_close(db);
    }
    auto before = journal_files(w);
    for (const char* args : {"status", "failures crm", "plan crm"}) {
        auto r = w.prefsync(args);
        EXPECT_EQ(r.exit_code, 1) << args;
        EXPECT_THAT(r.err, HasSubstr("journal.db: journal schema 6 is older than this prefsync's 14; run a writing "
                                     "command (e.g. `prefsync sync`) once"))
            << args;
    }
    EXPECT_EQ(journal_files(w), before) << "not migrated";
}

TEST(Inspection, StatusOfAJournalNotYetCreatedShowsNothingRecordedAndCreatesNothing) {
    Workspace w(3);
    auto r = w.prefsync("status crm");
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_THAT(r.out, HasSubstr("crm: queued 0, inflight 0, retry 0, waiting 0, failed 0"));
    // A wrong journal.path reads the same: a monitoring agent is told, on stderr.
    EXPECT_THAT(r.err, HasSubstr("Nothing is recorded in the journal"));
    EXPECT_THAT(r.err, HasSubstr("check journal.path"));
    EXPECT_FALSE(std::filesystem::exists(w.dir.file("state"))) << "neither the journal nor its directory";
}

TEST(Inspection, AJournalThatCannotBeReadIsNamedWithWhatToDo) {
    Workspace w(3);
    std::filesystem::create_directories(w.dir.file("state/journal.db"));  // a directory in its place
    auto r = w.prefsync("status crm");
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_THAT(r.err, HasSubstr("journal.db: cannot read it"));
}

// Runs the binary with `args` as `nobody` (a forked child gives up root before exec);
// nullopt where that cannot be done here. The child refuses to run (exit 78) if it could
// write `journal` or its directory: the test would then prove nothing.
std::optional<testing::RunResult> run_as_nobody(const Workspace& w, const std::string& args,
                                                const std::string& journal) {
    const passwd* pw = ::getpwnam("nobody");
    if (!pw) return std::nullopt;
    uid_t uid = pw->pw_uid;
    gid_t gid = pw->pw_gid;
    testing::TempDir out_dir;
    auto out_path = out_dir.file("out"), err_path = out_dir.file("err");
    int out = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    int err = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    int in = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    std::vector<std::string> words = {PREFSYNC_BINARY, "-c", w.config};
    for (std::size_t at = 0; at < args.size();) {
        auto end = args.find(' ', at);
        if (end == std::string::npos) end = args.size();
        words.push_back(args.substr(at, end - at));
        at = end + 1;
    }
    std::vector<char*> argv;
    for (auto& word : words) argv.push_back(word.data());
    argv.push_back(nullptr);
    char path_env[] = "PATH=/usr/bin:/bin";
    char* envp[] = {path_env, nullptr};
    auto journal_dir = std::filesystem::path(journal).parent_path().string();
    pid_t pid = ::fork();
    if (pid == 0) {
        // Only system calls between fork and exec (the parent has threads); each for this
        // thread alone, which is all there is in the child.
        ::dup2(in, 0);
        ::dup2(out, 1);
        ::dup2(err, 2);
        if (::syscall(SYS_setgroups, 0, nullptr) != 0 || ::syscall(SYS_setresgid, gid, gid, gid) != 0 ||
            ::syscall(SYS_setresuid, uid, uid, uid) != 0)
            ::_exit(77);
        if (::access(journal.c_str(), W_OK) == 0 || ::access(journal_dir.c_str(), W_OK) == 0) ::_exit(78);
        // The binary or the config on a path nobody cannot reach: not for this test to change.
        if (::access(argv[0], X_OK) != 0 || ::access(words[2].c_str(), R_OK) != 0) ::_exit(79);
        ::execve(argv[0], argv.data(), envp);
        ::_exit(127);
    }
    ::close(out);
    ::close(err);
    ::close(in);
    int status = 0;
    ::waitpid(pid, &status, 0);
    testing::RunResult r;
    r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    if (r.exit_code == 77 || r.exit_code == 79) return std::nullopt;
    r.out = testing::read_file(out_path);
    r.err = testing::read_file(err_path);
    return r;
}

TEST(Inspection, AUserWhoMayOnlyReadTheJournalAndItsDirectoryCanInspectIt) {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root to run the binary as another user";
    Workspace w(20);
    sync_with_failures(w);
    auto journal = w.dir.file("state/journal.db");
    // Root's files that others may read, in directories others may not write.
    for (const auto& dir : {w.dir.path(), w.dir.file("state")})
        std::filesystem::permissions(dir, std::filesystem::perms(0755));
    for (const auto& file : {journal, w.config, w.csv})
        std::filesystem::permissions(file, std::filesystem::perms(0644));
    auto check = [&](const char* when) {
        for (const auto& args : kInspections) {
            auto r = run_as_nobody(w, args, journal);
            if (!r) GTEST_SKIP() << "cannot run the binary as nobody here (or nobody cannot reach it or the config)";
            ASSERT_NE(r->exit_code, 78) << "nobody could write the journal: the test would prove nothing";
            EXPECT_EQ(r->exit_code, 0) << when << ", " << args << ": " << r->err;
            EXPECT_THAT(r->err, ::testing::Not(HasSubstr("readonly database"))) << when << ", " << args;
        }
    };
    auto idle = journal_files(w);
    check("idle journal");
    EXPECT_EQ(journal_files(w), idle);
    // A writer has it open: its -wal and -shm, created with the journal's mode, are there.
    journal::Journal writer(journal);
    auto live = journal_files(w);
    check("beside a writer");
    EXPECT_EQ(journal_files(w), live);
}

}  // namespace
}  // namespace prefsync
