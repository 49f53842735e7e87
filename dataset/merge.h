// dataset/merge.h: `distill data merge --db OUT IN1.db IN2.db ...`: joins stores that generation workers
// (generate --shard I/N, a Slurm array, a k8s job) filled into one, in one transaction. Rows are matched by
// their identity, never by row id: problems by content hash, models by sha256, samples by their resume key
// (problem, model, sample index, seed), runs by (kind, start, host, pid, config), curation actions by (kind,
// time, actor, parameters); every reference is re-pointed to the merged ids. Merging a store twice adds
// nothing. A row whose identity matches but whose content differs (the same sample key with another
// completion, the same problem with another answer) is a conflict: the merge is refused, naming the store,
// the table and the row, and OUT is left as it was.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "dataset/store.h"

namespace distill::dataset {

struct MergeReport {
  struct PerStore {
    std::string path;
    std::map<std::string, std::int64_t> added, present;  // by table: rows added, rows already there
  };
  std::vector<PerStore> stores;
};

// Merges each of `inputs` into `out`, in one transaction. InputError for a conflict, an input that is not a
// distill store, an input that is `out` itself, or a reference to a row its store lacks.
MergeReport merge_stores(Store& out, const std::vector<std::string>& inputs);

}  // namespace distill::dataset
