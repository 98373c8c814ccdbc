// The one exception ladder: every kind a command can throw → its exit code and message.
#include "daemon/cli/errors.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "config/config.hpp"
#include "connectors/source.hpp"
#include "connectors/table_sink.hpp"
#include "daemon/cli/cli.hpp"
#include "daemon/journal/database.hpp"

namespace prefsync::cli {
namespace {

using ::testing::HasSubstr;

template <class E>
FailureReport of(E e, const std::string& job = "crm") {
    return describe_failure(std::make_exception_ptr(e), job);
}

TEST(ErrorLadder, EachKindHasItsExitCodeAndNamesWhereItComesFrom) {
    config::ConfigError config({{config::SourcePos{"p.yaml", 3, 4}, "jobs.crm.source.path", "no such file"},
                                {config::SourcePos{"p.yaml", 5, 6}, "api.token_env", "not set"}});
    auto c = of(config);
    EXPECT_EQ(c.exit_code, kUsage);
    EXPECT_EQ(c.message(),
              "error: p.yaml:3:4: jobs.crm.source.path: no such file\nerror: p.yaml:5:6: api.token_env: not set");

    auto s = of(connectors::SourceError("crm.csv: cannot open: No such file or directory"));
    EXPECT_EQ(s.exit_code, kFatal);
    EXPECT_EQ(s.message(), "error: jobs.crm.source: crm.csv: cannot open: No such file or directory");
    auto named = of(connectors::SourceError("jobs.other.identity: no column \"id\""));
    EXPECT_EQ(named.message(), "error: jobs.other.identity: no column \"id\"") << "already says where";

    auto k = of(connectors::SinkError("cannot open /out/p.csv.partial: Permission denied"));
    EXPECT_EQ(k.exit_code, kFatal);
    EXPECT_THAT(k.message(), HasSubstr("jobs.crm.sink: cannot open"));

    auto j = of(journal::JournalError("journal /var/lib/prefsync/journal.db: write: database or disk is full"));
    EXPECT_EQ(j.exit_code, kFatal);
    EXPECT_THAT(j.message(), HasSubstr("journal /var/lib/prefsync/journal.db"));
    EXPECT_THAT(j.message(), HasSubstr("nothing recorded so far is lost"));

    EXPECT_EQ(of(std::bad_alloc()).exit_code, kFatal);
    EXPECT_EQ(of(std::runtime_error("TLS: cannot read ca_file")).message(), "error: TLS: cannot read ca_file");
    EXPECT_EQ(describe_failure(std::make_exception_ptr(42), "").exit_code, kFatal);
}

TEST(ErrorLadder, GuardedReturnsTheBodysCodeOrTheFailuresCode) {
    EXPECT_EQ(guarded("crm", [] { return 2; }), 2);
    EXPECT_EQ(guarded("crm", []() -> int { throw connectors::SourceError("gone"); }), kFatal);
    EXPECT_EQ(guarded("crm", []() -> int { throw config::ConfigError({}); }), kUsage);
}

}  // namespace
}  // namespace prefsync::cli
