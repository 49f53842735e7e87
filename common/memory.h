// common/memory.h: this process's and this machine's memory, as Linux reports it (0 where it cannot be read):
// resident set size now and at its peak (getrusage), and /proc/meminfo's MemTotal and MemAvailable.
#pragma once

#include <cstdint>

namespace distill {

std::int64_t current_rss_bytes();
std::int64_t peak_rss_bytes();
std::int64_t total_ram_bytes();
std::int64_t available_ram_bytes();

}  // namespace distill
