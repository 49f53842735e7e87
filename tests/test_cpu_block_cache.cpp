// tests/test_cpu_block_cache.cpp: the CPU block cache (model/cpu_block_cache.h): page-rounded sizes, reuse of a freed
// block up to 12.5% larger, a step that leaves a block unused giving it back, a miss unmapping unused blocks before
// it maps more, raw allocations of either size, and the order equal sizes are taken in. It is installed here for
// the whole test binary, as distill-torch installs it, so every LibTorch test in this binary (the training
// equivalences among them) runs on it.
#include <c10/core/CPUAllocator.h>
#include <catch2/catch.hpp>
#include <torch/torch.h>

#include "model/cpu_block_cache.h"

namespace cache = distill::model::cpu_cache;

namespace {
const bool installed = (cache::install(), true);
constexpr std::int64_t MiB = 1 << 20;

torch::Tensor bytes(std::int64_t n) { return torch::empty({n}, torch::kUInt8); }
// Read in place: a reduction would allocate (and so map) a block of its own.
bool filled_with(const torch::Tensor& t, std::uint8_t v) {
  const auto* p = t.data_ptr<std::uint8_t>();
  for (std::int64_t i = 0; i < t.numel(); ++i)
    if (p[i] != v) return false;
  return true;
}
}  // namespace

TEST_CASE("cpu block cache: whole pages from 256 KiB, smaller requests untouched") {
  REQUIRE(installed);
  CHECK(cache::block_size(256 * 1024 - 1) == std::size_t(256 * 1024 - 1));
  CHECK(cache::block_size(256 * 1024) == std::size_t(256 * 1024));
  CHECK(cache::block_size(256 * 1024 + 1) == std::size_t(256 * 1024 + 4096));
  CHECK(cache::block_size(3 * MiB - 4095) == std::size_t(3 * MiB));
}

TEST_CASE("cpu block cache: a freed block is reused up to 12.5% larger, one a step left unused is unmapped, a miss "
          "makes room first") {
  REQUIRE(installed);
  cache::end_of_step();
  cache::end_of_step();  // whatever earlier tests left is gone now
  const auto s0 = cache::stats();
  CHECK(s0.cached_bytes == 0);
  void* first = nullptr;
  {
    auto a = bytes(8 * MiB);
    first = a.data_ptr();
    a.fill_(3);
    CHECK(filled_with(a, 3));
  }
  auto s1 = cache::stats();
  CHECK(s1.maps == s0.maps + 1);
  CHECK(s1.cached_bytes == 8 * MiB);  // kept
  {
    auto b = bytes(7 * MiB + MiB / 4);  // 8 MiB is within 12.5% of it: the same block, written as this tensor
    CHECK(b.data_ptr() == first);
    b.fill_(1);
    CHECK(filled_with(b, 1));
    auto c = bytes(7 * MiB + MiB / 4);  // the only 8 MiB block is taken: a new one, of this size
    CHECK(c.data_ptr() != first);
    CHECK(cache::stats().maps == s1.maps + 1);
  }
  auto s2 = cache::stats();
  CHECK(s2.reuses == s1.reuses + 1);
  CHECK(s2.cached_bytes == 8 * MiB + 7 * MiB + MiB / 4);
  {
    auto d = bytes(6 * MiB);  // the smallest free block, 7.25 MiB, is over 12.5% larger than it...
    CHECK(cache::stats().maps == s2.maps + 1);  // ...so it is mapped anew
  }

  cache::end_of_step();  // all three were taken this step: kept
  CHECK(cache::stats().cached_bytes == 8 * MiB + 7 * MiB + MiB / 4 + 6 * MiB);
  { auto e = bytes(8 * MiB); }
  cache::end_of_step();  // the two not taken since are unmapped
  CHECK(cache::stats().cached_bytes == 8 * MiB);
  {
    auto f = bytes(20 * MiB);  // a miss: the 8 MiB block, free and not taken since the step's end, goes first
    CHECK(cache::stats().cached_bytes == 0);
    CHECK(cache::stats().live_bytes == s0.live_bytes + 20 * MiB);
  }
  { auto small = bytes(100 * 1024); }  // under 256 KiB: not the cache's
  CHECK(cache::stats().cached_bytes == 20 * MiB);
}

TEST_CASE("cpu block cache: raw allocations of either size return through the raw deleter, the block freed last is "
          "taken first") {
  REQUIRE(installed);
  cache::end_of_step();
  cache::end_of_step();
  auto* alloc = c10::GetCPUAllocator();
  void* big = alloc->raw_allocate(2 * MiB);
  void* small = alloc->raw_allocate(1000);
  REQUIRE(big);
  REQUIRE(small);
  alloc->raw_deallocate(small);  // the allocator before the cache frees it
  alloc->raw_deallocate(big);
  CHECK(cache::stats().cached_bytes == 2 * MiB);

  void* first = nullptr;
  {
    auto x = bytes(3 * MiB);
    auto y = bytes(3 * MiB);
    first = x.data_ptr();
  }  // y goes back first, then x
  auto z = bytes(3 * MiB);
  CHECK(z.data_ptr() == first);
}
