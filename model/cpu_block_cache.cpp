// model/cpu_block_cache.cpp: see cpu_block_cache.h.
#include "model/cpu_block_cache.h"

#include <c10/core/Allocator.h>
#include <c10/core/CPUAllocator.h>
#include <c10/util/Exception.h>
#include <sys/mman.h>

#include <cstdlib>
#include <cstring>
#include <string>
#include <map>
#include <mutex>
#include <unordered_map>

namespace distill::model::cpu_cache {

namespace {

constexpr std::size_t kMinBlock = std::size_t(256) << 10;
constexpr std::size_t kPage = 4096;

struct FreeBlock {
  void* p;
  bool taken_since_trim;  // false: the last end_of_step saw it free and nothing took it since
};

class BlockCache final : public c10::Allocator {
 public:
  explicit BlockCache(c10::Allocator* small) : small_(small) {}

  c10::DataPtr allocate(std::size_t n) override {
    if (n < kMinBlock) return small_->allocate(n);
    const auto size = block_size(n);
    void* p = take(size);
    if (!p) return small_->allocate(n);  // no mapping to be had: the allocator before it may still find room
    return {p, p, &release_any, c10::Device(c10::DeviceType::CPU)};
  }

  // Both kinds of block come back through one deleter that tells them apart (raw_allocate hands out either).
  c10::DeleterFnPtr raw_deleter() const override { return &release_any; }
  void copy_data(void* dest, const void* src, std::size_t count) const override { std::memcpy(dest, src, count); }

  // False when p is not one of its blocks.
  bool give_back(void* p) {
    std::lock_guard<std::mutex> lock(mu_);
    const auto it = sizes_.find(p);
    if (it == sizes_.end()) return false;
    // before its equals, so the next request of this size takes the block freed last, still warm in the caches
    free_.emplace_hint(free_.lower_bound(it->second), it->second, FreeBlock{p, true});
    stats_.live_bytes -= std::int64_t(it->second);
    stats_.cached_bytes += std::int64_t(it->second);
    return true;
  }

  c10::Allocator* small() const { return small_; }

  void trim() {
    std::lock_guard<std::mutex> lock(mu_);
    unmap_untaken(SIZE_MAX);
    for (auto& [size, b] : free_) b.taken_since_trim = false;
  }

  Stats stats() {
    std::lock_guard<std::mutex> lock(mu_);
    return stats_;
  }

 private:
  void* take(std::size_t size) {
    std::lock_guard<std::mutex> lock(mu_);
    const auto fit = free_.lower_bound(size);
    if (fit != free_.end() && fit->first <= size + size / 8) {
      void* p = fit->second.p;
      stats_.cached_bytes -= std::int64_t(fit->first);
      stats_.live_bytes += std::int64_t(fit->first);
      ++stats_.reuses;
      free_.erase(fit);
      return p;
    }
    unmap_untaken(size);  // what the last step left unused makes room before the RSS grows
    void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
      while (!free_.empty()) unmap(free_.begin());  // give every cached block back, then retry once
      p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      // Out of memory, or of mappings (vm.max_map_count): the caller falls back to the allocator before this one.
      if (p == MAP_FAILED) return nullptr;
    }
    sizes_[p] = size;
    stats_.live_bytes += std::int64_t(size);
    ++stats_.maps;
    return p;
  }

  // Unmaps free blocks nothing took since the last trim, until `want` bytes are released or none are left.
  void unmap_untaken(std::size_t want) {
    std::size_t released = 0;
    for (auto it = free_.begin(); it != free_.end() && released < want;) {
      if (it->second.taken_since_trim) { ++it; continue; }
      released += it->first;
      it = unmap(it);
    }
  }

  std::multimap<std::size_t, FreeBlock>::iterator unmap(std::multimap<std::size_t, FreeBlock>::iterator it) {
    munmap(it->second.p, it->first);
    sizes_.erase(it->second.p);
    stats_.cached_bytes -= std::int64_t(it->first);
    return free_.erase(it);
  }

  static void release_any(void* p);

  c10::Allocator* small_;
  std::mutex mu_;
  std::multimap<std::size_t, FreeBlock> free_;                     // by block size
  std::unordered_map<void*, std::size_t> sizes_;                   // every mapped block, free or handed out
  Stats stats_;
};

BlockCache* g_cache = nullptr;

void BlockCache::release_any(void* p) {
  if (p && !g_cache->give_back(p)) g_cache->small()->raw_deleter()(p);
}

}  // namespace

std::size_t block_size(std::size_t n) { return n < kMinBlock ? n : (n + kPage - 1) / kPage * kPage; }

void install() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (const char* v = std::getenv("DISTILL_CPU_CACHE"); v && std::string(v) == "off") return;
    // Never destroyed: tensors freed during static destruction still return their blocks to it.
    g_cache = new BlockCache(c10::GetCPUAllocator());
    c10::SetCPUAllocator(g_cache, /*priority=*/1);
  });
}

void end_of_step() {
  if (g_cache) g_cache->trim();
}

Stats stats() { return g_cache ? g_cache->stats() : Stats{}; }

}  // namespace distill::model::cpu_cache
