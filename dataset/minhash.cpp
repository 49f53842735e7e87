// dataset/minhash.cpp: see minhash.h.
#include "dataset/minhash.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <unordered_map>

namespace distill::dataset {

namespace {
std::uint64_t mix(std::uint64_t x) {  // splitmix64's finaliser: a fixed bijective scrambler of 64 bits
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

double s_curve_area(int b, int r, double lo, double hi, bool above) {
  // integral over [lo, hi] of P(candidate | similarity s) = 1 - (1 - s^r)^b, or of its complement
  const int steps = 200;
  double acc = 0;
  for (int i = 0; i < steps; ++i) {
    const double s = lo + (hi - lo) * (i + 0.5) / steps;
    const double p = 1.0 - std::pow(1.0 - std::pow(s, r), b);
    acc += above ? 1.0 - p : p;
  }
  return acc * (hi - lo) / steps;
}

struct UnionFind {
  std::vector<std::size_t> parent;
  explicit UnionFind(std::size_t n) : parent(n) { std::iota(parent.begin(), parent.end(), 0); }
  std::size_t find(std::size_t x) {
    while (parent[x] != x) x = parent[x] = parent[parent[x]];
    return x;
  }
  void join(std::size_t a, std::size_t b) {  // the smaller root wins: the survivor is the lowest index
    a = find(a), b = find(b);
    if (a != b) parent[std::max(a, b)] = std::min(a, b);
  }
};
}  // namespace

std::pair<int, int> lsh_bands_for(double threshold, int num_perm) {
  std::pair<int, int> best{1, num_perm};
  double best_err = std::numeric_limits<double>::infinity();
  for (int b = 1; b <= num_perm; ++b)
    for (int r = 1; b * r <= num_perm; ++r) {
      const double err = s_curve_area(b, r, 0.0, threshold, false) + s_curve_area(b, r, threshold, 1.0, true);
      if (err < best_err) best_err = err, best = {b, r};
    }
  return best;
}

MinHasher::MinHasher(int num_perm, std::uint64_t seed) {
  for (int i = 0; i < num_perm; ++i) seeds_.push_back(mix(seed + std::uint64_t(i) * 0x632be59bd9b4e019ULL));
}

Signature MinHasher::signature(const std::vector<std::uint64_t>& shingles) const {
  Signature sig(seeds_.size(), std::numeric_limits<std::uint32_t>::max());
  std::vector<std::uint64_t> mins(seeds_.size(), std::numeric_limits<std::uint64_t>::max());
  for (auto x : shingles)
    for (std::size_t p = 0; p < seeds_.size(); ++p) mins[p] = std::min(mins[p], mix(x ^ seeds_[p]));
  if (!shingles.empty())
    for (std::size_t p = 0; p < seeds_.size(); ++p) sig[p] = std::uint32_t(mins[p] >> 32);
  return sig;
}

double estimated_jaccard(const Signature& a, const Signature& b) {
  if (a.empty() || a.size() != b.size()) return 0.0;
  std::size_t same = 0;
  for (std::size_t i = 0; i < a.size(); ++i) same += a[i] == b[i];
  return double(same) / double(a.size());
}

std::vector<NearDuplicate> near_duplicates(const std::vector<Signature>& sigs, int bands, int rows, double threshold,
                                           const std::vector<std::uint64_t>& groups) {
  // A document joins the first earlier member of a shared bucket it is similar enough to; at most kProbe members
  // of a bucket are compared, which bounds the work where thousands of documents collide.
  constexpr std::size_t kProbe = 16;
  UnionFind uf(sigs.size());
  std::unordered_map<std::uint64_t, std::vector<std::size_t>> bucket;  // band key -> first kProbe documents
  for (int b = 0; b < bands; ++b) {
    bucket.clear();
    bucket.reserve(sigs.size());
    for (std::size_t d = 0; d < sigs.size(); ++d) {
      std::uint64_t key = mix(std::uint64_t(b) + 1);
      if (!groups.empty()) key = mix(key ^ groups[d]);  // a bucket never spans two groups
      for (int r = 0; r < rows; ++r) key = mix(key ^ sigs[d][std::size_t(b * rows + r)]);
      auto& members = bucket[key];
      for (auto m : members) {
        if (uf.find(m) == uf.find(d)) break;
        if (estimated_jaccard(sigs[m], sigs[d]) >= threshold) {
          uf.join(m, d);
          break;
        }
      }
      if (members.size() < kProbe) members.push_back(d);
    }
  }
  std::vector<NearDuplicate> out;
  for (std::size_t d = 0; d < sigs.size(); ++d)
    if (auto root = uf.find(d); root != d) out.push_back({d, root, estimated_jaccard(sigs[d], sigs[root])});
  return out;
}

}  // namespace distill::dataset
