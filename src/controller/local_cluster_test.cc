#include "controller/local_cluster.h"

#include <signal.h>
#include <unistd.h>

#include <fstream>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "controller/child_process.h"

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

// `down` gives each process the stop timeout the cluster was started with (cluster.json),
// then kills it; an explicit timeout wins over it.
TEST_F(ClusterFileTest, DownWaitsTheClustersOwnStopTimeoutThenKills) {
  const fs::path self = fs::read_symlink("/proc/self/exe");
  for (bool explicit_timeout : {false, true}) {
    SCOPED_TRACE(explicit_timeout ? "explicit timeout" : "the cluster's own");
    int ready[2];
    ASSERT_EQ(::pipe(ready), 0);
    pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {  // a process that ignores SIGTERM, as a stuck drain would
      ::signal(SIGTERM, SIG_IGN);
      char byte = 1;
      (void)!::write(ready[1], &byte, 1);
      while (true) ::pause();
    }
    ::close(ready[1]);
    char byte = 0;
    ASSERT_EQ(::read(ready[0], &byte, 1), 1);  // SIGTERM is ignored from here on
    ::close(ready[0]);
    nlohmann::json info = {
        {"global_endpoint", "http://127.0.0.1:1"}, {"store_url", "sqlite:///nowhere"},
        {"dev_root", ""}, {"enclave_pcr0", ""}, {"model_name", "m"}, {"demo_tenant", "demo"},
        {"demo_api_key_file", ""}, {"regions", {"r1"}},
        {"processes", {{{"name", "r1-w1"}, {"role", "worker"}, {"region", "r1"},
                        {"pid", child}, {"program", self.string()}, {"log", ""},
                        {"endpoint", ""}}}},
        {"stop_timeout_ms", explicit_timeout ? 60000 : 300}};
    std::ofstream(dir_ / "cluster" / "cluster.json", std::ios::trunc) << info.dump();
    ASSERT_EQ(LoadClusterInfo(dir_)->stop_timeout, milliseconds(explicit_timeout ? 60000 : 300));

    StopOptions options;
    if (explicit_timeout) options.timeout = milliseconds(300);
    std::vector<std::string> lines;
    auto started = std::chrono::steady_clock::now();
    ASSERT_TRUE(StopLocalCluster(dir_, options, [&](const std::string& line) {
                  lines.push_back(line);
                }).ok());
    auto took = std::chrono::steady_clock::now() - started;
    EXPECT_GE(took, milliseconds(300));
    EXPECT_LT(took, milliseconds(10000));  // neither the 15 s default nor the 60 s above
    EXPECT_FALSE(ProcessRunning(child, self));
    ASSERT_EQ(lines.size(), 2u);
    EXPECT_NE(lines[1].find("did not stop within the timeout; killing it"), std::string::npos);
  }
}

TEST_F(ClusterFileTest, ANegativeStopTimeoutIsDataLoss) {
  nlohmann::json info = {{"global_endpoint", ""}, {"store_url", ""}, {"dev_root", ""},
                         {"enclave_pcr0", ""}, {"model_name", ""}, {"demo_tenant", ""},
                         {"demo_api_key_file", ""}, {"regions", nlohmann::json::array()},
                         {"processes", nlohmann::json::array()}, {"stop_timeout_ms", -1}};
  std::ofstream(dir_ / "cluster" / "cluster.json", std::ios::trunc) << info.dump();
  EXPECT_EQ(LoadClusterInfo(dir_).status().code(), base::StatusCode::kDataLoss);
}

// `down` signals the pids the file holds: one that does not fit a pid_t would wrap to some
// other process's. Each refusal names the field.
TEST_F(ClusterFileTest, APidOutOfRangeIsDataLossNamingTheField) {
  for (nlohmann::json pid : {nlohmann::json(99999999999LL), nlohmann::json(0),
                             nlohmann::json(-5), nlohmann::json(1.5), nlohmann::json("12"),
                             nlohmann::json(18446744073709551615ULL)}) {
    SCOPED_TRACE(pid.dump());
    nlohmann::json info = {
        {"global_endpoint", ""}, {"store_url", ""}, {"dev_root", ""}, {"enclave_pcr0", ""},
        {"model_name", ""}, {"demo_tenant", ""}, {"demo_api_key_file", ""},
        {"regions", nlohmann::json::array()},
        {"processes", {{{"name", "r1-w1"}, {"role", "worker"}, {"region", "r1"}, {"pid", pid},
                        {"program", "/bin/true"}, {"log", ""}, {"endpoint", ""}}}}};
    std::ofstream(dir_ / "cluster" / "cluster.json", std::ios::trunc) << info.dump();
    auto loaded = LoadClusterInfo(dir_);
    EXPECT_EQ(loaded.status().code(), base::StatusCode::kDataLoss);
    EXPECT_NE(loaded.status().message().find("processes[0]: 'pid' must be a whole number"),
              std::string::npos)
        << loaded.status().ToString();
  }
  std::ofstream(dir_ / "cluster" / "cluster.json", std::ios::trunc)
      << R"({"global_endpoint": 5})";
  EXPECT_NE(LoadClusterInfo(dir_).status().message().find("'global_endpoint' must be a string"),
            std::string::npos);
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
