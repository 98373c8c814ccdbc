#pragma once
// Status → outcome: the one place that decides what an API answer means for an update
// (the table is in docs/ARCHITECTURE.md, section 2.1). A pure function, unit-tested row by
// row.
#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace prefsync::api {

// What the client could observe of one request.
enum class Transport {
    Answered,  // a complete HTTP response
    NotSent,   // failed before the request left (connect refused, DNS, TLS handshake)
    NoAnswer,  // sent (maybe partly), then reset / closed / timed out: outcome unknown
};

enum class Outcome {
    Done,      // applied (200, 204)
    Accepted,  // queued by the API (202); verify later
    Retry,     // transient: try again after a delay
    Unknown,   // the write may or may not have happened (create: resolve before retrying)
    Failed,    // permanent for this update: dead letter with the server's message
    Fatal,     // the run cannot go on (credentials, account): abort, mark nothing failed
};

enum class Operation { Create, Update, Upsert, Replace, Patch, Delete, Archive, Read, Search };

std::string_view to_string(Operation op);  // "create", "upsert", "read", "search", ...

struct Classification {
    Outcome outcome;
    std::string reason;  // short, for logs and `failures`: "503 service unavailable"
};

// `body` is the response body (for 404: is it the account or the profile?).
Classification classify(Operation op, Transport transport, int status, std::string_view body);

// The server's message from an error body, short: what an operator needs in a report.
std::string server_message(std::string_view body);

// The longest Retry-After honoured: a day. Longer delays (a huge number, a date years ahead)
// are clamped to it, so a server's value can never overflow clock arithmetic; the engine
// caps the wait further at retry.max_delay.
inline constexpr std::chrono::seconds kMaxRetryAfter = std::chrono::hours(24);

// Retry-After: delta-seconds or an HTTP-date (a past date is 0), at most kMaxRetryAfter;
// nullopt when absent or unreadable.
std::optional<std::chrono::seconds> parse_retry_after(std::string_view value,
                                                      std::chrono::system_clock::time_point now);

std::string_view to_string(Outcome outcome);

}  // namespace prefsync::api
