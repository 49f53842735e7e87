// model/cpu_block_cache.h: a caching allocator for large CPU tensor blocks, installed as LibTorch's CPU allocator.
//
// A training step frees and reallocates the same megabytes of activations every step. Left to glibc they either
// go back to the kernel and fault in again (an mmap threshold of 1 MiB cost a 19M-parameter run 27% of its
// throughput on 2 cores) or stay in its heap, where shapes that change from step to step (ragged batches)
// fragment it: that run's RSS crept from 904 to 1,264 MiB over 100 steps while its live tensors peaked at 716-833.
// Here blocks of 256 KiB and up are mapped on their own and kept when freed. A request takes the smallest free block
// at most 12.5% larger than itself; `end_of_step` unmaps the free blocks the last step did not take, and a miss
// unmaps those before it maps more, so the RSS follows the live tensors instead of creeping. Blocks are mapped at
// their own size (whole pages); a long-lived tensor made after a step's blocks were freed (AdamW's moments after the
// first backward) may still take one up to 12.5% larger. Smaller blocks, and any the kernel will not map, go to the
// allocator that was installed before (LibTorch's default). DISTILL_CPU_CACHE=off leaves that one in place.
#pragma once

#include <cstddef>
#include <cstdint>

namespace distill::model::cpu_cache {

// Makes the cache LibTorch's CPU allocator (idempotent; tensors allocated before keep their own deleters), unless
// the environment says DISTILL_CPU_CACHE=off.
void install();

// Unmaps the cached free blocks that no allocation took since the previous call. A loop calls it once a step; a
// no-op when the cache is not installed.
void end_of_step();

struct Stats {
  std::int64_t live_bytes = 0;    // handed out and not yet returned (after rounding)
  std::int64_t cached_bytes = 0;  // free, kept for reuse
  std::int64_t maps = 0;          // blocks mapped so far
  std::int64_t reuses = 0;        // allocations served from the cache
};
Stats stats();

// The size a request of `n` bytes is mapped with: whole pages from 256 KiB; n itself below (not the cache's).
std::size_t block_size(std::size_t n);

}  // namespace distill::model::cpu_cache
