#pragma once
// RFC 6902 JSON Patch applied to a Boost.JSON document.
//
// Design constraints:
// - Atomic: a patch applies whole or not at all; on any error the document is unchanged.
// - Errors are values, never exceptions: the index of the operation that failed, what kind
//   of failure it was and a message that names the path.
// - A failed `test` is its own kind, because it means "the document is not in the state the
//   patch was written for" (re-read and diff again), unlike an operation that is malformed
//   or cannot apply to this document. A `test` whose path does not resolve is a failed test
//   too: a guard on an element that is no longer there must read as a conflict.
// - `move` and `copy` are implemented (the conformance suite covers them) but rejected
//   unless ApplyOptions::allow_move_copy is set: the MyPreferences API refuses them, and the
//   emulator, like the API, must say so rather than apply them.
// - `test` compares as RFC 6902 §4.6 says: numbers by value (1 equals 1.0), objects
//   regardless of member order, arrays element by element.
#include <boost/json.hpp>
#include <cstddef>
#include <optional>
#include <string>

namespace prefsync::patch {

namespace json = boost::json;

enum class PatchErrorKind {
    TestFailed,   // a `test` found another value, or nothing, at its path (API: 409)
    Invalid,      // the operation is malformed or not supported: no/unknown "op", a missing
                  // or ill-typed member, a path that is not a JSON Pointer (API: 400)
    Unappliable,  // well-formed, but this document has no such location: a missing member
                  // or parent, an index out of bounds or not an index (API: 400)
};

struct PatchError {
    PatchErrorKind kind;
    std::size_t op_index;  // position of the failed operation in the patch
    std::string message;   // e.g. `test failed at "/Emails/0/EmailAddress"`
};

struct ApplyOptions {
    bool allow_move_copy = false;
};

// Applies `patch` (an array of operations) to `doc`. nullopt: every operation applied; else
// the first failure, and `doc` is as it was.
[[nodiscard]] std::optional<PatchError> apply_patch(json::value& doc, const json::array& patch,
                                                    const ApplyOptions& options = {});

// JSON equality as RFC 6902 `test` defines it (numbers compare by value across int64,
// uint64 and double).
bool json_equal(const json::value& a, const json::value& b);

}  // namespace prefsync::patch
