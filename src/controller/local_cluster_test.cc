#include "controller/local_cluster.h"

#include <unistd.h>

#include <fstream>
#include <gtest/gtest.h>

namespace supercluster::controller {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;

TEST(LocalClusterOptionsTest, DefaultsDescribeThreeRegionsWithTheirDistances) {
  auto options = LocalClusterOptions::FromConfig(base::Config::Defaults());
  ASSERT_TRUE(options.ok()) << options.status().ToString();
  EXPECT_EQ(options->regions, (std::vector<std::string>{"us-east-1", "us-east-2", "us-west-2"}));
  EXPECT_EQ(options->workers_per_region, 2);
  EXPECT_EQ(options->RttBetween("us-east-1", "us-east-2"), milliseconds(12));
  EXPECT_EQ(options->RttBetween("us-west-2", "us-east-1"), milliseconds(65));  // either order
  EXPECT_EQ(options->RttBetween("us-east-2", "us-west-2"), milliseconds(50));
  EXPECT_EQ(options->RttBetween("us-east-2", "us-east-2"), milliseconds(0));
  EXPECT_EQ(options->RttBetween("us-east-1", "eu-west-1"), options->default_rtt);
}

TEST(LocalClusterOptionsTest, RttListsAreParsedStrictly) {
  LocalClusterOptions options;
  ASSERT_TRUE(ParseRtts("a:b=5ms,,b:c=1s", options).ok());
  EXPECT_EQ(options.RttBetween("b", "a"), milliseconds(5));
  EXPECT_EQ(options.RttBetween("c", "b"), milliseconds(1000));
  for (std::string bad : {"a:b", "a=5ms", ":b=5ms", "a:=5ms", "a:b=fast", "a:b=-1ms", "a=b:5ms"}) {
    base::Status status = ParseRtts(bad, options);
    EXPECT_EQ(status.code(), base::StatusCode::kInvalidArgument) << bad;
    EXPECT_NE(status.message().find(bad), std::string::npos) << status.message();
  }
}

class ClusterFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("local-cluster-test-" + std::to_string(::getpid()));
    fs::create_directories(dir_ / "cluster");
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

TEST_F(ClusterFileTest, NoClusterIsNotFound) {
  fs::remove_all(dir_ / "cluster");
  auto info = LoadClusterInfo(dir_);
  EXPECT_EQ(info.status().code(), base::StatusCode::kNotFound);
  EXPECT_NE(info.status().message().find("supercluster up"), std::string::npos);
  EXPECT_EQ(StopLocalCluster(dir_, {}, [](const std::string&) {}).code(),
            base::StatusCode::kNotFound);
}

TEST_F(ClusterFileTest, ADamagedClusterFileIsDataLoss) {
  for (std::string text : {"not json", "{}", R"({"global_endpoint": 5})", "[]"}) {
    std::ofstream(dir_ / "cluster" / "cluster.json", std::ios::trunc) << text;
    auto info = LoadClusterInfo(dir_);
    EXPECT_EQ(info.status().code(), base::StatusCode::kDataLoss) << text;
  }
}

TEST_F(ClusterFileTest, StartRefusesMissingFilesBeforeStartingAnything) {
  LocalClusterOptions options = *LocalClusterOptions::FromConfig(base::Config::Defaults());
  options.data_dir = dir_;
  options.supercluster_binary = "/bin/true";
  options.enclave_binary = "/bin/true";
  options.model = dir_ / "missing.gguf";
  auto started = StartLocalCluster(options, [](const std::string&) {});
  ASSERT_FALSE(started.ok());
  EXPECT_EQ(started.status().code(), base::StatusCode::kNotFound);
  EXPECT_NE(started.status().message().find("missing.gguf"), std::string::npos);

  options.model = "/bin/true";
  options.client_region = "eu-west-1";
  started = StartLocalCluster(options, [](const std::string&) {});
  EXPECT_EQ(started.status().code(), base::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace supercluster::controller
