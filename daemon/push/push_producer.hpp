#pragma once
// The push side of the request loop: claims journaled updates, turns each into the request
// its job's mode calls for, and records every answer.
//
// Design constraints (how "nothing sent twice" holds; the journal's side of it is in
// docs/ARCHITECTURE.md, section 5):
// - Record before send: an update leaves only after the journal committed it inflight
//   and that commit is durable: claim()'s own fsync, or for the feed's enqueue_claimed() of
//   a row sent at once (a commit without an fsync), the write-ahead log's sync begun after
//   it, which runs beside the sending of the batch before (read_feed(), ripen()).
// - A write whose outcome is unknown (sent, no answer; or a create answered 409 after such
//   a write) is marked `resolve` in the journal, and the mark stays until the update
//   succeeds or fails for good: a lookup that itself fails, a 401 that interrupts it, or a
//   newer row superseding it never drops it.
// - A create marked `resolve` is looked up by its alternate id first: found, its body is
//   applied to that profile by a merge update (W2), so it is never created twice and the
//   row's content still reaches the API; not found, it is created.
// - A create job's row of a profile whose id it knows (it created it: a changed row, a later
//   row of the same id, a row promoted after its predecessor's answer) is a W2 by that id,
//   never a lookup (an index that lags could answer 404) nor a create; if that W2 answers
//   404 the profile is gone: looked up once by alternate id, and created if not found.
// - 409 to a create that was never sent before is a failure ("already exists"), never done.
// - A DELETE marked `resolve` that answers 404 was deleted by the lost attempt: done.
// - Held rows keep their leases: renewed every tick quarter-lease, and claim() never hands
//   this process what it already holds.
// - Mirror (mirror.hpp): a changed identity is patched from its last accepted body; a
//   failed guard (409) or a patch the profile cannot take (400) makes it read the profile
//   (R1, matchInactive) and patch again from what is really there, once; a second failure is
//   a failure carrying the patch and the profile. A patch sent without an answer is never
//   sent again blindly (it may have landed, and an append would land twice): the profile is
//   read and diffed first. A profile gone (404) gets the whole body again (upsert).
// - Removals (a profile whose row left the source): deactivate (PATCH IsActive false),
//   archive (W9) or delete (W3); a profile already gone (404) counts as removed.
#include <algorithm>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "config/config.hpp"
#include "daemon/api/requests.hpp"
#include "daemon/dispatch/request_loop.hpp"
#include "daemon/journal/journal.hpp"

namespace prefsync::push {

struct PushCounts {
    std::int64_t read = 0, rejected = 0, queued = 0, unchanged = 0;
    std::int64_t sent = 0, done = 0, accepted = 0, retries = 0, failed = 0;
};

// Where a run's new updates come from while it sends: the source, read and journaled a
// batch at a time when the journal has nothing to claim (and, for a job whose writes are
// idempotent, ahead while fewer than twice a claim's worth wait to be sent, one batch
// syncing at a time, so its sync runs beside the sending), so the first request leaves once
// the first batch is journaled (for an idempotent job, also the one read ahead after it) and
// reading never runs far ahead of sending.
class Feed {
public:
    virtual ~Feed() = default;
    // Journals the next batch (or, at the end of the source, the removals); false once there
    // is nothing more to journal.
    virtual bool more() = 0;
    // The updates more() journaled already claimed for this producer (to be sent at once),
    // handed over once; the others are claimed from the journal as usual.
    virtual std::vector<journal::ClaimedUpdate> take_claimed() { return {}; }
};

// How progress is shown: a line every 10 s (logs), a live line every second (a terminal).
enum class Progress { None, Lines, Terminal };

class PushProducer final : public dispatch::Producer {
public:
    PushProducer(const config::JobConfig& job, journal::Journal& journal, const api::RequestBuilder& requests,
                 int max_in_flight, journal::Millis lease, PushCounts& counts, Progress progress);

    std::optional<dispatch::Outgoing> next(journal::Millis now) override;
    std::optional<journal::Millis> wake_at(journal::Millis now) override;
    void on_answer(dispatch::Outgoing item, const http::HttpResponse& response,
                   const dispatch::Verdict& verdict) override;
    void release(dispatch::Outgoing item) override;
    void flush() override;
    void on_tick(journal::Millis now, dispatch::RunProgress& progress) override;

    // New updates from `feed` (nullptr: none): read when nothing is claimed or claimable,
    // or, for an idempotent job, ahead while the batch before is sent (see next()); the
    // journal's claimable ones are taken first either way.
    void feed_from(Feed* feed) { feed_ = feed; }
    // Whether sending a row again does no harm (a crash's rows left in flight are sent again
    // as they are: no lookup first, no other meaning for a 404 or a 409).
    static bool idempotent(const config::JobConfig& job) {
        using config::Mode;
        return job.mode == Mode::Upsert || job.mode == Mode::Replace || job.mode == Mode::Update;
    }
    // Gives back what was claimed and never handed to the loop (the run stopped).
    void release_unsent();
    // The lease a run of this config holds its rows with.
    static journal::Millis lease_for(const config::Config& config);
    // What shapes a job's requests besides their bodies (mode, base_url, client_id), as the
    // journal's refusal scope (UpdateQueue::scope_refusals): a body the API refused is sent
    // again once any of them changes. Never 0.
    static std::int64_t refusal_scope(const config::Config& config, const config::JobConfig& job);
    // How many rows are claimed at once: enough to keep `max_in_flight` requests busy.
    static int claim_batch_for(int max_in_flight) { return std::max(256, max_in_flight * 4); }

private:
    // Lookup: learn the profile id (R1); Read: the whole profile, to diff against (mirror).
    enum class Step { Write, Lookup, Read };
    struct Item {
        journal::ClaimedUpdate update;
        Step step = Step::Write;
        std::optional<std::string> last;  // mirror: the last accepted body
        std::string operations;           // mirror: the patch to send ("" : send the whole body)
        std::string accepted_body;        // mirror: to keep once the write succeeds
        bool read_once = false;           // mirror: already re-planned against a read
        // mirror: the arrays the patch tests whole before appending to them (their paths)
        std::vector<std::string> guarded_appends;
        // mirror by profile id: R2 shows no inactive elements, so the profile is read again by
        // one of its alternate ids with matchInactive (R1), whose indices are the patch's.
        std::optional<std::pair<std::string, std::string>> read_by;
        std::string read_r2;                // R2's answer, used if that read cannot be made
        bool done_without_request = false;  // mirror: nothing to send (owned fields equal)
        bool looked_for_gone = false;       // create: its known profile answered 404, looked up once
    };

    Item prepare(journal::ClaimedUpdate u) const;
    struct MissingProfileId {};  // request_for(): a request by profile id, and none is known
    api::ApiRequest request_for(const Item& item) const;
    void lookup_answered(Item& item, const http::HttpResponse& r, const dispatch::Verdict& v, journal::Millis now);
    void write_answered(Item& item, const http::HttpResponse& r, const dispatch::Verdict& v, journal::Millis now);
    void read_answered(Item& item, const http::HttpResponse& r, const dispatch::Verdict& v, journal::Millis now);
    void plan(Item& item) const;  // mirror: what to send, from the last accepted body
    bool mirror(const Item& item) const { return job_.mode == config::Mode::Mirror && !removal(item); }
    static bool removal(const Item& item);
    void succeed(const Item& item, journal::State state, int status, std::optional<std::int64_t> profile_id);
    void retry(const Item& item, const http::HttpResponse& r, const dispatch::Verdict& v, bool resolve,
               journal::Millis now);
    void fail(const Item& item, int status, const std::string& reason, bool counted = true, bool refused = false,
              bool resolve = false);
    // Whether a write's failing answer is a verdict on its body alone (journal::Completion::refused).
    bool refused_body(const Item& item, const http::HttpResponse& r) const;
    void complete(journal::Completion c);
    void print_progress(journal::Millis now);
    void claim(journal::Millis now);
    // The feed's next batch, its claims ripening until their sync is over.
    void read_feed(journal::Millis now);
    // Claims whose sync is over join claimed_ (waiting for it if `wait`).
    void ripen(bool wait);
    // The ripening claims join claimed_, synced or not (only to be released).
    void take_ripening();

    const config::JobConfig& job_;
    journal::Journal& journal_;
    const api::RequestBuilder& requests_;
    api::ProfileIdReader profile_id_of_;
    int claim_batch_;
    bool idempotent_;  // idempotent(job_): the feed's next batch is read ahead
    journal::Millis lease_;
    PushCounts& counts_;
    // The API accepted writes of this job before this run: a refusal is then taken as one of
    // the body (a gateway or an endpoint that refuses every write has accepted none).
    bool accepted_before_ = false;
    // Mirror: this run's patches that tested a whole array before appending to it, by
    // outcome and by collection (a path, indices as "*"). A server that writes fields of its
    // own into elements fails every such test (a failed test, a read and a patch: three
    // requests an append); once a collection's tests failed a few times and passed none,
    // appends to it are read first (a read and a patch: two). Per collection: a server may
    // stamp emails and not tags. reads_appends_first().
    struct AppendGuards {
        int failed = 0, passed = 0;
    };
    std::unordered_map<std::string, AppendGuards> append_guards_;
    int appends_read_first_ = 0;
    bool reads_appends_first(const Item& item) const;
    void count_append_guards(const Item& item, bool passed);
    Progress progress_;
    std::deque<Item> ready_;    // follow-ups (after a lookup): first out
    std::deque<Item> claimed_;  // claimed, not yet handed out
    struct Ripening {
        std::deque<Item> items;
        std::uint64_t sync = 0;  // the journal's sync that makes their claims durable
    };
    std::optional<Ripening> ripening_;             // claimed by the feed, not yet durable: not sent
    std::unordered_map<std::uint64_t, Item> out_;  // handed to the loop
    std::uint64_t next_key_ = 0;
    std::vector<journal::Completion> completions_;
    journal::Millis renewed_at_ = 0, progress_at_ = 0, started_at_ = 0, flushed_at_ = 0;
    std::int64_t to_send_ = -1;  // pending when progress began, less what the feed had queued
    Feed* feed_ = nullptr;
};

}  // namespace prefsync::push
