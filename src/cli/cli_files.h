// Whole-file reads and writes for the CLI commands, with errors that name the file.
#pragma once

#include <string>

#include "base/status.h"

namespace supercluster::cli {

// The file's bytes; "-" reads standard input.
base::Result<std::string> ReadWholeFile(const std::string& path);
// Writes `bytes` to `path` (created with `mode`, truncated); "-" writes standard output.
base::Status WriteWholeFile(const std::string& path, const std::string& bytes, int mode = 0644);

}  // namespace supercluster::cli
