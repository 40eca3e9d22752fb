#include "cli/cli_files.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
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
