#include "cli/cli_files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <iostream>

#include "base/bounded_read.h"
#include "base/config_value.h"

namespace supercluster::cli {
namespace {

constexpr int64_t kMaxInBytesCeiling = int64_t{256} << 20;  // enclave.max_frame_bytes's max

}  // namespace

base::Result<std::string> ReadWholeFile(const std::string& path, const ReadLimit& limit) {
  base::Result<std::string> contents =
      path == "-" ? base::ReadDescriptorAtMost(STDIN_FILENO, "standard input", limit.max_bytes)
                  : base::ReadFileAtMost(path, limit.max_bytes);
  if (!contents.ok() && contents.status().code() == base::StatusCode::kOutOfRange) {
    return base::OutOfRange(contents.status().message() + ", " + limit.note);
  }
  return contents;
}

base::Status WriteWholeFile(const std::string& path, const std::string& bytes, int mode) {
  if (path == "-") {
    std::cout.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    std::cout.flush();
    return std::cout ? base::Status::Ok() : base::Unavailable("writing standard output failed");
  }
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) return base::PermissionDenied(path + ": " + std::strerror(errno));
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t written = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (written < 0 && errno == EINTR) continue;
    if (written < 0) {
      base::Status status = base::Unavailable(path + ": " + std::strerror(errno));
      ::close(fd);
      return status;
    }
    done += static_cast<size_t>(written);
  }
  if (::close(fd) != 0) return base::Unavailable(path + ": " + std::strerror(errno));
  return base::Status::Ok();
}

namespace {

// `path` made absolute with ".", ".." and symbolic links resolved, also a link whose target
// does not exist yet (writing through it creates that target); as far as it can be resolved.
std::filesystem::path Resolved(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code error;
  fs::path resolved = fs::absolute(path, error).lexically_normal();
  for (int links = 0; links < 40; ++links) {  // 40: Linux's limit on links in one lookup
    fs::path canonical = fs::weakly_canonical(resolved, error);
    if (error) break;
    resolved = canonical;
    if (!fs::is_symlink(fs::symlink_status(resolved, error))) break;
    fs::path target = fs::read_symlink(resolved, error);
    if (error) break;
    resolved = (resolved.parent_path() / target).lexically_normal();  // `/` keeps an absolute target
  }
  return resolved;
}

}  // namespace

bool SameFile(const std::string& a, const std::string& b) {
  if (Resolved(a) == Resolved(b)) return true;
  struct stat info_a {}, info_b {};
  return ::stat(a.c_str(), &info_a) == 0 && ::stat(b.c_str(), &info_b) == 0 &&
         info_a.st_dev == info_b.st_dev && info_a.st_ino == info_b.st_ino;
}

void MaxInBytesFlag::Register(base::FlagSet& flags) {
  flags.AddString("max-in-bytes", &text_,
                  "read at most this much of --in (e.g. 16MiB; up to 256MiB); a sealed request "
                  "must also fit the enclave's enclave.max_frame_bytes");
}

base::Result<ReadLimit> MaxInBytesFlag::Limit() const {
  auto parsed = base::ParseTypedValue(base::ConfigType::kBytes, text_);
  if (!parsed.ok() || parsed->integer < 1 || parsed->integer > kMaxInBytesCeiling) {
    return base::InvalidArgument("--max-in-bytes " + text_ + ": expected a size from 1 to " +
                                 base::FormatBytes(kMaxInBytesCeiling) + ", e.g. 16MiB");
  }
  return ReadLimit{static_cast<size_t>(parsed->integer), "the limit --max-in-bytes sets"};
}

}  // namespace supercluster::cli
