// Starting and stopping the separate processes of a local cluster (`supercluster up`): each
// child runs in its own session (so a terminal's Ctrl-C or the launcher's exit does not
// reach it), with stdin from /dev/null and stdout and stderr appended to its log file.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "base/status.h"

namespace supercluster::controller {

// Starts `argv[0]` (an absolute path) with `argv`; returns its pid. The child outlives the
// caller (stop it with SignalProcess()), unless `die_with_caller`: then the kernel kills it
// when the calling thread ends, so a test that crashes leaves no cluster behind.
base::Result<pid_t> SpawnDetached(const std::vector<std::string>& argv,
                                  const std::filesystem::path& log_file,
                                  bool die_with_caller = false);

// Whether `pid` is alive and still runs the program `program` (its /proc/PID/exe), so that
// a pid reused by the system after the child exited is never signalled.
bool ProcessRunning(pid_t pid, const std::filesystem::path& program);

// Sends `signal` to the process if ProcessRunning(); false if it was not.
bool SignalProcess(pid_t pid, const std::filesystem::path& program, int signal);

// Waits until the process is gone or `timeout` elapses; true when it is gone. Reaps it if
// it is the caller's child.
bool WaitForExit(pid_t pid, const std::filesystem::path& program,
                 std::chrono::milliseconds timeout);

// Waits until `log_file` holds a line containing `marker`, returning that line. Fails early
// with the log's tail when the process exits first, with kDeadlineExceeded at `timeout`, and
// with kCancelled as soon as `interrupted` (when given) returns true.
// Precondition: `pid` is the caller's child (it may still be a wrapper such as
// `ip netns exec` that has not yet started the program).
base::Result<std::string> WaitForLogLine(const std::filesystem::path& log_file,
                                         const std::string& marker, pid_t pid,
                                         std::chrono::milliseconds timeout,
                                         const std::function<bool()>& interrupted = {});

// The last `lines` lines of a text file ("" when it cannot be read).
std::string TailOfFile(const std::filesystem::path& path, size_t lines);

}  // namespace supercluster::controller
