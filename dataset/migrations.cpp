// dataset/migrations.cpp: the list of schema steps. Step k takes a store from user_version k to k+1.
// Version 1 is the first schema (schema.sql), so there are no steps yet; add one here for every change to
// schema.sql, and keep schema.sql equal to the result of applying all steps.
#include "dataset/migrations.h"

#include <string>
#include <vector>

#include "common/errors.h"

namespace distill::dataset {

namespace {
struct Step {
  int from;         // user_version before the step
  const char* sql;  // DDL/DML that brings it to from+1
};
const std::vector<Step>& steps() {
  static const std::vector<Step> s = {};
  return s;
}
}  // namespace

void migrate(Db& db, int from, int to) {
  Transaction tx(db);
  for (int v = from; v < to; ++v) {
    const Step* step = nullptr;
    for (const auto& s : steps())
      if (s.from == v) step = &s;
    if (!step)
      throw InputError(db.path() + ": store schema version " + std::to_string(v) +
                       " has no migration to version " + std::to_string(v + 1));
    db.exec(step->sql);
    db.exec(("PRAGMA user_version = " + std::to_string(v + 1)).c_str());
  }
  tx.commit();
}

}  // namespace distill::dataset
