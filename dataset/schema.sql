-- dataset/schema.sql: the distill store, schema version 8 (PRAGMA user_version = 8).
-- Applied to a new store in one transaction. Older stores are brought forward by dataset/migrations.cpp;
-- a store from a newer distill is refused untouched. Every table is written only through dataset/.

-- Every command that writes records itself here, with its resolved config.
CREATE TABLE runs (
  id           INTEGER PRIMARY KEY,
  kind         TEXT NOT NULL,               -- 'data synth', 'data import', 'tokenizer train', 'generate', ...
  config_toml  TEXT NOT NULL,               -- the resolved config (flags merged over --config)
  started_at   TEXT NOT NULL,               -- ISO-8601 UTC
  finished_at  TEXT,
  status       TEXT NOT NULL CHECK (status IN ('running', 'ok', 'failed')),
  host         TEXT NOT NULL,
  version      TEXT NOT NULL,               -- distill version that ran it
  pid          INTEGER,                     -- its process on `host` (NULL before schema v5)
  hidden       INTEGER NOT NULL DEFAULT 0   -- `runs hide`: left out of compare and listings unless named (v8)
);

CREATE TABLE models (
  id               INTEGER PRIMARY KEY,
  role             TEXT NOT NULL,           -- 'teacher', 'student', 'baseline'
  path             TEXT NOT NULL,
  arch             TEXT NOT NULL,
  n_params         INTEGER NOT NULL,
  n_active_params  INTEGER NOT NULL,
  sha256           TEXT NOT NULL UNIQUE
);

CREATE TABLE problems (
  id            INTEGER PRIMARY KEY,
  source        TEXT NOT NULL,              -- 'synth:chain', 'gsm8k', 'math', 'jsonl:FILE'
  split         TEXT NOT NULL,              -- 'train', 'eval', or a benchmark name
  prompt        TEXT NOT NULL,
  answer        TEXT NOT NULL,              -- the gold final answer, as a verifier reads it
  solution      TEXT,                       -- gold step-by-step solution ending in \boxed{answer}, if known
  difficulty    INTEGER,                    -- 1..5 for synthetic tasks; NULL when unknown
  meta_json     TEXT NOT NULL DEFAULT '{}',
  content_hash  TEXT NOT NULL UNIQUE,       -- sha256 of the normalised prompt: reruns add nothing
  run_id        INTEGER REFERENCES runs(id)
);
CREATE INDEX problems_split_difficulty ON problems(split, difficulty);
CREATE INDEX problems_source ON problems(source);

CREATE TABLE samples (
  id                INTEGER PRIMARY KEY,
  problem_id        INTEGER NOT NULL REFERENCES problems(id),
  model_id          INTEGER NOT NULL REFERENCES models(id),
  run_id            INTEGER NOT NULL REFERENCES runs(id),
  sample_idx        INTEGER NOT NULL,       -- 0..K-1 for this (problem, model)
  seed              INTEGER NOT NULL,
  temperature       REAL NOT NULL,
  top_p             REAL NOT NULL,
  max_tokens        INTEGER NOT NULL,
  completion        TEXT NOT NULL,
  extracted_answer  TEXT,
  verdict           TEXT NOT NULL CHECK (verdict IN ('correct', 'incorrect', 'unparsable', 'unverified')),
  n_tokens          INTEGER,                -- NULL: unknown (imported without a tokenizer)
  finish_reason     TEXT NOT NULL CHECK (finish_reason IN ('eos', 'stop', 'length')),
  created_at        TEXT NOT NULL,
  extract_rule      TEXT,                   -- which rule extracted the answer: boxed, answer_colon, ... (v6)
  verifier          TEXT,                   -- the verifier version that gave the verdict; NULL before v6
  UNIQUE (problem_id, model_id, sample_idx, seed)   -- the resume key of `generate`
);
CREATE INDEX samples_model_verdict ON samples(model_id, verdict);
CREATE INDEX samples_length ON samples(coalesce(n_tokens, -1), id);  -- sorting by length pages by key (v8)

-- Teacher top-k (token id, logprob) per generated position, packed little-endian, for logit KD.
CREATE TABLE sample_logprobs (
  sample_id  INTEGER PRIMARY KEY REFERENCES samples(id) ON DELETE CASCADE,
  k          INTEGER NOT NULL,
  blob       BLOB NOT NULL
);

-- Every request a remote teacher (generate --teacher URL) was sent for a sample: the sample's lineage (the model
-- and fingerprint the server reported, the parameters sent) and, for a request that kept failing, why. A failed
-- sample has no samples row, so the next run with the same key draws it again (v7).
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

-- Curation: an append-only log of actions (a manual review, a filter/dedup/decontaminate run, an undo) with
-- the rule's parameters, and the per-sample decisions each action made. A sample's status is the decision of
-- the latest action on it that has not been undone, else pending (materialised in sample_states). Undo sets
-- undone_by, nothing else.
CREATE TABLE curation_actions (
  id           INTEGER PRIMARY KEY,
  kind         TEXT NOT NULL CHECK (kind IN ('review', 'filter', 'dedup', 'decontaminate', 'undo', 'verify')),
  params_json  TEXT NOT NULL DEFAULT '{}',  -- the rule's parameters, as given
  reason       TEXT,
  actor        TEXT NOT NULL,
  at           TEXT NOT NULL,
  undoes       INTEGER REFERENCES curation_actions(id),  -- kind 'undo': the action it reversed
  undone_by    INTEGER REFERENCES curation_actions(id),
  n_kept       INTEGER NOT NULL DEFAULT 0,
  n_rejected   INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE curation_effects (
  sample_id  INTEGER NOT NULL REFERENCES samples(id),
  action_id  INTEGER NOT NULL REFERENCES curation_actions(id),
  decision   TEXT NOT NULL CHECK (decision IN ('keep', 'reject', 'pending')),  -- pending: back to review (v6)
  reason     TEXT,                            -- e.g. 'verdict incorrect', 'near-duplicate of 12 (J=0.91)'
  rule       TEXT,                            -- the pass's rule that decided, e.g. 'verdict', 'near' (v4)
  PRIMARY KEY (sample_id, action_id)
) WITHOUT ROWID;
CREATE INDEX curation_effects_action ON curation_effects(action_id);

-- Each sample's curation status, kept in step with the log by dataset/curation.cpp in the log's own transactions
-- (v8): the decision of action_id, the latest live action that decided on the sample (NULL: none, so pending). A
-- narrow table of its own, so that a pass deciding on 400,000 samples rewrites 20-byte rows, not the samples rows
-- with their completions. A row is made with each sample; action_id is not declared a reference so `data merge`
-- can copy samples before actions.
CREATE TABLE sample_states (
  sample_id  INTEGER PRIMARY KEY REFERENCES samples(id) ON DELETE CASCADE,
  status     TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'kept', 'rejected')),
  action_id  INTEGER
);
CREATE INDEX sample_states_status ON sample_states(status, sample_id);
CREATE TRIGGER samples_state_insert AFTER INSERT ON samples BEGIN
  INSERT INTO sample_states(sample_id) VALUES (new.id);
END;

-- Each sample's status with the action behind it, for the sqlite3 shell and other readers (v8).
CREATE VIEW sample_status AS
  SELECT st.sample_id AS sample_id, st.status AS status, st.action_id AS action_id, a.kind AS action_kind,
         a.actor AS actor, a.at AS at, e.reason AS reason, e.rule AS rule
  FROM sample_states st LEFT JOIN curation_actions a ON a.id = st.action_id
  LEFT JOIN curation_effects e ON e.sample_id = st.sample_id AND e.action_id = st.action_id;

-- `data verify`: each verdict it changed, old and new, so that undoing the action restores the old ones (v6).
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

-- Full-text search over reasoning traces (data list --search), kept in step with samples by triggers.
CREATE VIRTUAL TABLE samples_fts USING fts5(completion, content='samples', content_rowid='id');
CREATE TRIGGER samples_fts_insert AFTER INSERT ON samples BEGIN
  INSERT INTO samples_fts(rowid, completion) VALUES (new.id, new.completion);
END;
CREATE TRIGGER samples_fts_delete AFTER DELETE ON samples BEGIN
  INSERT INTO samples_fts(samples_fts, rowid, completion) VALUES ('delete', old.id, old.completion);
END;
CREATE TRIGGER samples_fts_update AFTER UPDATE OF completion ON samples BEGIN
  INSERT INTO samples_fts(samples_fts, rowid, completion) VALUES ('delete', old.id, old.completion);
  INSERT INTO samples_fts(rowid, completion) VALUES (new.id, new.completion);
END;
-- Covers the per-problem and length/verdict queries of curation, so they never read completions.
CREATE INDEX samples_problem ON samples(problem_id, sample_idx, verdict, n_tokens);

CREATE TABLE train_steps (
  run_id  INTEGER NOT NULL REFERENCES runs(id),
  step    INTEGER NOT NULL,
  loss    REAL NOT NULL,
  lr      REAL NOT NULL,
  tokens  INTEGER NOT NULL,
  at      TEXT NOT NULL,
  val_loss REAL,                            -- validation loss, on the steps where it was measured (v3)
  PRIMARY KEY (run_id, step)
);

CREATE TABLE eval_results (
  run_id      INTEGER NOT NULL REFERENCES runs(id),
  model_id    INTEGER NOT NULL REFERENCES models(id),
  problem_id  INTEGER NOT NULL REFERENCES problems(id),
  sample_idx  INTEGER NOT NULL,
  completion  TEXT NOT NULL,
  verdict     TEXT NOT NULL CHECK (verdict IN ('correct', 'incorrect', 'unparsable', 'unverified')),
  n_tokens    INTEGER NOT NULL,
  latency_ms  REAL NOT NULL,
  verifier    TEXT,                         -- the verifier version that gave the verdict; NULL before v6
  PRIMARY KEY (run_id, problem_id, sample_idx)
);
