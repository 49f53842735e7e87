// common/fs.h: whole-file reads and atomic writes (temp file in the same folder, fsync, rename).
// Every output file distill writes goes through write_file_atomic, so a kill never leaves half a file.
#pragma once

#include <string>
#include <string_view>

namespace distill {

std::string read_file(const std::string& path);  // throws InputError naming the path
void write_file_atomic(const std::string& path, std::string_view bytes);  // throws RuntimeFailure

// Before any work: `path` can become a file that write_file_atomic writes (its folder exists and may be written
// to, and it is not a folder itself); else InputError naming `flag` and the path.
void check_output_file(const std::string& path, const std::string& flag);

}  // namespace distill
