// The Grafana dashboard and the Prometheus rules in contrib/ query only what prefsync really
// exports: the names and labels are read from a live `prefsync daemon` that has run a job
// against the emulator, not from a list that could drift from the code.
#include <gmock/gmock.h>
#include <gtest/gtest-spi.h>
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <array>
#include <boost/json.hpp>
#include <chrono>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include "tests/support/http_client.hpp"
#include "tests/support/in_process_emulator.hpp"
#include "tests/support/process.hpp"
#include "tests/support/temp_dir.hpp"

namespace prefsync {
namespace {

namespace json = boost::json;
const std::string kDashboard = PREFSYNC_SOURCE_DIR "/contrib/grafana/prefsync-dashboard.json";
const std::string kRules = PREFSYNC_SOURCE_DIR "/contrib/prometheus/prefsync-alerts.yml";

// Series names and the label names seen on each, from a Prometheus text page. Histogram
// families are listed with their _bucket/_sum/_count series even before they have data.
struct Exported {
    std::map<std::string, std::set<std::string>> labels;

    explicit Exported(const std::string& page) {
        std::istringstream in(page);
        static const std::regex type_line(R"(# TYPE (\S+) (\S+))");
        static const std::regex label_name(R"(([a-zA-Z_][a-zA-Z0-9_]*)=")");
        for (std::string line; std::getline(in, line);) {
            std::smatch m;
            if (std::regex_match(line, m, type_line)) {
                if (m[2] == "histogram")
                    for (const char* suffix : {"_bucket", "_sum", "_count"}) labels[m[1].str() + suffix];
                else
                    labels[m[1]];
                continue;
            }
            if (line.empty() || line[0] == '#') continue;
            auto name_end = line.find_first_of("{ ");
            auto& seen = labels[line.substr(0, name_end)];
            if (line[name_end] != '{') continue;
            auto text = line.substr(name_end, line.find('}') - name_end);
            for (std::sregex_iterator i(text.begin(), text.end(), label_name), end; i != end; ++i) seen.insert((*i)[1]);
        }
    }
    bool has_series_with(const std::string& name, const std::string& label) const {
        auto it = labels.find(name);
        return it != labels.end() && it->second.count(label) > 0;
    }
};

// Where an expression came from, for the failure message.
struct Expr {
    std::string where, text;
};

void collect_dashboard_exprs(const json::value& v, const std::string& path, std::vector<Expr>& out) {
    if (v.is_object()) {
        for (const auto& [key, child] : v.as_object()) {
            auto here = path + "." + std::string(key);
            if ((key == "expr" || key == "query" || key == "definition") && child.is_string())
                out.push_back({here, std::string(child.as_string())});
            else
                collect_dashboard_exprs(child, here, out);
        }
    } else if (v.is_array()) {
        const auto& a = v.as_array();
        for (std::size_t i = 0; i < a.size(); ++i)
            collect_dashboard_exprs(a[i], path + "[" + std::to_string(i) + "]", out);
    }
}

std::vector<Expr> dashboard_exprs() {
    std::vector<Expr> out;
    collect_dashboard_exprs(json::parse(testing::read_file(kDashboard)), "dashboard", out);
    return out;
}

std::vector<Expr> rule_exprs() {
    std::vector<Expr> out;
    auto rules = YAML::LoadFile(kRules);
    for (const auto& group : rules["groups"])
        for (const auto& rule : group["rules"])
            out.push_back(
                {"rules." + (rule["alert"] ? rule["alert"].as<std::string>() : rule["record"].as<std::string>()),
                 rule["expr"].as<std::string>()});
    return out;
}

class ContribMetrics : public ::testing::Test {
protected:
    // Started once: a daemon whose job has run, so every labelled series exists.
    static void SetUpTestSuite() {
        dir_ = new testing::TempDir;
        emulator_ = new testing::InProcessEmulator;
        dir_->write("crm.csv", "customer_id,first_name\nC1,Ann\nC2,Bob\n");
        auto config = dir_->write(
            "prefsync.yaml", "api: { base_url: \"" + emulator_->base_url() +
                                 "\", client_id: \"12345\", token_env: PREFSYNC_TOKEN }\n"
                                 "journal: { path: state/journal.db }\n"
                                 "daemon: { metrics_listen: \"127.0.0.1:0\", verify: true, verify_interval: 1s }\n"
                                 "jobs:\n  crm:\n    schedule: every 1s\n    source: { type: csv, path: crm.csv }\n"
                                 "    identity: { alternate_id_type: CRMID, column: customer_id }\n"
                                 "    mapping: { CustomerName.FirstName: first_name }\n");
        setenv("PREFSYNC_TOKEN", "emulator-token", 1);
        daemon_ = new testing::ChildProcess({PREFSYNC_BINARY, "-c", config, "daemon"}, dir_->file("daemon.log"));
        auto line = daemon_->read_line();
        ASSERT_NE(line.rfind(':'), std::string::npos)
            << "no metrics address: " << testing::read_file(dir_->file("daemon.log"));
        auto port = static_cast<unsigned short>(std::stoi(line.substr(line.rfind(':') + 1)));
        // Polls an observable condition (a finished run in /metrics), bounded.
        auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
        testing::HttpClient client(port);
        do {
            page_ = client.get("/metrics").body;
            if (page_.find("prefsync_runs_total{") != std::string::npos) break;
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        } while (std::chrono::steady_clock::now() < deadline);
        ASSERT_THAT(page_, ::testing::HasSubstr("prefsync_runs_total{"))
            << testing::read_file(dir_->file("daemon.log"));
    }
    static void TearDownTestSuite() {
        delete daemon_;
        delete emulator_;
        delete dir_;
    }

    // Every prefsync_* name in `exprs` is exported, and every label a selector or a
    // `by (...)` names is one prefsync puts on that metric (or the target's `instance`).
    static void expect_known(const std::vector<Expr>& exprs) {
        Exported exported(page_);
        static const std::regex selector(R"((prefsync_[a-zA-Z0-9_]*)\s*(\{([^}]*)\})?)");
        static const std::regex matcher(R"(([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=))");
        static const std::regex grouping(R"(\b(by|on|without|ignoring)\s*\(([^)]*)\))");
        std::set<std::string> all_labels{"instance"};
        for (const auto& [name, labels] : exported.labels) all_labels.insert(labels.begin(), labels.end());
        for (const auto& e : exprs) {
            for (std::sregex_iterator i(e.text.begin(), e.text.end(), selector), end; i != end; ++i) {
                auto name = (*i)[1].str();
                EXPECT_TRUE(exported.labels.count(name)) << e.where << ": prefsync does not export " << name;
                auto matchers = (*i)[3].str();
                for (std::sregex_iterator j(matchers.begin(), matchers.end(), matcher); j != end; ++j) {
                    auto label = (*j)[1].str();
                    EXPECT_TRUE(label == "instance" || exported.has_series_with(name, label))
                        << e.where << ": " << name << " has no label " << label;
                }
            }
            for (std::sregex_iterator i(e.text.begin(), e.text.end(), grouping), end; i != end; ++i) {
                std::stringstream labels((*i)[2].str());
                for (std::string label; std::getline(labels, label, ',');) {
                    label.erase(0, label.find_first_not_of(' '));
                    label.erase(label.find_last_not_of(' ') + 1);
                    EXPECT_TRUE(all_labels.count(label)) << e.where << ": no prefsync metric has the label " << label;
                }
            }
        }
    }

    static testing::TempDir* dir_;
    static testing::InProcessEmulator* emulator_;
    static testing::ChildProcess* daemon_;
    static std::string page_;
};
testing::TempDir* ContribMetrics::dir_ = nullptr;
testing::InProcessEmulator* ContribMetrics::emulator_ = nullptr;
testing::ChildProcess* ContribMetrics::daemon_ = nullptr;
std::string ContribMetrics::page_;

TEST_F(ContribMetrics, TheDashboardQueriesOnlyExportedMetricsAndLabels) {
    auto exprs = dashboard_exprs();
    ASSERT_GT(exprs.size(), 10u);
    expect_known(exprs);
}

TEST_F(ContribMetrics, TheAlertRulesQueryOnlyExportedMetricsAndLabels) {
    auto exprs = rule_exprs();
    ASSERT_EQ(exprs.size(), 5u);
    expect_known(exprs);
}

// The checker itself: a misspelt name and a label the metric lacks are both caught.
TEST_F(ContribMetrics, TheCheckerCatchesAWrongNameAndAWrongLabel) {
    ::testing::TestPartResultArray failures;
    {
        ::testing::ScopedFakeTestPartResultReporter reporter(
            ::testing::ScopedFakeTestPartResultReporter::INTERCEPT_ONLY_CURRENT_THREAD, &failures);
        expect_known({{"t1", "rate(prefsync_request_total[5m])"},
                      {"t2", "prefsync_rows{status=\"failed\"}"},
                      {"t3", "sum by (stat) (prefsync_requests_total)"}});
    }
    ASSERT_EQ(failures.size(), 3);
    EXPECT_THAT(failures.GetTestPartResult(0).message(),
                ::testing::HasSubstr("does not export prefsync_request_total"));
    EXPECT_THAT(failures.GetTestPartResult(1).message(), ::testing::HasSubstr("prefsync_rows has no label status"));
    EXPECT_THAT(failures.GetTestPartResult(2).message(), ::testing::HasSubstr("no prefsync metric has the label stat"));
}

// The panels the dashboard exists for: throughput, latency, 429 share, rows by state, runs,
// last run, 202 → Complete; and no two panels overlap on the grid.
TEST_F(ContribMetrics, TheDashboardCoversTheOperatorsQuestionsAndItsPanelsDoNotOverlap) {
    std::string all;
    for (const auto& e : dashboard_exprs()) all += e.text + "\n";
    for (const char* needle :
         {"rate(prefsync_requests_total", "prefsync_request_duration_seconds_bucket", "status=\"429\"",
          "by (state) (prefsync_rows", "prefsync_runs_total", "prefsync_last_run_end_timestamp_seconds",
          "prefsync_accepted_to_complete_seconds_bucket"})
        EXPECT_THAT(all, ::testing::HasSubstr(needle));

    auto dashboard = json::parse(testing::read_file(kDashboard)).as_object();
    std::vector<std::array<std::int64_t, 4>> boxes;
    for (const auto& p : dashboard.at("panels").as_array()) {
        const auto& g = p.at("gridPos").as_object();
        std::array<std::int64_t, 4> box{g.at("x").as_int64(), g.at("y").as_int64(), g.at("w").as_int64(),
                                        g.at("h").as_int64()};
        EXPECT_LE(box[0] + box[2], 24) << p.at("title");
        for (const auto& b : boxes)
            EXPECT_FALSE(box[0] < b[0] + b[2] && b[0] < box[0] + box[2] && box[1] < b[1] + b[3] &&
                         b[1] < box[1] + box[3])
                << p.at("title") << " overlaps another panel";
        boxes.push_back(box);
    }
}

}  // namespace
}  // namespace prefsync
