// Tests of the bounded whole-file read: a file within the limit comes back whole; one past
// it, an endless device, a directory and a missing file are each refused with the path.
#include "base/bounded_read.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace supercluster::base {
namespace {

class BoundedReadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (std::filesystem::temp_directory_path() / "bounded_read.XXXXXX").string();
    directory_ = mkdtemp(pattern.data());
  }
  void TearDown() override { std::filesystem::remove_all(directory_); }

  std::string Write(const std::string& name, const std::string& contents) {
    std::string path = directory_ + "/" + name;
    std::ofstream(path, std::ios::binary) << contents;
    return path;
  }

  std::string directory_;
};

TEST_F(BoundedReadTest, ReadsAFileUpToTheLimit) {
  std::string path = Write("exact", std::string(1024, 'x'));
  Result<std::string> read = ReadFileAtMost(path, 1024);
  ASSERT_TRUE(read.ok()) << read.status().ToString();
  EXPECT_EQ(*read, std::string(1024, 'x'));

  Result<std::string> empty = ReadFileAtMost(Write("empty", ""), 1024);
  ASSERT_TRUE(empty.ok()) << empty.status().ToString();
  EXPECT_EQ(*empty, "");
}

TEST_F(BoundedReadTest, RefusesAFileOverTheLimit) {
  std::string path = Write("big", std::string(1025, 'x'));
  Result<std::string> read = ReadFileAtMost(path, 1024);
  ASSERT_FALSE(read.ok());
  EXPECT_EQ(read.status().code(), StatusCode::kOutOfRange);
  EXPECT_EQ(read.status().message(), path + ": larger than 1KiB");
}

TEST_F(BoundedReadTest, StopsReadingAnEndlessDevice) {
  Result<std::string> read = ReadFileAtMost("/dev/zero", 64 << 10);
  ASSERT_FALSE(read.ok());
  EXPECT_EQ(read.status().message(), "/dev/zero: larger than 64KiB");
}

TEST_F(BoundedReadTest, ADirectoryIsNotAnEmptyFile) {
  Result<std::string> read = ReadFileAtMost(directory_, 1024);
  ASSERT_FALSE(read.ok());
  EXPECT_EQ(read.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(read.status().message(), directory_ + ": is a directory");
}

TEST_F(BoundedReadTest, AMissingFileIsNotFound) {
  Result<std::string> read = ReadFileAtMost(directory_ + "/absent", 1024);
  ASSERT_FALSE(read.ok());
  EXPECT_EQ(read.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(read.status().message(), directory_ + "/absent: no such file");
}

TEST_F(BoundedReadTest, ReadsAnOpenDescriptorUnderItsName) {
  int pipe_fds[2];
  ASSERT_EQ(::pipe(pipe_fds), 0);
  ASSERT_EQ(::write(pipe_fds[1], "hello", 5), 5);
  ::close(pipe_fds[1]);
  Result<std::string> read = ReadDescriptorAtMost(pipe_fds[0], "standard input", 4);
  ::close(pipe_fds[0]);
  ASSERT_FALSE(read.ok());
  EXPECT_EQ(read.status().message(), "standard input: larger than 4");
}

}  // namespace
}  // namespace supercluster::base
