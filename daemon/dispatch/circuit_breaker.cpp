#include "daemon/dispatch/circuit_breaker.hpp"

#include <algorithm>
#include <vector>

namespace prefsync::dispatch {

bool CircuitBreaker::allow(Clock::time_point now, bool& probe) {
    probe = false;
    switch (state_) {
        case State::Closed: return true;
        case State::Probing: return false;
        case State::Open:
            if (now < probe_at_) return false;
            state_ = State::Probing;
            probe = true;
            return true;
    }
    return true;
}

std::optional<CircuitBreaker::Clock::time_point> CircuitBreaker::next_probe() const {
    if (state_ != State::Open) return std::nullopt;
    return probe_at_;
}

bool CircuitBreaker::distinct_failures(bool consecutive_only) const {
    std::vector<std::uint64_t> items;
    for (auto it = window_.rbegin(); it != window_.rend(); ++it) {
        if (!it->failed) {
            if (consecutive_only) break;
            continue;
        }
        if (std::find(items.begin(), items.end(), it->item) == items.end()) items.push_back(it->item);
        if (static_cast<int>(items.size()) >= settings_.distinct_items) return true;
    }
    return false;
}

int CircuitBreaker::record(bool failed_alike, bool was_probe, Clock::time_point now, std::uint64_t item) {
    if (state_ != State::Closed) {
        // Only the probe speaks for the server while open: answers to requests sent before
        // the breaker opened describe the past.
        if (!was_probe) return 0;
        if (!failed_alike) {
            state_ = State::Closed;
            window_.clear();
            failed_in_window_ = consecutive_ = failed_probes_ = 0;
            return -1;
        }
        ++failed_probes_;
        step_ = std::min(settings_.max_probe, step_ * 2);
        probe_at_ = std::max(probe_at_, now + step_);
        state_ = State::Open;
        return 0;
    }
    window_.push_back({failed_alike, item});
    failed_in_window_ += failed_alike;
    if (static_cast<int>(window_.size()) > settings_.window) {
        failed_in_window_ -= window_.front().failed;
        window_.pop_front();
    }
    consecutive_ = failed_alike ? consecutive_ + 1 : 0;
    bool share = static_cast<int>(window_.size()) >= settings_.min_answers &&
                 failed_in_window_ >= settings_.trip_share * static_cast<double>(window_.size()) &&
                 distinct_failures(false);
    bool run = consecutive_ >= settings_.consecutive && distinct_failures(true);
    if (!share && !run) return 0;
    state_ = State::Open;
    failed_probes_ = 0;
    step_ = std::min(settings_.max_probe, settings_.first_probe);
    probe_at_ = now + step_;
    return +1;
}

void CircuitBreaker::inconclusive(bool was_probe, Clock::time_point now) {
    if (!was_probe || state_ != State::Probing) return;
    state_ = State::Open;
    probe_at_ = std::max(probe_at_, now);
}

void CircuitBreaker::defer_probe(Clock::time_point until) {
    if (state_ == State::Open) probe_at_ = std::max(probe_at_, until);
}

}  // namespace prefsync::dispatch
