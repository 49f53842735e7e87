// dataset/merge.cpp: see merge.h. One generic copier walks a table of specs (identity columns, references,
// columns that must agree); table and column names come only from that table and the schema, values are always
// bound.
#include "dataset/merge.h"

#include <filesystem>
#include <optional>
#include <variant>

#include "common/errors.h"
#include "dataset/curation.h"
#include "dataset/sqlite.h"

namespace distill::dataset {

namespace {

struct Blob {
  std::string bytes;
  bool operator==(const Blob& o) const { return bytes == o.bytes; }
};
using Value = std::variant<std::monostate, std::int64_t, double, std::string, Blob>;

Value column(const Stmt& st, int i) {
  switch (sqlite3_column_type(st.raw(), i)) {
    case SQLITE_INTEGER: return st.col_int(i);
    case SQLITE_FLOAT: return st.col_double(i);
    case SQLITE_TEXT: return st.col_text(i);
    case SQLITE_BLOB: {
      const auto* p = static_cast<const char*>(sqlite3_column_blob(st.raw(), i));
      return Blob{std::string(p ? p : "", std::size_t(sqlite3_column_bytes(st.raw(), i)))};
    }
    default: return std::monostate{};
  }
}

void bind_value(Stmt& st, int i, const Value& v) {
  if (auto* x = std::get_if<std::int64_t>(&v)) st.bind(i, *x);
  else if (auto* d = std::get_if<double>(&v)) st.bind(i, *d);
  else if (auto* s = std::get_if<std::string>(&v)) st.bind(i, *s);
  else if (auto* b = std::get_if<Blob>(&v)) st.bind_blob(i, b->bytes.data(), b->bytes.size());
  else st.bind_null(i);
}

std::string shown(const Value& v) {
  if (auto* x = std::get_if<std::int64_t>(&v)) return std::to_string(*x);
  if (auto* d = std::get_if<double>(&v)) return std::to_string(*d);
  if (auto* s = std::get_if<std::string>(&v)) return "'" + (s->size() > 40 ? s->substr(0, 40) + "..." : *s) + "'";
  if (std::holds_alternative<Blob>(v)) return "(blob)";
  return "NULL";
}

struct Spec {
  const char* table;
  const char* id;  // its own integer id column, or nullptr
  std::vector<std::pair<const char*, const char*>> refs;       // column -> table whose ids it holds
  std::vector<const char*> key;                                // identity, after references are mapped
  std::vector<const char*> same;                               // must agree where the identity matches
  std::vector<std::pair<const char*, const char*>> late_refs;  // references to its own table, set after
};

// In dependency order. samples_fts follows samples through its triggers.
const std::vector<Spec>& specs() {
  static const std::vector<Spec> s = {
      {"runs", "id", {}, {"kind", "started_at", "host", "pid", "config_toml"}, {}, {}},
      {"models", "id", {}, {"sha256"}, {}, {}},
      {"problems", "id", {{"run_id", "runs"}}, {"content_hash"}, {"prompt", "answer", "split"}, {}},
      {"samples", "id", {{"problem_id", "problems"}, {"model_id", "models"}, {"run_id", "runs"}},
       {"problem_id", "model_id", "sample_idx", "seed"}, {"completion"}, {}},
      {"sample_logprobs", nullptr, {{"sample_id", "samples"}}, {"sample_id"}, {"k", "blob"}, {}},
      {"remote_requests", "id", {{"run_id", "runs"}, {"model_id", "models"}, {"problem_id", "problems"}},
       {"run_id", "problem_id", "sample_idx", "seed", "attempts", "at"}, {}, {}},
      // `undoes` names an earlier action (already merged: rows go in id order), `undone_by` a later one.
      {"curation_actions", "id", {{"undoes", "curation_actions"}},
       {"kind", "at", "actor", "params_json", "reason", "undoes", "n_kept", "n_rejected"}, {},
       {{"undone_by", "curation_actions"}}},
      {"curation_effects", nullptr, {{"sample_id", "samples"}, {"action_id", "curation_actions"}},
       {"sample_id", "action_id"}, {"decision"}, {}},
      {"verdict_changes", nullptr, {{"action_id", "curation_actions"}, {"sample_id", "samples"}},
       {"action_id", "sample_id"}, {}, {}},
      {"train_steps", nullptr, {{"run_id", "runs"}}, {"run_id", "step"}, {}, {}},
      {"eval_results", nullptr, {{"run_id", "runs"}, {"model_id", "models"}, {"problem_id", "problems"}},
       {"run_id", "problem_id", "sample_idx"}, {"completion"}, {}},
  };
  return s;
}

std::vector<std::string> columns_of(Db& db, const char* table) {
  auto q = db.prepare(std::string("SELECT name FROM pragma_table_info('") + table + "')");
  std::vector<std::string> out;
  while (q.step()) out.push_back(q.col_text(0));
  return out;
}

int index_of(const std::vector<std::string>& cols, const char* name) {
  for (std::size_t i = 0; i < cols.size(); ++i)
    if (cols[i] == name) return int(i);
  throw std::logic_error(std::string("merge: no column ") + name);
}

using IdMaps = std::map<std::string, std::map<std::int64_t, std::int64_t>>;  // table -> input id -> merged id

class Copier {
 public:
  Copier(Store& out, Store& in, IdMaps& maps, MergeReport::PerStore& report)
      : out_(out), in_(in), maps_(maps), report_(report) {}

  void copy(const Spec& s) {
    const auto cols = columns_of(out_.db(), s.table);
    if (columns_of(in_.db(), s.table) != cols)
      throw InputError(in_.path() + ": table " + s.table + " has other columns than " + out_.path() + "'s");
    std::string list;
    for (const auto& c : cols) list += (list.empty() ? "" : ", ") + c;
    const int id_col = s.id ? index_of(cols, s.id) : -1;
    // Column positions, once per table rather than per row.
    auto positions = [&](const std::vector<const char*>& names) {
      std::vector<std::size_t> out;
      for (const auto* n : names) out.push_back(std::size_t(index_of(cols, n)));
      return out;
    };
    auto ref_positions = [&](const std::vector<std::pair<const char*, const char*>>& refs) {
      std::vector<std::pair<std::size_t, const char*>> out;
      for (const auto& [col, target] : refs) out.emplace_back(std::size_t(index_of(cols, col)), target);
      return out;
    };
    const auto key_at = positions(s.key), same_at = positions(s.same);
    const auto refs_at = ref_positions(s.refs), late_at = ref_positions(s.late_refs);
    // Find by identity (IS: NULL matches NULL), insert without the id.
    std::string where, ins_cols, ins_vals, same_cols;
    for (const auto* k : s.key) where += std::string(where.empty() ? "" : " AND ") + k + " IS ?";
    for (const auto* c : s.same) same_cols += std::string(", ") + c;
    for (std::size_t i = 0; i < cols.size(); ++i) {
      if (int(i) == id_col) continue;
      ins_cols += (ins_cols.empty() ? "" : ", ") + cols[i];
      ins_vals += ins_vals.empty() ? "?" : ", ?";
    }
    auto find = out_.db().prepare(std::string("SELECT ") + (s.id ? s.id : "1") + same_cols + " FROM " + s.table +
                                  " WHERE " + where);
    auto ins = out_.db().prepare(std::string("INSERT INTO ") + s.table + "(" + ins_cols + ") VALUES (" + ins_vals + ")");
    auto rows = in_.db().prepare("SELECT " + list + " FROM " + s.table + (s.id ? std::string(" ORDER BY ") + s.id : ""));
    std::vector<std::pair<std::int64_t, std::vector<Value>>> late;  // input id, row (for late_refs)
    while (rows.step()) {
      std::vector<Value> row;
      for (std::size_t i = 0; i < cols.size(); ++i) row.push_back(column(rows, int(i)));
      const std::int64_t old_id = id_col >= 0 ? std::get<std::int64_t>(row[std::size_t(id_col)]) : 0;
      for (const auto& [at, target] : refs_at) map_ref(s, cols[at].c_str(), target, row[at]);
      bool has_late = false;
      for (const auto& [at, target] : late_at) has_late |= !std::holds_alternative<std::monostate>(row[at]);
      if (has_late) late.emplace_back(old_id, row);
      for (const auto& [at, target] : late_at) row[at] = std::monostate{};
      int p = 1;
      for (auto at : key_at) bind_value(find, p++, row[at]);
      if (find.step()) {
        for (std::size_t j = 0; j < s.same.size(); ++j) {
          const auto here = column(find, int(j) + 1), there = row[same_at[j]];
          if (!(here == there))
            throw InputError(in_.path() + " conflicts with " + out_.path() + ": " + s.table + " " + identity(s, key_at, row) +
                             " has " + s.same[j] + " " + shown(there) + " there but " + shown(here) + " here");
        }
        if (s.id) maps_[s.table][old_id] = find.col_int(0);
        ++report_.present[s.table];
      } else {
        p = 1;
        for (std::size_t i = 0; i < cols.size(); ++i)
          if (int(i) != id_col) bind_value(ins, p++, row[i]);
        ins.run();
        ins.reset();
        if (s.id) maps_[s.table][old_id] = out_.db().last_insert_rowid();
        ++report_.added[s.table];
      }
      find.reset();
    }
    // References within the table (an undo and what it undid), now that every row has its merged id. A
    // reference already set in `out` stays.
    for (const auto& [old_id, row] : late)
      for (const auto& [at, target] : late_at) {
        const char* col = cols[at].c_str();
        auto mapped = row[at];
        map_ref(s, col, target, mapped);
        if (std::holds_alternative<std::monostate>(mapped)) continue;
        auto up = out_.db().prepare(std::string("UPDATE ") + s.table + " SET " + col + " = ? WHERE " + s.id +
                                    " = ? AND " + col + " IS NULL");
        up.bind(1, std::get<std::int64_t>(mapped)).bind(2, maps_[s.table].at(old_id));
        up.run();
      }
  }

 private:
  // Re-points `v`, a reference from s.table.col to a row of `target`, to that row's merged id (NULL stays NULL).
  void map_ref(const Spec& s, const char* col, const char* target, Value& v) {
    auto* id = std::get_if<std::int64_t>(&v);
    if (!id) return;  // NULL: no reference
    const auto& m = maps_[target];
    auto it = m.find(*id);
    if (it == m.end())
      throw InputError(in_.path() + ": " + s.table + "." + col + " = " + std::to_string(*id) + " refers to no row of " +
                       target + " (a damaged store)");
    v = it->second;
  }

  std::string identity(const Spec& s, const std::vector<std::size_t>& key_at, const std::vector<Value>& row) const {
    std::string out = "(";
    for (std::size_t i = 0; i < s.key.size(); ++i)
      out += (i ? ", " : "") + std::string(s.key[i]) + " " + shown(row[key_at[i]]);
    return out + ")";
  }

  Store& out_;
  Store& in_;
  IdMaps& maps_;
  MergeReport::PerStore& report_;
};

}  // namespace

MergeReport merge_stores(Store& out, const std::vector<std::string>& inputs) {
  namespace fs = std::filesystem;
  MergeReport report;
  std::vector<std::unique_ptr<Store>> opened;
  std::error_code ec;
  for (const auto& path : inputs) {
    if (fs::equivalent(path, out.path(), ec))
      throw InputError(path + " is the store being merged into (--db); name it once");
    opened.push_back(Store::open(path, OpenMode::read));  // not a store: InputError naming it
  }
  Transaction tx(out.db());
  for (auto& in : opened) {
    IdMaps maps;
    report.stores.push_back({in->path(), {}, {}});
    Copier copier(out, *in, maps, report.stores.back());
    for (const auto& s : specs()) copier.copy(s);
  }
  refresh_status(out.db());  // the copied samples' states come from the merged log (their rows came with them)
  tx.commit();
  return report;
}

}  // namespace distill::dataset
