// common/memory.cpp: see memory.h.
#include "common/memory.h"

#include <sys/resource.h>
#include <unistd.h>

#include <fstream>
#include <string>

namespace distill {

namespace {

std::int64_t meminfo(const std::string& key) {
  std::ifstream f("/proc/meminfo");
  std::string name, unit;
  std::int64_t kb = 0;
  while (f >> name >> kb >> unit)
    if (name == key + ":") return kb * 1024;
  return 0;
}

}  // namespace

std::int64_t current_rss_bytes() {
  std::ifstream f("/proc/self/statm");
  std::int64_t size = 0, resident = 0;
  if (!(f >> size >> resident)) return 0;
  return resident * std::int64_t(sysconf(_SC_PAGESIZE));
}

std::int64_t peak_rss_bytes() {
  rusage u{};
  if (getrusage(RUSAGE_SELF, &u) != 0) return 0;
  return std::int64_t(u.ru_maxrss) * 1024;  // kilobytes on Linux
}

std::int64_t total_ram_bytes() { return meminfo("MemTotal"); }
std::int64_t available_ram_bytes() { return meminfo("MemAvailable"); }

}  // namespace distill
