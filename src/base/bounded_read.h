// Reading a whole file into memory, but never more than a stated number of bytes of it: a
// path to something endless (/dev/zero, a pipe that never closes) or merely huge must end
// in an error that names the file and the limit, not in a process that fills memory.
// (base/config.cc reads config files with it, keeping its own error codes.)
#pragma once

#include <cstddef>
#include <string>

#include "base/status.h"

namespace supercluster::base {

// A descriptor open for reading `path`; the caller closes it. kNotFound "PATH: no such
// file", kPermissionDenied "PATH: permission denied", kFailedPrecondition "PATH: is a
// directory" (opening one for reading succeeds, and reading it would fail with EISDIR, which
// a caller looping until end of file may mistake for an empty file), kUnavailable else.
Result<int> OpenForReading(const std::string& path);

// The bytes of `path`, at most `max_bytes` of them: kOutOfRange "PATH: larger than N" when
// there are more (N as FormatBytes writes it: "64KiB"), kUnavailable "PATH: cannot read:
// WHY" for a read error; opening fails as OpenForReading says.
Result<std::string> ReadFileAtMost(const std::string& path, size_t max_bytes);

// The same for a descriptor that is already open (standard input), called `name` in
// errors; `fd` is left open.
Result<std::string> ReadDescriptorAtMost(int fd, const std::string& name, size_t max_bytes);

}  // namespace supercluster::base
