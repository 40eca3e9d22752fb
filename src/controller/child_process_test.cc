#include "controller/child_process.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <thread>
#include <gtest/gtest.h>

namespace supercluster::controller {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;

class ChildProcessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("child-process-test-" + std::to_string(::getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override {
    if (pid_ > 0) {
      SignalProcess(pid_, "/bin/sh", SIGKILL);
      WaitForExit(pid_, "/bin/sh", milliseconds(2000));
    }
    fs::remove_all(dir_);
  }
  fs::path dir_;
  pid_t pid_ = 0;
};

TEST_F(ChildProcessTest, StartsWaitsForItsLineAndStopsIt) {
  fs::path log = dir_ / "child.log";
  auto pid = SpawnDetached({"/bin/sh", "-c", "echo starting; sleep 0.2; echo 'x serving on tcp://1.2.3.4:5'; exec sleep 30"}, log);
  ASSERT_TRUE(pid.ok()) << pid.status().ToString();
  pid_ = *pid;
  auto line = WaitForLogLine(log, "serving on", pid_, milliseconds(5000));
  ASSERT_TRUE(line.ok()) << line.status().ToString();
  EXPECT_EQ(*line, "x serving on tcp://1.2.3.4:5");
  // Once `exec sleep` has replaced the shell, the process no longer runs /bin/sh, so a check
  // by program refuses to signal it (this is what protects a reused pid). The exec follows
  // the line, and on a busy machine it can come some time later.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (ProcessRunning(pid_, "/bin/sh") && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(milliseconds(10));
  }
  EXPECT_FALSE(ProcessRunning(pid_, "/bin/sh"));
  EXPECT_EQ(::kill(pid_, 0), 0);
  ::kill(pid_, SIGKILL);
  pid_ = 0;
}

// A child started with die_with_caller goes when the thread that started it ends.
TEST_F(ChildProcessTest, AChildTiedToItsCallerDiesWithIt) {
  pid_t child = 0;
  std::thread caller([&] {
    auto pid = SpawnDetached({"/bin/sh", "-c", "exec sleep 30"}, dir_ / "tied.log",
                             /*die_with_caller=*/true);
    ASSERT_TRUE(pid.ok());
    child = *pid;
    ASSERT_TRUE(WaitForLogLine(dir_ / "tied.log", "never", child, milliseconds(200))
                    .status().code() == base::StatusCode::kDeadlineExceeded);
  });
  caller.join();
  ASSERT_GT(child, 0);
  bool gone = false;
  for (int i = 0; i < 250 && !gone; ++i) {
    gone = ::kill(child, 0) != 0 || ::waitpid(child, nullptr, WNOHANG) == child;
    std::this_thread::sleep_for(milliseconds(20));
  }
  EXPECT_TRUE(gone) << "the child outlived the thread that started it";
}

TEST_F(ChildProcessTest, SignalStopsARunningChild) {
  auto pid = SpawnDetached({"/bin/sh", "-c", "while true; do sleep 1; done"}, dir_ / "loop.log");
  ASSERT_TRUE(pid.ok());
  pid_ = *pid;
  EXPECT_TRUE(ProcessRunning(pid_, "/bin/sh"));
  EXPECT_TRUE(SignalProcess(pid_, "/bin/sh", SIGTERM));
  EXPECT_TRUE(WaitForExit(pid_, "/bin/sh", milliseconds(5000)));
  EXPECT_FALSE(ProcessRunning(pid_, "/bin/sh"));
  EXPECT_FALSE(SignalProcess(pid_, "/bin/sh", SIGTERM));  // gone: nothing is signalled
  pid_ = 0;
}

// A developer rebuilds the binary while the cluster runs: /proc/PID/exe then reads
// "PATH (deleted)", and `down` must still stop the process.
TEST_F(ChildProcessTest, AProcessWhoseBinaryWasReplacedIsStillRecognised) {
  fs::path copy = dir_ / "sleeper";
  fs::copy_file("/bin/sleep", copy);
  auto pid = SpawnDetached({copy.string(), "30"}, dir_ / "sleeper.log");
  ASSERT_TRUE(pid.ok());
  ASSERT_TRUE(ProcessRunning(*pid, copy));
  fs::remove(copy);
  fs::copy_file("/bin/true", copy);  // the "rebuilt" binary at the same path
  EXPECT_TRUE(ProcessRunning(*pid, copy));
  EXPECT_FALSE(ProcessRunning(*pid, "/bin/sleep"));
  EXPECT_TRUE(SignalProcess(*pid, copy, SIGKILL));
  EXPECT_TRUE(WaitForExit(*pid, copy, milliseconds(5000)));
}

TEST_F(ChildProcessTest, AChildThatExitsEarlyFailsTheWaitWithItsLog) {
  fs::path log = dir_ / "early.log";
  auto pid = SpawnDetached({"/bin/sh", "-c", "echo 'fatal: no model'; exit 3"}, log);
  ASSERT_TRUE(pid.ok());
  auto line = WaitForLogLine(log, "serving on", *pid, milliseconds(5000));
  ASSERT_FALSE(line.ok());
  EXPECT_EQ(line.status().code(), base::StatusCode::kUnavailable);
  EXPECT_NE(line.status().message().find("fatal: no model"), std::string::npos)
      << line.status().message();
}

TEST_F(ChildProcessTest, WaitingTimesOut) {
  fs::path log = dir_ / "quiet.log";
  auto pid = SpawnDetached({"/bin/sh", "-c", "sleep 30"}, log);
  ASSERT_TRUE(pid.ok());
  pid_ = *pid;
  auto line = WaitForLogLine(log, "serving on", pid_, milliseconds(200));
  ASSERT_FALSE(line.ok());
  EXPECT_EQ(line.status().code(), base::StatusCode::kDeadlineExceeded);
}

TEST_F(ChildProcessTest, AProgramThatCannotRunIsAnError) {
  auto pid = SpawnDetached({"/nonexistent/program"}, dir_ / "none.log");
  ASSERT_FALSE(pid.ok());
  EXPECT_NE(pid.status().message().find("/nonexistent/program"), std::string::npos);
  EXPECT_FALSE(SpawnDetached({}, dir_ / "none.log").ok());
  EXPECT_FALSE(SpawnDetached({"/bin/true"}, "/nonexistent/dir/log").ok());
}

TEST_F(ChildProcessTest, TailKeepsTheLastLines) {
  fs::path file = dir_ / "lines";
  std::ofstream(file) << "1\n2\n3\n4\n";
  EXPECT_EQ(TailOfFile(file, 2), "3\n4\n");
  EXPECT_EQ(TailOfFile(dir_ / "missing", 2), "");
}

}  // namespace
}  // namespace supercluster::controller
