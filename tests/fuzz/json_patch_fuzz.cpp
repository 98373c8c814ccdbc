// The JSON-Patch library (daemon/patch) on any patch and document. Byte 0: bit 0 allows
// move/copy, bit 1 picks RemovedElements::Deactivate; the rest is JSON in the conformance
// suite's form, {"doc": ..., "patch": [...]}.
//
// Checked beyond "no crash": a patch that fails leaves the document as it was (atomic); a
// patch that applies is reproduced by the generic diff (diff_values from the old document
// to the new, applied, gives the new); and for objects, the profile diff's patch from the
// old to the new is well-formed (never Invalid) when applied to the document it was made
// against.
#include <boost/json.hpp>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "daemon/patch/json_patch.hpp"
#include "daemon/patch/profile_diff.hpp"
#include "tests/fuzz/fuzz_support.hpp"

namespace json = boost::json;
namespace patch = prefsync::patch;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 1) return 0;
    std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
    boost::system::error_code ec;
    json::value input = json::parse(text, ec);
    if (ec || !input.is_object()) return 0;
    const json::object& o = input.get_object();
    const json::value* doc_in = o.if_contains("doc");
    const json::value* patch_in = o.if_contains("patch");
    if (!doc_in || !patch_in || !patch_in->is_array()) return 0;

    patch::ApplyOptions options;
    options.allow_move_copy = (data[0] & 1) != 0;
    json::value doc = *doc_in;
    auto error = patch::apply_patch(doc, patch_in->get_array(), options);
    if (error) {
        FUZZ_REQUIRE(doc == *doc_in);
        FUZZ_REQUIRE(!error->message.empty());
        return 0;
    }

    json::value again = *doc_in;
    json::array generic = patch::diff_values(*doc_in, doc);
    FUZZ_REQUIRE(!patch::apply_patch(again, generic));
    FUZZ_REQUIRE(patch::json_equal(again, doc));

    if (doc_in->is_object() && doc.is_object()) {
        patch::DiffOptions diff_options;
        diff_options.server = patch::ServerView::Read;
        if (data[0] & 2) diff_options.removed = patch::RemovedElements::Deactivate;
        const json::object& before = doc_in->get_object();
        json::array profile_patch = patch::diff_profile(before, before, doc.get_object(), diff_options);
        json::value server = *doc_in;
        auto profile_error = patch::apply_patch(server, profile_patch);
        FUZZ_REQUIRE(!profile_error || profile_error->kind != patch::PatchErrorKind::Invalid);
    }
    return 0;
}
