#include "daemon/push/verify_run.hpp"

#include <simdjson.h>

#include <thread>
#include <unordered_map>

#include "daemon/base/logger.hpp"
#include "daemon/push/target_guard.hpp"

namespace prefsync::push {
namespace {

// UpdateStatus of a profile read back; empty if the body has none.
std::string update_status(const std::string& body) {
    simdjson::ondemand::parser parser;
    simdjson::padded_string padded(body);
    simdjson::ondemand::document doc;
    if (parser.iterate(padded).get(doc)) return {};
    std::string_view status;
    if (doc["UpdateStatus"].get_string().get(status)) return {};
    return std::string(status);
}

// One round: every update in `todo` read once.
class VerifyRound final : public dispatch::Producer {
public:
    VerifyRound(std::vector<journal::KnownIdentity>& todo, const api::RequestBuilder& requests, VerifyReport& report)
        : todo_(todo), requests_(requests), report_(report) {}

    std::optional<dispatch::Outgoing> next(journal::Millis) override {
        if (next_ >= todo_.size()) return std::nullopt;
        auto i = next_++;
        const auto& u = todo_[i];
        auto request = u.alt_type.empty() ? requests_.get(*u.profile_id) : requests_.get(u.alt_type, u.alt_id, true);
        return dispatch::Outgoing{i, std::move(request), 0, i};
    }
    std::optional<journal::Millis> wake_at(journal::Millis) override { return std::nullopt; }
    void on_answer(dispatch::Outgoing item, const http::HttpResponse& r, const dispatch::Verdict& v) override {
        const auto& u = todo_[item.key];
        if (r.too_large && r.status >= 200 && r.status < 300) {
            // Named for the first few; the count says how many.
            if (++report_.unreadable <= 20)
                base::logger().warn("Accepted update cannot be read back",
                                    {{"identity", u.identity}, {"reason", r.error}});
            return;
        }
        if (r.transport == api::Transport::Answered && r.status == 200) {
            if (update_status(r.body) == "Complete")
                verified.push_back(u);
            else
                still.push_back(u);
        } else if (r.transport == api::Transport::Answered && r.status == 404) {
            ++report_.missing;
            base::logger().warn("Accepted update not found: the API accepted it, but it is not there",
                                {{"identity", u.identity}});
        } else if (v.outcome != api::Outcome::Fatal) {
            still.push_back(u);  // transient: look again next round
            ++report_.errors;
        } else {
            still.push_back(u);
        }
    }
    void release(dispatch::Outgoing item) override { still.push_back(todo_[item.key]); }
    void flush() override {}
    void on_tick(journal::Millis, dispatch::RunProgress& progress) override {
        progress.finished = static_cast<std::int64_t>(verified.size());
    }
    // What a stopped round never handed out.
    void release_unsent() {
        for (; next_ < todo_.size(); ++next_) still.push_back(todo_[next_]);
    }

    std::vector<journal::KnownIdentity> verified;
    std::vector<journal::KnownIdentity> still;

private:
    std::vector<journal::KnownIdentity>& todo_;
    const api::RequestBuilder& requests_;
    VerifyReport& report_;
    std::size_t next_ = 0;
};

}  // namespace

VerifyReport run_verify(const dispatch::RunContext& c, const config::JobConfig& job, std::chrono::milliseconds wait) {
    VerifyReport report;
    // The profile ids to read are the API's the job's state belongs to.
    guard_target(c.journal, c.config, job, TargetUse::Check, base::now_ms());
    dispatch::Dispatcher dispatcher(c, job.name);
    auto deadline = dispatch::SteadyClock::now() + wait;
    auto todo = c.journal.synced.unverified(job.name, 1'000'000);
    report.checked = static_cast<std::int64_t>(todo.size());
    auto stopped = [&] { return c.stop && c.stop->load(); };
    for (int round = 0; !todo.empty() && report.fatal.empty() && dispatcher.unavailable().empty() && !stopped();
         ++round) {
        if (round > 0) {
            if (dispatch::SteadyClock::now() >= deadline) break;
            std::this_thread::sleep_for(std::min(deadline - dispatch::SteadyClock::now(),
                                                 dispatch::SteadyClock::duration(std::chrono::seconds(1))));
        }
        VerifyRound producer(todo, dispatcher.requests(), report);
        dispatcher.run(producer);
        producer.release_unsent();
        report.fatal = dispatcher.fatal();
        report.unavailable = dispatcher.unavailable();
        auto waited = c.journal.synced.mark_verified(job.name, producer.verified, base::now_ms());
        if (c.observer)
            for (auto ms : waited) c.observer->on_complete(std::chrono::milliseconds(ms));
        report.verified += static_cast<std::int64_t>(producer.verified.size());
        todo = std::move(producer.still);
    }
    report.pending = static_cast<std::int64_t>(todo.size());
    for (std::size_t i = 0; i < todo.size() && i < 20; ++i)
        base::logger().info("Still pending", {{"identity", todo[i].identity}});
    return report;
}

}  // namespace prefsync::push
