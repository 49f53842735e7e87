// dataset/runs.cpp: see runs.h.
#include "dataset/runs.h"

#include "common/errors.h"

namespace distill::dataset {

namespace {
// Tables whose rows name the run that made them. Table names come from this list only.
const std::vector<std::pair<const char*, const char*>> kMadeBy = {
    {"problems", "problems"}, {"samples", "samples"}, {"eval_results", "eval answers"}, {"train_steps", "train steps"},
    {"remote_requests", "remote requests"}};

void count_made(Store& s, RunRow& r) {
  for (const auto& [table, name] : kMadeBy) {
    auto q = s.db().prepare(std::string("SELECT count(*) FROM ") + table + " WHERE run_id = ?");
    q.bind(1, r.id);
    q.step();
    if (q.col_int(0) > 0) r.made[name] = q.col_int(0);
  }
}

RunRow read_row(Stmt& q) {
  RunRow r;
  r.id = q.col_int(0);
  r.kind = q.col_text(1);
  r.status = q.col_text(2);
  r.started_at = q.col_text(3);
  r.finished_at = q.col_null(4) ? "" : q.col_text(4);
  r.host = q.col_text(5);
  r.version = q.col_text(6);
  r.config_toml = q.col_text(7);
  r.hidden = q.col_int(8) != 0;
  return r;
}
constexpr const char* kCols = "SELECT id, kind, status, started_at, finished_at, host, version, config_toml, hidden FROM runs";
}  // namespace

std::vector<RunRow> list_runs(Store& s, bool with_hidden) {
  auto q = s.db().prepare(std::string(kCols) + " WHERE ?1 OR hidden = 0 ORDER BY id DESC");
  q.bind(1, std::int64_t(with_hidden));
  std::vector<RunRow> out;
  while (q.step()) out.push_back(read_row(q));
  // Counts per table in one pass each (an index-less count per run would read the samples table once per run).
  for (const auto& [table, name] : kMadeBy) {
    auto c = s.db().prepare(std::string("SELECT run_id, count(*) FROM ") + table + " GROUP BY run_id");
    std::map<std::int64_t, std::int64_t> n;
    while (c.step()) n[c.col_int(0)] = c.col_int(1);
    for (auto& r : out)
      if (auto it = n.find(r.id); it != n.end()) r.made[name] = it->second;
  }
  return out;
}

std::vector<TrainStepRow> train_steps_of(Store& s, std::int64_t run_id) {
  auto q = s.db().prepare("SELECT step, tokens, loss, lr, val_loss, at FROM train_steps WHERE run_id = ? ORDER BY step");
  q.bind(1, run_id);
  std::vector<TrainStepRow> out;
  while (q.step()) {
    TrainStepRow r{q.col_int(0), q.col_int(1), q.col_double(2), q.col_double(3), std::nullopt, q.col_text(5)};
    if (!q.col_null(4)) r.val_loss = q.col_double(4);
    out.push_back(std::move(r));
  }
  return out;
}

RunRow run_row(Store& s, std::int64_t id) {
  auto q = s.db().prepare(std::string(kCols) + " WHERE id = ?");
  q.bind(1, id);
  if (!q.step()) throw InputError("no run with id " + std::to_string(id));
  auto r = read_row(q);
  count_made(s, r);
  return r;
}

void set_run_hidden(Store& s, std::int64_t id, bool hidden) {
  run_row(s, id);  // InputError for an unknown id
  auto q = s.db().prepare("UPDATE runs SET hidden = ? WHERE id = ?");
  q.bind(1, std::int64_t(hidden)).bind(2, id);
  q.run();
}

RunRemoval plan_run_removal(Store& s, std::int64_t id) {
  RunRemoval p{run_row(s, id), {}};
  if (p.run.status == "running" && s.run_is_live(id))
    throw InputError("run " + std::to_string(id) + " is still running; stop it first");
  std::vector<std::string> blocking;
  for (const auto& [what, n] : p.run.made) {
    const auto text = std::to_string(n) + " " + what;
    (what == "eval answers" ? p.takes : blocking).push_back(text);
  }
  if (!blocking.empty()) {
    std::string list;
    for (const auto& b : blocking) list += (list.empty() ? "" : ", ") + b;
    throw InputError("run " + std::to_string(id) + " (" + p.run.kind + ") made " + list +
                     " that the store builds on; only eval runs and runs that made nothing can be removed "
                     "(`distill runs hide " + std::to_string(id) + "` leaves it out of listings instead)");
  }
  return p;
}

void remove_run(Store& s, std::int64_t id) {
  Transaction tx(s.db());
  plan_run_removal(s, id);
  for (const char* sql : {"DELETE FROM eval_results WHERE run_id = ?", "DELETE FROM runs WHERE id = ?"}) {
    auto q = s.db().prepare(sql);
    q.bind(1, id);
    q.run();
  }
  tx.commit();
}

}  // namespace distill::dataset
