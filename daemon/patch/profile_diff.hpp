#pragma once
// The diff of mirror mode: the smallest RFC 6902 patch that makes the part of a profile we
// own equal the body the mapping now produces, and touches nothing else.
//
// Three documents go in:
// - `server`: the document whose array indices the patch addresses. Normally our last
//   accepted body (ServerView::LastAccepted); after a failed guard, the profile as read
//   from the API with matchInactive=true (ServerView::Read): reads without it leave out
//   inactive elements, and indices counted without them address the wrong element.
// - `owned_before`: the last body we sent that the API accepted (see owned_after). Its
//   fields and elements are ours; everything else on the profile is foreign.
// - `desired`: the new body from the mapping.
//
// Design constraints:
// - Ownership: a field is ours if owned_before or desired has it; an element of a keyed
//   collection is ours if owned_before or desired has its natural key (natural_key.hpp).
//   Foreign fields and elements are never the target of an operation (a foreign element's
//   index may appear in a guard, never in a write).
// - Elements are matched by natural key, never by position: a desired element found on the
//   server is changed in place (taken over when we did not own it), one not found is
//   appended with "/-", an owned one no longer desired is removed or deactivated.
//   A changed key is a different element: the old one goes, the new one is appended, so
//   preferences and consents recorded against an old address never move to a new one.
// - Guards: every operation that reaches into an array element by index is preceded by a
//   `test` of that element's key fields at that index, with the server's exact text. If the
//   profile's arrays have shifted, the patch fails a test (409) instead of writing to
//   another element. An element without a key (every key field empty) is matched by
//   content: it is never changed in place, and its guard tests every field we sent.
// - Order within one array: in-place changes (including deactivations) first, then
//   removals in descending index order, then appends. In-place changes therefore see the
//   original indices, each removal sees indices below it unshifted, appends need none.
// - Minimal: nothing unchanged produces a write; an unchanged body gives []. One exception
//   with ServerView::LastAccepted: a field or element we take over (desired, not owned) that
//   the server document already shows as desired gets a `test` instead, because a view that
//   is not a read may be stale and writing nothing on its word is not mirroring.
// - Containers we cannot see: with ServerView::LastAccepted, a keyed array or an object the
//   server document lacks may exist on the profile all the same (foreign data we never
//   saw), and adding it whole would overwrite that. It is filled member by member instead
//   ("/Emails/-", "/CustomerName/FirstName"): on a profile that lacks it too, the patch
//   fails (400) and the engine reads and diffs again. With ServerView::Read the server
//   document is the truth, and a missing container is added whole.
// - What a view that is not a read cannot know: an owned field someone else changed, or an
//   owned element someone removed, is only restored by a diff against a read (the engine's
//   retry after a failed guard, or a periodic read).
// - Appends: "/-" needs no index, so no key guard covers it, and on a view that is not a
//   read it would add a second copy of an element someone else added with the same key (or
//   one an earlier mode left there). Such a patch first tests the whole array as the view
//   shows it (an array it lacks: as empty), so any element it does not know fails the patch
//   and the engine reads and diffs again, where the element is matched by key.
// - Duplicate keys: the first server element with a key is the one we match (as a merge
//   update finds it), later ones are foreign; elements sharing a key within one body are
//   merged into one, later fields winning.
// - Profile documents: `null` means absent (the API drops nulls); read-only fields
//   (ProfileId, Edited, Cass*, ...) are never written; fields the schema does not know are
//   compared as whole values.
#include <boost/json.hpp>
#include <string>
#include <vector>

namespace prefsync::patch {

namespace json = boost::json;

enum class RemovedElements {
    Remove,      // `remove` the element
    Deactivate,  // `replace` its IsActive with false (kept for audit, hidden from reads);
                 // element types without IsActive (ProfileTags, the *Preferences
                 // collections, PreferenceAttributes) are removed: nothing else stops a
                 // tag or a preference from counting
};

enum class ServerView {
    LastAccepted,  // `server` is our own last accepted body (or a view derived from it)
    Read,          // `server` was just read from the API with matchInactive=true
};

struct DiffOptions {
    RemovedElements removed = RemovedElements::Remove;
    ServerView server = ServerView::LastAccepted;
};

// The patch (W8's bare array; W5 wraps it in {"Operations": ...}) that makes the fields and
// elements we own in `server` equal `desired`. `guarded_appends`, if given, gets the path of
// each array the patch tests whole, as the server view has it, before it appends to it
// (ServerView::LastAccepted): a server that writes fields of its own into elements (the
// reference's profiles show `Edited` on each) fails that test whatever anyone else did. (The
// test that an array the view lacks is `[]` is not counted: it fails wherever the profile
// lacks the array too, whatever the server writes.)
json::array diff_profile(const json::object& server, const json::object& owned_before, const json::object& desired,
                         const DiffOptions& options = {}, std::vector<std::string>* guarded_appends = nullptr);

// What we own once diff_profile's patch was accepted: the body to keep as the next
// `owned_before`. It is `desired` (nulls and read-only fields dropped, elements with the
// same key merged into one) plus, under RemovedElements::Deactivate, every owned element we
// deactivated, with IsActive false: still ours, so that it stays deactivated and comes back
// active (IsActive removed) if the source lists it again.
// With `server` (the profile as read), keyed collections are in the order it shows them.
json::object owned_after(const json::object& owned_before, const json::object& desired, const DiffOptions& options = {},
                         const json::object* server = nullptr);

// A body as compact text for storage (the journal): owned_after's normalisation, no
// whitespace, members in the body's order (deterministic for the mapper's deterministic
// bodies). Parse it back with boost::json::parse.
std::string compact_body(const json::object& body);

// The generic diff: a patch turning `from` into `to`, everything owned, arrays compared by
// position (no keys, no guards). For documents that are not profiles, and the conformance
// round trip.
json::array diff_values(const json::value& from, const json::value& to);

}  // namespace prefsync::patch
