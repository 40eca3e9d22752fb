#include "controller/child_process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <deque>
#include <fstream>
#include <thread>

namespace supercluster::controller {

base::Result<pid_t> SpawnDetached(const std::vector<std::string>& argv,
                                  const std::filesystem::path& log_file, bool die_with_caller) {
  if (argv.empty()) return base::InvalidArgument("no program to start");
  int log_fd = ::open(log_file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (log_fd < 0) {
    return base::Unavailable(log_file.string() + ": cannot open for writing: " + std::strerror(errno));
  }
  // Everything the child needs is prepared before fork: after it, only async-signal-safe
  // calls may run.
  std::vector<char*> args;
  for (const std::string& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
  args.push_back(nullptr);
  // The pipe tells the parent whether exec worked (it closes on exec, or carries errno).
  int status_pipe[2];
  if (::pipe2(status_pipe, O_CLOEXEC) != 0) {
    ::close(log_fd);
    return base::Unavailable(std::string("pipe: ") + std::strerror(errno));
  }
  const pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0) {
    int error = errno;
    ::close(log_fd);
    ::close(status_pipe[0]);
    ::close(status_pipe[1]);
    return base::Unavailable(std::string("fork: ") + std::strerror(error));
  }
  if (pid == 0) {
    ::setsid();
    // The parent may have died between fork and prctl; then there is no one to wait for.
    if (die_with_caller &&
        (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || ::getppid() != parent)) {
      ::_exit(127);
    }
    int null_fd = ::open("/dev/null", O_RDONLY);
    if (null_fd >= 0) ::dup2(null_fd, STDIN_FILENO);
    ::dup2(log_fd, STDOUT_FILENO);
    ::dup2(log_fd, STDERR_FILENO);
    ::execv(args[0], args.data());
    int error = errno;
    ssize_t ignored = ::write(status_pipe[1], &error, sizeof(error));
    (void)ignored;
    ::_exit(127);
  }
  ::close(log_fd);
  ::close(status_pipe[1]);
  int exec_error = 0;
  ssize_t got;
  do {
    got = ::read(status_pipe[0], &exec_error, sizeof(exec_error));
  } while (got < 0 && errno == EINTR);
  ::close(status_pipe[0]);
  if (got == sizeof(exec_error)) {
    ::waitpid(pid, nullptr, 0);
    return base::Unavailable(argv[0] + ": cannot start: " + std::strerror(exec_error));
  }
  return pid;
}

bool ProcessRunning(pid_t pid, const std::filesystem::path& program) {
  if (pid <= 0) return false;
  // A child of ours that exited is a zombie until reaped; reap it so it reads as gone.
  int status;
  if (::waitpid(pid, &status, WNOHANG) == pid) return false;
  std::error_code error;
  std::string exe =
      std::filesystem::read_symlink("/proc/" + std::to_string(pid) + "/exe", error).string();
  if (error) return false;
  // A binary rebuilt while the cluster runs reads as "PATH (deleted)"; it is still ours.
  constexpr std::string_view kDeleted = " (deleted)";
  if (exe.size() > kDeleted.size() && exe.ends_with(kDeleted)) {
    exe.resize(exe.size() - kDeleted.size());
  }
  std::filesystem::path expected = std::filesystem::weakly_canonical(program, error);
  return exe == expected.string() || exe == program.string();
}

bool SignalProcess(pid_t pid, const std::filesystem::path& program, int signal) {
  if (!ProcessRunning(pid, program)) return false;
  return ::kill(pid, signal) == 0;
}

bool WaitForExit(pid_t pid, const std::filesystem::path& program,
                 std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (ProcessRunning(pid, program)) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return true;
}

std::string TailOfFile(const std::filesystem::path& path, size_t lines) {
  std::ifstream in(path);
  std::deque<std::string> last;
  std::string line;
  while (std::getline(in, line)) {
    last.push_back(line);
    if (last.size() > lines) last.pop_front();
  }
  std::string out;
  for (const std::string& kept : last) out += kept + "\n";
  return out;
}

namespace {

// Whether a child of the caller is still running (not exited, or exited and not yet reaped
// by this call).
bool ChildAlive(pid_t pid) {
  int status;
  return ::waitpid(pid, &status, WNOHANG) == 0;
}

}  // namespace

base::Result<std::string> WaitForLogLine(const std::filesystem::path& log_file,
                                         const std::string& marker, pid_t pid,
                                         std::chrono::milliseconds timeout,
                                         const std::function<bool()>& interrupted) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  std::streamoff offset = 0;
  while (true) {
    std::ifstream in(log_file);
    in.seekg(offset);
    std::string line;
    while (std::getline(in, line)) {
      if (in.eof()) break;  // no newline yet: the line may still be growing
      offset += static_cast<std::streamoff>(line.size() + 1);
      if (line.find(marker) != std::string::npos) return line;
    }
    if (!ChildAlive(pid)) {
      return base::Unavailable(log_file.filename().string() + ": the process exited before '" +
                               marker + "'; the end of its log:\n" + TailOfFile(log_file, 15));
    }
    if (interrupted && interrupted()) {
      return base::Cancelled("interrupted while waiting for " + log_file.filename().string());
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      return base::DeadlineExceeded(log_file.filename().string() + ": no '" + marker +
                                    "' after " + std::to_string(timeout.count()) +
                                    " ms; the end of its log:\n" + TailOfFile(log_file, 15));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

}  // namespace supercluster::controller
