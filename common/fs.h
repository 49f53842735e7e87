// common/fs.h: whole-file reads and atomic writes (temp file in the same folder, fsync, rename).
// Every output file distill writes goes through write_file_atomic, so a kill never leaves half a file.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace distill {

std::string read_file(const std::string& path);  // throws InputError naming the path
// Writes through a symlink to its target; InputError if `path` is a folder, device or pipe; RuntimeFailure if
// the write fails.
void write_file_atomic(const std::string& path, std::string_view bytes);
// The message for a failed write of `path` with errno `e`: a full disk says so, and what to do.
std::string write_failure(const std::string& path, int e);
// The same for a file made of parts, written in order without joining them (large files: no second copy).
void write_file_atomic(const std::string& path, const std::vector<std::string_view>& parts);

// Before any work: `path` can become a file that write_file_atomic writes (its folder exists and may be written
// to; it is not a folder, device or pipe; it is none of the files in `keep`, e.g. the store being read); else
// InputError naming `flag` and the path.
void check_output_file(const std::string& path, const std::string& flag, const std::vector<std::string>& keep = {});

// The same for an output folder: InputError when `dir` exists and is not a folder (check_output_dir, before any
// work) or cannot be made (make_output_dir, which creates it with its parents).
void check_output_dir(const std::string& dir, const std::string& flag);
void make_output_dir(const std::string& dir, const std::string& flag);

// fsync of a folder, so that renames into it are durable; RuntimeFailure naming it when it cannot be opened.
void sync_directory(const std::string& dir);

// Where an atomic write of `path` lands: a symlink's target (the link stays), the path itself otherwise.
// InputError when it exists and is not a regular file.
std::string output_target(const std::string& path);

}  // namespace distill
