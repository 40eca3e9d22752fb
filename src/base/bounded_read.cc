#include "base/bounded_read.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "base/config_value.h"

namespace supercluster::base {

Result<int> OpenForReading(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int error = errno;
    if (error == ENOENT) return NotFound(path + ": no such file");
    if (error == EACCES) return PermissionDenied(path + ": permission denied");
    return Unavailable(path + ": cannot open: " + std::strerror(error));
  }
  struct stat info {};
  if (::fstat(fd, &info) == 0 && S_ISDIR(info.st_mode)) {
    ::close(fd);
    return FailedPrecondition(path + ": is a directory");
  }
  return fd;
}

Result<std::string> ReadDescriptorAtMost(int fd, const std::string& name, size_t max_bytes) {
  struct stat info {};
  if (::fstat(fd, &info) == 0 && S_ISDIR(info.st_mode)) {
    return FailedPrecondition(name + ": is a directory");
  }
  std::string contents;
  char buffer[64 * 1024];
  while (true) {
    ssize_t count = ::read(fd, buffer, sizeof(buffer));
    if (count < 0 && errno == EINTR) continue;
    if (count < 0) {
      int error = errno;
      return Unavailable(name + ": cannot read: " + std::strerror(error));
    }
    if (count == 0) return contents;
    // Checked before appending, so that at most max_bytes are ever held.
    if (static_cast<size_t>(count) > max_bytes - contents.size()) {
      return OutOfRange(name + ": larger than " + FormatBytes(static_cast<int64_t>(max_bytes)));
    }
    contents.append(buffer, static_cast<size_t>(count));
  }
}

Result<std::string> ReadFileAtMost(const std::string& path, size_t max_bytes) {
  SC_ASSIGN_OR_RETURN(int fd, OpenForReading(path));
  Result<std::string> contents = ReadDescriptorAtMost(fd, path, max_bytes);
  ::close(fd);
  return contents;
}

}  // namespace supercluster::base
