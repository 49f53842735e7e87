// common/fs.cpp: see fs.h.
#include "common/fs.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/errors.h"

namespace distill {

std::string read_file(const std::string& path) {
  if (std::filesystem::is_directory(path)) throw InputError(path + ": is a directory, not a file");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(path + ": cannot open: " + std::strerror(errno));
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string output_target(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::path target = path;
  // A link is written through (its target replaced, even one not there yet), not replaced by a plain file.
  for (int hops = 0; fs::is_symlink(fs::symlink_status(target, ec)); ++hops) {
    if (hops == 40) throw InputError(path + ": too many levels of links");
    const auto next = fs::read_symlink(target, ec);
    if (ec) throw InputError(path + ": cannot read the link (" + ec.message() + ")");
    target = next.is_absolute() ? next : target.parent_path() / next;
  }
  if (fs::exists(target, ec) && !fs::is_regular_file(target, ec))
    throw InputError(path + ": exists and is not a regular file (a folder, device or pipe); name a file");
  return target.string();
}

void check_output_file(const std::string& path, const std::string& flag, const std::vector<std::string>& keep) {
  namespace fs = std::filesystem;
  const auto what = flag + " " + path + ": ";
  if (path.empty()) throw InputError(flag + ": expected a file path");
  if (fs::is_directory(path)) throw InputError(what + "is a directory; name a file");
  const auto target = output_target(path);
  const auto dir = fs::path(target).parent_path().empty() ? fs::path(".") : fs::path(target).parent_path();
  if (!fs::is_directory(dir)) throw InputError(what + "the folder " + dir.string() + " does not exist");
  if (::access(dir.c_str(), W_OK) != 0) throw InputError(what + "the folder " + dir.string() + " is not writable");
  std::error_code ec;
  for (const auto& k : keep)
    if (!k.empty() && fs::exists(target) && fs::equivalent(target, k, ec))
      throw InputError(what + "is " + k + " itself; writing there would destroy it");
}

void check_output_dir(const std::string& dir, const std::string& flag) {
  if (std::filesystem::exists(dir) && !std::filesystem::is_directory(dir))
    throw InputError(flag + " " + dir + ": exists and is not a directory");
}

void make_output_dir(const std::string& dir, const std::string& flag) {
  check_output_dir(dir, flag);
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw InputError(flag + " " + dir + ": cannot create the directory (" + ec.message() + ")");
}

void sync_directory(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) throw RuntimeFailure(dir + ": cannot open the folder to sync it: " + std::strerror(errno));
  ::fsync(fd);  // some filesystems refuse fsync on a folder (EINVAL); the rename is still made
  ::close(fd);
}

void write_file_atomic(const std::string& path_in, std::string_view bytes) {
  write_file_atomic(path_in, std::vector<std::string_view>{bytes});
}

std::string write_failure(const std::string& path, int e) {
  if (e == ENOSPC || e == EDQUOT)
    return path + ": the disk is full (" + std::strerror(e) + "); nothing was written under the final name: free "
                  "space and run the same command again";
  return path + ": write failed: " + std::strerror(e);
}

void write_file_atomic(const std::string& path_in, const std::vector<std::string_view>& parts) {
  const std::string path = output_target(path_in);
  std::string tmp = path + ".tmp." + std::to_string(::getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw RuntimeFailure(path + ": cannot create " + tmp + ": " + std::strerror(errno));
  for (const auto bytes : parts) {
    const char* p = bytes.data();
    std::size_t left = bytes.size();
    while (left) {
      ssize_t w = ::write(fd, p, left);
      if (w < 0) {
        if (errno == EINTR) continue;
        int e = errno;
        ::close(fd);
        ::unlink(tmp.c_str());
        throw RuntimeFailure(write_failure(tmp, e));
      }
      p += w;
      left -= std::size_t(w);
    }
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {  // a full disk may first show here
    const int e = errno;
    ::unlink(tmp.c_str());
    throw RuntimeFailure(write_failure(tmp, e));
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    int e = errno;
    ::unlink(tmp.c_str());
    throw RuntimeFailure(path + ": rename failed: " + std::strerror(e));
  }
}

}  // namespace distill
