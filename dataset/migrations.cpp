// dataset/migrations.cpp: the list of schema steps. Step k takes a store from user_version k to k+1.
// Version 1 is the first schema; add a step here for every change to schema.sql, and keep schema.sql equal to
// the result of applying all steps (tests/test_store.cpp checks that on tests/fixtures/store/schema_v1.sql).
#include "dataset/migrations.h"

#include <algorithm>
#include <regex>
#include <string>
#include <vector>

#include "common/errors.h"
#include "dataset/curation.h"

namespace distill::dataset {

namespace {
// SQLite cannot ALTER a CHECK or NOT NULL constraint. Widening one (allowing more values) cannot invalidate a row,
// so the table's stored CREATE statement is edited in place, SQLite's documented procedure for such changes
// (lang_altertable.html, "making other kinds of table schema changes"), inside the migration's transaction.
void edit_table_sql(Db& db, const char* table, const std::vector<std::pair<std::string, std::string>>& edits) {
  auto q = db.prepare("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?");
  q.bind(1, table);
  if (!q.step()) throw InputError(db.path() + ": the store has no table '" + std::string(table) + "'");
  std::string sql = q.col_text(0);
  for (const auto& [from, to] : edits) {
    const std::regex re(from);
    if (!std::regex_search(sql, re))
      throw InputError(db.path() + ": table '" + table + "' is not as distill wrote it (no match for " + from + ")");
    sql = std::regex_replace(sql, re, to, std::regex_constants::format_first_only);
  }
  const auto version = db.pragma_int("schema_version");
  db.exec("PRAGMA writable_schema = ON");
  auto u = db.prepare("UPDATE sqlite_master SET sql = ? WHERE type = 'table' AND name = ?");
  u.bind(1, sql).bind(2, table);
  u.run();
  db.exec(("PRAGMA schema_version = " + std::to_string(version + 1)).c_str());
  db.exec("PRAGMA writable_schema = OFF");
}

// 5 -> 6, the constraint half: 'unverified' verdicts and unknown token counts, 'verify' actions that can return
// a sample to pending.
void widen_for_verify(Db& db) {
  edit_table_sql(db, "samples", {{R"('unparsable'\))", "'unparsable', 'unverified')"},
                                 {R"(n_tokens(\s+)INTEGER NOT NULL)", "n_tokens$1INTEGER"}});
  edit_table_sql(db, "eval_results", {{R"('unparsable'\))", "'unparsable', 'unverified')"}});
  edit_table_sql(db, "curation_actions", {{R"('undo'\))", "'undo', 'verify')"}});
  edit_table_sql(db, "curation_effects", {{R"('reject'\))", "'reject', 'pending')"}});
}

struct Step {
  int from;                      // user_version before the step
  const char* sql;               // DDL/DML that brings it to from+1
  void (*edit)(Db&) = nullptr;   // run before `sql`, for what SQL cannot say
  void (*after)(Db&) = nullptr;  // run after `sql`
};

// 7 -> 8: the status of every sample, from the log, into the new columns.
void fill_status(Db& db) { refresh_status(db); }
const std::vector<Step>& steps() {
  static const std::vector<Step> s = {
      // 1 -> 2: the per-sample curation log becomes actions + per-sample decisions (bulk runs, parameters,
      // counts); full-text search over completions; indexes for per-problem and length queries.
      {1, R"SQL(
CREATE TABLE curation_actions (
  id           INTEGER PRIMARY KEY,
  kind         TEXT NOT NULL CHECK (kind IN ('review', 'filter', 'dedup', 'decontaminate', 'undo')),
  params_json  TEXT NOT NULL DEFAULT '{}',
  reason       TEXT,
  actor        TEXT NOT NULL,
  at           TEXT NOT NULL,
  undoes       INTEGER REFERENCES curation_actions(id),
  undone_by    INTEGER REFERENCES curation_actions(id),
  n_kept       INTEGER NOT NULL DEFAULT 0,
  n_rejected   INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE curation_effects (
  sample_id  INTEGER NOT NULL REFERENCES samples(id),
  action_id  INTEGER NOT NULL REFERENCES curation_actions(id),
  decision   TEXT NOT NULL CHECK (decision IN ('keep', 'reject')),
  reason     TEXT,
  PRIMARY KEY (sample_id, action_id)
) WITHOUT ROWID;
CREATE INDEX curation_effects_action ON curation_effects(action_id);
INSERT INTO curation_actions(id, kind, reason, actor, at, undoes, undone_by, n_kept, n_rejected)
  SELECT id, CASE action WHEN 'undo' THEN 'undo' ELSE 'review' END, reason, actor, at,
         (SELECT t.id FROM curation t WHERE t.undone_by = c.id),
         undone_by, action = 'keep', action = 'reject'
  FROM curation c;
INSERT INTO curation_effects(sample_id, action_id, decision, reason)
  SELECT sample_id, id, action, reason FROM curation WHERE action IN ('keep', 'reject');
DROP INDEX curation_sample;
DROP TABLE curation;
CREATE VIRTUAL TABLE samples_fts USING fts5(completion, content='samples', content_rowid='id');
INSERT INTO samples_fts(samples_fts) VALUES ('rebuild');
CREATE TRIGGER samples_fts_insert AFTER INSERT ON samples BEGIN
  INSERT INTO samples_fts(rowid, completion) VALUES (new.id, new.completion);
END;
CREATE TRIGGER samples_fts_delete AFTER DELETE ON samples BEGIN
  INSERT INTO samples_fts(samples_fts, rowid, completion) VALUES ('delete', old.id, old.completion);
END;
CREATE INDEX samples_problem ON samples(problem_id, sample_idx, verdict, n_tokens);
)SQL"},
      // 2 -> 3: validation loss beside the training loss; the full-text index follows completion edits too.
      {2, R"SQL(
ALTER TABLE train_steps ADD COLUMN val_loss REAL;
CREATE TRIGGER samples_fts_update AFTER UPDATE OF completion ON samples BEGIN
  INSERT INTO samples_fts(samples_fts, rowid, completion) VALUES ('delete', old.id, old.completion);
  INSERT INTO samples_fts(rowid, completion) VALUES (new.id, new.completion);
END;
)SQL"},
      // 3 -> 4: which rule of a pass decided (the funnel tells "incorrect" from the other filters).
      {3, R"SQL(
ALTER TABLE curation_effects ADD COLUMN rule TEXT;
UPDATE curation_effects SET rule = 'verdict'
  WHERE decision = 'reject' AND reason LIKE 'verdict %'
    AND action_id IN (SELECT id FROM curation_actions WHERE kind = 'filter');
)SQL"},
      // 4 -> 5: the process of a run, so a 'running' row whose process is gone can be told from a live one.
      {4, R"SQL(
ALTER TABLE runs ADD COLUMN pid INTEGER;
)SQL"},
      // 5 -> 6: honest verdicts. Which extraction rule and verifier version gave each verdict; `data verify`'s
      // record of the verdicts it changed (for undo); and (in widen_for_verify) the 'unverified' verdict, unknown
      // token counts, 'verify' actions and 'pending' decisions.
      {5, R"SQL(
ALTER TABLE samples ADD COLUMN extract_rule TEXT;
ALTER TABLE samples ADD COLUMN verifier TEXT;
ALTER TABLE eval_results ADD COLUMN verifier TEXT;
CREATE TABLE verdict_changes (
  action_id      INTEGER NOT NULL REFERENCES curation_actions(id),
  sample_id      INTEGER NOT NULL REFERENCES samples(id),
  old_verdict    TEXT NOT NULL,
  old_extracted  TEXT,
  old_rule       TEXT,
  old_verifier   TEXT,
  new_verdict    TEXT NOT NULL,
  new_extracted  TEXT,
  new_rule       TEXT,
  new_verifier   TEXT,
  PRIMARY KEY (action_id, sample_id)
) WITHOUT ROWID;
CREATE INDEX verdict_changes_sample ON verdict_changes(sample_id);
)SQL", widen_for_verify},
      // 6 -> 7: remote teachers' requests, the lineage of their samples and the record of those that failed.
      {6, R"SQL(
CREATE TABLE remote_requests (
  id                  INTEGER PRIMARY KEY,
  run_id              INTEGER NOT NULL REFERENCES runs(id),
  model_id            INTEGER NOT NULL REFERENCES models(id),
  problem_id          INTEGER NOT NULL REFERENCES problems(id),
  sample_idx          INTEGER NOT NULL,
  seed                INTEGER NOT NULL,
  status              TEXT NOT NULL CHECK (status IN ('ok', 'failed')),
  attempts            INTEGER NOT NULL,
  http_status         INTEGER,                -- of the last attempt; 0: no HTTP answer (refused, reset, timeout)
  error               TEXT,                   -- the last attempt's error, when it failed
  server_model        TEXT,                   -- the model the server said answered
  system_fingerprint  TEXT,
  response_id         TEXT,
  prompt_tokens       INTEGER,
  completion_tokens   INTEGER,
  latency_ms          REAL,                   -- of the attempt that answered
  params_json         TEXT NOT NULL,          -- the request body without the prompt or messages
  at                  TEXT NOT NULL
);
CREATE INDEX remote_requests_key ON remote_requests(problem_id, model_id, sample_idx, seed);
)SQL"},
      // 7 -> 8: each sample's curation status materialised (kept in step with the log), and a view of it; runs can be
      // hidden; a length index.
      {7, R"SQL(
ALTER TABLE runs ADD COLUMN hidden INTEGER NOT NULL DEFAULT 0;
CREATE INDEX samples_length ON samples(coalesce(n_tokens, -1), id);
CREATE TABLE sample_states (
  sample_id  INTEGER PRIMARY KEY REFERENCES samples(id) ON DELETE CASCADE,
  status     TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'kept', 'rejected')),
  action_id  INTEGER
);
CREATE INDEX sample_states_status ON sample_states(status, sample_id);
CREATE TRIGGER samples_state_insert AFTER INSERT ON samples BEGIN
  INSERT INTO sample_states(sample_id) VALUES (new.id);
END;
INSERT INTO sample_states(sample_id) SELECT id FROM samples;
CREATE VIEW sample_status AS
  SELECT st.sample_id AS sample_id, st.status AS status, st.action_id AS action_id, a.kind AS action_kind,
         a.actor AS actor, a.at AS at, e.reason AS reason, e.rule AS rule
  FROM sample_states st LEFT JOIN curation_actions a ON a.id = st.action_id
  LEFT JOIN curation_effects e ON e.sample_id = st.sample_id AND e.action_id = st.action_id;
)SQL", nullptr, fill_status},
  };
  return s;
}
}  // namespace

void migrate(Db& db, int from, int to) {
  Transaction tx(db);
  // Another process may have migrated the store while this one waited for the write lock.
  from = std::max(from, int(db.pragma_int("user_version")));
  for (int v = from; v < to; ++v) {
    const Step* step = nullptr;
    for (const auto& s : steps())
      if (s.from == v) step = &s;
    if (!step)
      throw InputError(db.path() + ": store schema version " + std::to_string(v) +
                       " has no migration to version " + std::to_string(v + 1));
    if (step->edit) step->edit(db);
    db.exec(step->sql);
    if (step->after) step->after(db);
    db.exec(("PRAGMA user_version = " + std::to_string(v + 1)).c_str());
  }
  tx.commit();
}

}  // namespace distill::dataset
