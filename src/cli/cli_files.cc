#include "cli/cli_files.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>

namespace supercluster::cli {

base::Result<std::string> ReadWholeFile(const std::string& path) {
  std::ostringstream contents;
  if (path == "-") {
    contents << std::cin.rdbuf();
    return contents.str();
  }
  std::ifstream file(path, std::ios::binary);
  if (!file) return base::NotFound(path + ": cannot open");
  contents << file.rdbuf();
  return contents.str();
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

}  // namespace supercluster::cli
