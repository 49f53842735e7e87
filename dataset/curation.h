// dataset/curation.h: the append-only curation log and the sample status derived from it (and kept materialised
// in sample_states, in the same transaction as each log entry).
// An action (a manual review, a filter, dedup or decontaminate run, an undo) is one row with its parameters;
// the per-sample decisions it made (keep or reject, with a reason) hang off it. A sample's status is the
// decision of the latest action on it that has not been undone, else pending. Undo marks the action undone and
// appends an 'undo' row, so every action can be reversed exactly and the history stays readable.
// Every action is written in one transaction: a killed run leaves no partial action behind.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/errors.h"
#include "dataset/store.h"

namespace distill::dataset {

enum class Status : char { pending = 'p', kept = 'k', rejected = 'r' };
const char* status_name(Status s);                        // "pending" | "kept" | "rejected"
std::optional<Status> parse_status(const std::string& s);  // the names above
// "kept,rejected": each once, in order; InputError naming `flag` for an unknown or empty item.
std::vector<Status> parse_statuses(const std::string& list, const std::string& flag);

struct Decision {
  std::int64_t sample_id = 0;
  bool keep = false;
  std::string reason;
  std::string rule;     // a pass's rule that decided (counts per rule in reports); empty for reviews
  bool reopen = false;  // back to pending (data verify, when a rejection rested on a verdict it changed)
};

struct ActionSpec {
  std::string kind;               // review | filter | dedup | decontaminate | verify
  std::string params_json = "{}";
  std::string reason, actor;
};

// Appends one action and its decisions in one transaction; returns the action id. InputError for an unknown
// kind or a sample id that does not exist (nothing is written then). With `decided_after` >= 0, decisions on
// samples that some action after that id decided on are dropped first, inside the same transaction (a pass
// leaves alone what a person reviewed while it was reading); `decisions` is left holding what was recorded,
// and when nothing is left no action is written and 0 returned. `also`, when given, runs inside the same
// transaction with the new action's id (data verify writes its verdict changes there).
std::int64_t record_action(Store& s, const ActionSpec& a, std::vector<Decision>& decisions,
                           std::int64_t decided_after = -1, const std::function<void(std::int64_t)>& also = {});

// The id of the newest curation action (0 for none): what a pass read after, for record_action's decided_after.
std::int64_t last_action_id(Store& s);

// The latest live action that decided on the sample (nullopt: none), the one its status comes from: what a view
// of the sample showed, for a later write to say it is still current. InputError for an unknown sample.
std::optional<std::int64_t> status_action(Store& s, std::int64_t sample_id);

// Brings sample_states (status, action_id) in line with the log for the rows `where` selects (an SQL condition
// over sample_states that may use ?1 = param; "" = every sample), inside the caller's transaction. record_action and
// undo_action keep them in step themselves; migrations and merges call this.
void refresh_status(Db& db, const std::string& where = "", std::int64_t param = 0);

// A write based on a view of a sample that is no longer current (someone decided on it since): refused whole.
struct StaleView : InputError {
  using InputError::InputError;
};

// A person's keep or reject of samples, as `data review` and the studio make it: ids named twice count once;
// samples a person's review already decided so are left out (one a filter decided alike is not: the review
// records that a person stands behind it), and when none is left no action is logged. `seen` maps sample ids to
// the status_action a view showed: if any differs now, StaleView and nothing is written. One transaction.
struct ReviewOutcome {
  std::int64_t action_id = 0;            // 0: nothing changed, nothing logged
  std::vector<std::int64_t> changed;     // in the order named
  std::vector<std::int64_t> unchanged;   // already kept (or rejected), as asked
};
ReviewOutcome review_samples(Store& s, const std::vector<std::int64_t>& ids, bool keep, const std::string& reason,
                             const std::string& actor, const std::string& params_json,
                             const std::map<std::int64_t, std::optional<std::int64_t>>& seen = {});
// The same inside the caller's transaction (a bulk review counts and acts in one).
ReviewOutcome review_samples_tx(Store& s, const std::vector<std::int64_t>& ids, bool keep, const std::string& reason,
                                const std::string& actor, const std::string& params_json,
                                const std::map<std::int64_t, std::optional<std::int64_t>>& seen);

// One manual keep/reject of one sample (a 'review' action); returns its id.
std::int64_t curate(Store& s, std::int64_t sample_id, const std::string& action, const std::string& reason,
                    const std::string& actor);

// Reverses action `action_id` (and so every decision it made); returns the id of the undo row. InputError for an
// unknown id, an action that was already undone, or an undo (undoing an undo is refused: act again instead).
// Undoing a 'verify' action also restores the verdicts it changed; refused while a later live 'verify' action
// changed some of the same samples (undo that one first).
std::int64_t undo_action(Store& s, std::int64_t action_id, const std::string& actor);

Status sample_status(Store& s, std::int64_t sample_id);

// Status of every sample that has a live decision (absent: pending), in one pass over the log.
std::unordered_map<std::int64_t, Status> decided_statuses(Store& s);

// SQL for a relation (sample_id, decision, action_id) of samples with a live decision, derived from the log alone:
// what sample_states must agree with (tests check it does).
extern const char* const kLiveDecisionsSql;

struct CurationRow {  // one decision on one sample, or an undo of an action that touched it
  std::int64_t id = 0;           // action id
  std::string kind;              // review | filter | dedup | decontaminate | undo
  std::string decision;          // keep | reject | "" (undo)
  std::string reason, actor, at, params_json;
  std::optional<std::int64_t> undone_by, undoes;
};
std::vector<CurationRow> curation_history(Store& s, std::int64_t sample_id);

struct ActionRow {
  std::int64_t id = 0;
  std::string kind, params_json, reason, actor, at;
  std::optional<std::int64_t> undone_by, undoes;
  std::int64_t n_kept = 0, n_rejected = 0;
};
std::vector<ActionRow> list_actions(Store& s);  // newest first

struct VerdictChange {  // one verdict `data verify` changed
  std::int64_t action_id = 0;
  std::string old_verdict, new_verdict, old_verifier, new_verifier;  // verifier "" = before versions were stored
  bool undone = false;
};

struct SampleView {
  std::int64_t id, problem_id, sample_idx, seed;
  std::optional<std::int64_t> n_tokens;  // nullopt: unknown
  std::string split, prompt, gold, completion, verdict, finish_reason, created_at, status;
  std::optional<std::int64_t> status_action;  // the action the status comes from (nullopt: none)
  std::optional<std::string> extracted_answer, extract_rule, verifier;
  std::string imported_from;  // "FILE (FORMAT)" for imported samples, else ""
  bool sampled_here = true;   // false for chat-format imports: no sampling parameters are known
  std::vector<VerdictChange> verdict_changes;
  double temperature, top_p;
  std::int64_t model_id, run_id;
  std::string model_path, model_role, model_sha256;
  std::string prompt_format;  // the drawing run's resolved --prompt-format: r1 | chat_template ("" when unrecorded)
  std::optional<int> difficulty;
  std::vector<CurationRow> history;
};
// Everything about one sample, for `data show`. InputError if it does not exist.
SampleView sample_view(Store& s, std::int64_t sample_id);

}  // namespace distill::dataset
