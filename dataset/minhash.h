// dataset/minhash.h: near-duplicate detection: MinHash signatures over shingle hashes and banded LSH, with
// candidate pairs verified by the signatures' estimated Jaccard similarity. Pure, deterministic (fixed seeds),
// no store. Used by `distill data dedup` (dataset/curate_runs.cpp).
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

namespace distill::dataset {

using Signature = std::vector<std::uint32_t>;

// Bands x rows (bands * rows <= num_perm) that minimise false positives plus false negatives of banded LSH
// around `threshold` (the area under the S-curve on the wrong side of it, as datasketch chooses).
std::pair<int, int> lsh_bands_for(double threshold, int num_perm);

class MinHasher {
 public:
  explicit MinHasher(int num_perm, std::uint64_t seed = 0x5eed);
  // Per permutation, the least hash over the shingles (all ones for no shingles).
  Signature signature(const std::vector<std::uint64_t>& shingles) const;
  int num_perm() const { return int(seeds_.size()); }

 private:
  std::vector<std::uint64_t> seeds_;
};

double estimated_jaccard(const Signature& a, const Signature& b);

struct NearDuplicate {
  std::size_t doc;        // index into the input
  std::size_t survivor;   // the lowest index in its cluster
  double jaccard;         // estimated similarity to the survivor (a chain can leave it below the threshold)
};

// Clusters documents whose signatures collide in some LSH band and whose estimated Jaccard to one of the
// bucket's earlier members (the first 16) reaches `threshold` (union-find, so similarity chains join one cluster,
// as text-dedup and datasketch pipelines do). Returns every document that is not its cluster's survivor, in
// index order. With `groups` (one label per document), only documents of the same group are compared.
std::vector<NearDuplicate> near_duplicates(const std::vector<Signature>& sigs, int bands, int rows, double threshold,
                                           const std::vector<std::uint64_t>& groups = {});

}  // namespace distill::dataset
