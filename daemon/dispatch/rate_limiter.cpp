#include "daemon/dispatch/rate_limiter.hpp"

#include <algorithm>
#include <cmath>

namespace prefsync::dispatch {

// A quarter off per congestion event and a tenth of the configured rate back per second of
// success: measured against the emulator's 1 s-window limit, halving and 5%/s left a client
// configured right at the limit at 69% of it for the whole run. Below a known ceiling the
// rate settles at kSettle of it, holds for kHold, then probes by kProbe of it per second;
// kForget past the ceiling, the ceiling is stale.
constexpr double kDecrease = 0.75;
constexpr double kIncrease = 0.10;
constexpr double kSettle = 0.95;
constexpr double kProbe = 0.01;
constexpr double kForget = 1.10;
constexpr auto kHold = std::chrono::seconds(20);
constexpr double kJitter = 0.003;  // seconds
constexpr auto kSlot = std::chrono::milliseconds(100);
constexpr auto kMinSpan = std::chrono::milliseconds(500);

RateLimiter::RateLimiter(double rate, double burst, bool adaptive, ClockFn clock)
    : configured_(rate),
      rate_(rate),
      burst_(std::max(1.0, burst)),
      adaptive_(adaptive),
      clock_(std::move(clock)),
      tokens_(burst_),
      last_refill_(clock_()) {}

void RateLimiter::refill(SteadyClock::time_point now) {
    // Nothing accrues while paused: a Retry-After must not end in a burst.
    last_refill_ = std::max(last_refill_, paused_until_);
    auto elapsed = std::chrono::duration<double>(now - last_refill_).count();
    if (elapsed > 0) {
        // A timer fires late by a fraction of a millisecond: capped at a burst of 1, each
        // wake-up would lose that lateness for good (5% at 300/s). Up to kJitter's worth of
        // requests may catch up, never more than the average rate allows.
        tokens_ = std::min(std::max(burst_, 1.0 + rate_ * kJitter), tokens_ + elapsed * rate_);
        last_refill_ = now;
    }
}

std::optional<std::chrono::nanoseconds> RateLimiter::try_acquire() {
    auto now = clock_();
    if (now < paused_until_) return paused_until_ - now;
    refill(now);
    if (tokens_ >= 1.0) {
        tokens_ -= 1.0;
        return std::nullopt;
    }
    auto wait = std::chrono::duration<double>((1.0 - tokens_) / rate_);
    return std::max(std::chrono::nanoseconds(1), std::chrono::duration_cast<std::chrono::nanoseconds>(wait));
}

void RateLimiter::on_throttle() {
    if (!adaptive_) return;
    auto now = clock_();
    // One decrease per second at most: the many requests in flight when the server pushes
    // back are one congestion event, not one each.
    if (last_decrease_ != SteadyClock::time_point{} && now - last_decrease_ < std::chrono::seconds(1)) return;
    last_decrease_ = now;
    refill(now);
    // Throttles that go on while the rate only falls are one storm: its ceiling is the rate
    // it began at, not the floor it drove the rate to.
    if (ceiling_ <= 0 || raised_since_cut_) ceiling_ = rate_;
    raised_since_cut_ = false;
    double cut = rate_ * kDecrease;
    if (auto accepted = accepted_rate(now); accepted && *accepted > 0) {
        // What the server took is where its limit is: settle just below it, but never cut
        // by more than half at once (a client that had little to send accepted little).
        ceiling_ = std::min(ceiling_, *accepted);
        cut = std::clamp(*accepted * kSettle, rate_ * 0.5, rate_);
    }
    rate_ = std::max(configured_ * 0.02, cut);
    // A burst the server did not take is not to be sent again: half the burst per throttle.
    burst_ = std::max(1.0, burst_ * 0.5);
    // A throttled burst must not be replayed at once.
    tokens_ = std::min(tokens_, 1.0);
    last_increase_ = now;
}

void RateLimiter::count_success(SteadyClock::time_point now) {
    std::int64_t slot = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()) / kSlot;
    if (slot_ < 0 || slot - slot_ >= kSlots) {
        accepted_.fill(0);
    } else {
        for (auto s = slot_ + 1; s <= slot; ++s) accepted_[static_cast<std::size_t>(s % kSlots)] = 0;
    }
    if (slot_ < 0 || counting_since_ < paused_until_) counting_since_ = std::max(now, paused_until_);
    slot_ = std::max(slot_, slot);
    ++accepted_[static_cast<std::size_t>(slot_ % kSlots)];
}

std::optional<double> RateLimiter::accepted_rate(SteadyClock::time_point now) {
    if (slot_ < 0) return std::nullopt;
    std::int64_t slot = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()) / kSlot;
    // From the later of two seconds ago and the end of the last pause (successes then are
    // answers to requests sent before it).
    std::int64_t first =
        std::chrono::duration_cast<std::chrono::milliseconds>(counting_since_.time_since_epoch()) / kSlot;
    first = std::max(first, slot - kSlots + 1);
    // The span the counted slots cover: whole slots, or from where counting began.
    auto since = std::max(counting_since_,
                          SteadyClock::time_point(std::chrono::duration_cast<SteadyClock::duration>(first * kSlot)));
    if (now - since < kMinSpan || slot - slot_ >= kSlots) return std::nullopt;
    long n = 0;
    for (auto s = first; s <= std::min(slot, slot_); ++s) n += accepted_[static_cast<std::size_t>(s % kSlots)];
    return static_cast<double>(n) / std::chrono::duration<double>(now - since).count();
}

void RateLimiter::on_success() {
    if (!adaptive_) return;
    auto now = clock_();
    count_success(now);
    if (rate_ >= configured_) return;
    if (now - last_increase_ < std::chrono::seconds(1)) return;
    refill(now);
    last_increase_ = now;
    double before = rate_;
    if (ceiling_ <= 0) {
        rate_ = std::min(configured_, rate_ + configured_ * kIncrease);
    } else if (double settle = ceiling_ * kSettle; rate_ < settle) {
        rate_ = std::min(settle, rate_ + configured_ * kIncrease);
    } else if (now - last_decrease_ >= kHold) {
        rate_ = std::min(configured_, rate_ + ceiling_ * kProbe);
        if (rate_ > ceiling_ * kForget) ceiling_ = 0;
    }
    if (rate_ > before) raised_since_cut_ = true;
}

void RateLimiter::pause_until(SteadyClock::time_point until) {
    paused_until_ = std::max(paused_until_, until);
    tokens_ = std::min(tokens_, 1.0);
}

std::chrono::milliseconds Backoff::delay(int attempt) {
    double cap = std::min(static_cast<double>(max_.count()),
                          static_cast<double>(base_.count()) * std::pow(2.0, std::min(attempt, 40)));
    std::uniform_real_distribution<double> pick(0, cap);
    return std::chrono::milliseconds(static_cast<long long>(pick(rng_)));
}

}  // namespace prefsync::dispatch
