// dataset/migrations.h: brings a store from an older schema version to the current one, in one transaction.
#pragma once

#include "dataset/sqlite.h"

namespace distill::dataset {

// Applies the steps from `from` up to `to` (PRAGMA user_version) atomically; throws RuntimeFailure on error.
void migrate(Db& db, int from, int to);

}  // namespace distill::dataset
