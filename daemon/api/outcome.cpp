#include "daemon/api/outcome.hpp"

#include <simdjson.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdint>
#include <ctime>

namespace prefsync::api {

std::string_view to_string(Outcome outcome) {
    switch (outcome) {
        case Outcome::Done: return "done";
        case Outcome::Accepted: return "accepted";
        case Outcome::Retry: return "retry";
        case Outcome::Unknown: return "unknown";
        case Outcome::Failed: return "failed";
        case Outcome::Fatal: return "fatal";
    }
    return "?";
}

std::string_view to_string(Operation op) {
    switch (op) {
        case Operation::Create: return "create";
        case Operation::Update: return "update";
        case Operation::Upsert: return "upsert";
        case Operation::Replace: return "replace";
        case Operation::Patch: return "patch";
        case Operation::Delete: return "delete";
        case Operation::Archive: return "archive";
        case Operation::Read: return "read";
        case Operation::Search: return "search";
    }
    return "?";
}

Classification classify(Operation op, Transport transport, int status, std::string_view body) {
    bool is_write = op != Operation::Read && op != Operation::Search;
    switch (transport) {
        case Transport::NotSent: return {Outcome::Retry, "connection failed before sending"};
        case Transport::NoAnswer:
            // A create that may have landed must not be sent blindly again (a second profile);
            // idempotent writes and reads are simply retried.
            if (op == Operation::Create) return {Outcome::Unknown, "no answer to a create: resolving"};
            return {Outcome::Retry, is_write ? "no answer (connection lost or timed out)" : "no answer"};
        case Transport::Answered: break;
    }
    std::string code = std::to_string(status);
    if (status == 202) return {Outcome::Accepted, "202 accepted"};
    if (status >= 200 && status < 300) return {Outcome::Done, code};
    switch (status) {
        case 400: return {Outcome::Failed, "400 bad request"};
        case 401: return {Outcome::Fatal, "401 unauthorized: check the API token"};
        case 403:
            if (op == Operation::Search) return {Outcome::Failed, "403: more than 50 matches"};
            return {Outcome::Failed, "403 forbidden (permissions)"};
        case 404:
            // The reference answers 404 for an unknown clientId as for an unknown profile;
            // only the message tells them apart, and an unknown account must stop the run.
            if (body.find("clientId") != std::string_view::npos || body.find("ClientId") != std::string_view::npos)
                return {Outcome::Fatal, "404: unknown clientId"};
            return {Outcome::Failed, "404 not found"};
        case 409:
            if (op == Operation::Create) return {Outcome::Unknown, "409 on create: already exists, resolving"};
            return {Outcome::Failed, "409 conflict"};
        case 408: return {Outcome::Retry, "408 request timeout"};
        case 413: return {Outcome::Failed, "413 body too large"};
        case 415: return {Outcome::Failed, "415 unsupported media type"};
        case 429: return {Outcome::Retry, "429 rate limited"};
        case 500: return {Outcome::Retry, "500 server error"};
        case 502: return {Outcome::Retry, "502 bad gateway"};
        case 503: return {Outcome::Retry, "503 service unavailable"};
        case 504: return {Outcome::Retry, "504 gateway timeout"};
        default: break;
    }
    if (status >= 500) return {Outcome::Retry, code + " server error"};
    return {Outcome::Failed, code};
}

std::string server_message(std::string_view body) {
    // The API's errors are ASP.NET's: {"Message": "...", "ModelState": {"field": ["...", ...]}}.
    // Their text, not the JSON around it; a body that is not such an object, as it is.
    std::string m;
    simdjson::dom::parser parser;
    simdjson::padded_string padded(body);
    simdjson::dom::object doc;
    if (!parser.parse(padded).get(doc)) {
        std::string_view text;
        if (!doc["Message"].get(text) || !doc["message"].get(text)) m = text;
        simdjson::dom::object state;
        if (!doc["ModelState"].get(state))
            for (auto field : state) {
                simdjson::dom::array errors;
                if (field.value.get(errors)) continue;
                for (auto e : errors)
                    if (!e.get(text)) m += (m.empty() ? "" : "; ") + std::string(field.key) + ": " + std::string(text);
            }
    }
    if (m.empty()) {
        while (!body.empty() && std::isspace(static_cast<unsigned char>(body.front()))) body.remove_prefix(1);
        while (!body.empty() && std::isspace(static_cast<unsigned char>(body.back()))) body.remove_suffix(1);
        m = body;
    }
    if (m.size() > 300) {
        std::size_t cut = 300;  // not inside a UTF-8 sequence: the text goes into JSON logs
        while (cut > 0 && (static_cast<unsigned char>(m[cut]) & 0xC0) == 0x80) --cut;
        m.replace(cut, std::string::npos, "...");
    }
    return m;
}

std::optional<std::chrono::seconds> parse_retry_after(std::string_view value,
                                                      std::chrono::system_clock::time_point now) {
    while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
    while (!value.empty() && value.back() == ' ') value.remove_suffix(1);
    if (value.empty()) return std::nullopt;
    long long seconds = 0;
    auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), seconds);
    if (end == value.data() + value.size()) {
        bool negative = value.front() == '-';
        // Too many digits for 64 bits is still a well-formed (very long) delay.
        if (ec == std::errc::result_out_of_range) return negative ? std::nullopt : std::optional(kMaxRetryAfter);
        if (ec == std::errc())
            return negative ? std::nullopt : std::optional(std::min(std::chrono::seconds(seconds), kMaxRetryAfter));
    }
    // HTTP-date (IMF-fixdate): "Sun, 06 Nov 1994 08:49:37 GMT".
    std::tm tm{};
    std::string text(value);
    const char* rest = strptime(text.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm);
    if (!rest || *rest != '\0') return std::nullopt;
    // In time_t seconds: a system_clock time_point counts nanoseconds and cannot reach the
    // years (up to 9999) an HTTP-date can name.
    std::int64_t delta =
        static_cast<std::int64_t>(timegm(&tm)) - static_cast<std::int64_t>(std::chrono::system_clock::to_time_t(now));
    return std::chrono::seconds(std::clamp<std::int64_t>(delta, 0, kMaxRetryAfter.count()));
}

}  // namespace prefsync::api
