// Test support for the end-to-end cluster tests: a whole local cluster (the real binaries,
// started by controller::StartLocalCluster in a temporary data directory), tenants added to
// its store, plain HTTP calls to its endpoints, and a scan of a process's memory.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "base/status.h"
#include "client/cluster_client.h"
#include "controller/local_cluster.h"
#include "net/http_message.h"
#include "store/records.h"

namespace supercluster::testing {

struct TestCluster {
  std::filesystem::path data_dir;
  controller::ClusterInfo info;
  std::string demo_api_key;

  // The processes of one role (and region, unless empty).
  std::vector<controller::ClusterProcess> Processes(const std::string& role,
                                                    const std::string& region = "") const;
  // Kills (SIGKILL) every process of `region`, as a region outage would.
  void KillRegion(const std::string& region) const;
  // Stops the cluster and removes its data directory.
  void Stop();
};

// Starts a cluster with the bundled model; `settings` go to every worker and router as
// --set KEY=VALUE. Fails the calling test (and returns nullptr) when it cannot start.
std::unique_ptr<TestCluster> StartTestCluster(const std::string& name,
                                              std::vector<std::string> settings,
                                              int64_t workers_per_region = 2);

// One cluster for a whole test binary: register it with ::testing::AddGlobalTestEnvironment.
// It starts the cluster before the first test, stops it after the last, and keeps
// `*published` pointing at it meanwhile (null when it did not start).
class SharedClusterEnvironment : public ::testing::Environment {
 public:
  SharedClusterEnvironment(std::string name, std::vector<std::string> settings,
                           TestCluster** published)
      : name_(std::move(name)), settings_(std::move(settings)), published_(published) {}
  void SetUp() override;
  void TearDown() override;

 private:
  std::string name_;
  std::vector<std::string> settings_;
  TestCluster** published_;
  std::unique_ptr<TestCluster> cluster_;
};

// Adds a tenant to the cluster's store; returns its new API key.
std::string AddTenant(const TestCluster& cluster, store::Tenant tenant);

// A client of the cluster's global endpoint with the cluster's attestation policy.
client::ClusterClientOptions ClientOptions(const TestCluster& cluster, const std::string& api_key);

// One plain HTTP exchange with `endpoint` ("http://HOST:PORT").
base::Result<net::HttpResponse> Call(const std::string& endpoint, net::HttpRequest request);

// Whether `marker` occurs in the readable memory of process `pid`; nullopt when that memory
// cannot be read (no permission), so a caller can skip rather than pass vacuously.
std::optional<bool> MemoryContains(pid_t pid, const std::string& marker);

// Whether any file under `dir` contains `marker`.
bool FilesContain(const std::filesystem::path& dir, const std::string& marker);

}  // namespace supercluster::testing
