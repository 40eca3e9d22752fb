// A whole cluster on this machine, as separate processes: what `supercluster up`, `down`
// and `status` run. It is the controller's local instance provider: one SQLite store; for
// each region two supercluster-enclave + worker pairs and a regional router; a global
// endpoint; and a delay relay carrying every inter-region link with that link's round-trip
// time, so regions are as far apart as in AWS (or, with `netns`, each region in its own
// network namespace). `up` writes what it started into
// DATA_DIR/cluster/cluster.json, which `down`, `status` and `infer` read.
//
// Layout of DATA_DIR/cluster/: cluster.json, state.db (the store), demo-api-key (0600),
// logs/NAME.log (one per process), run/*.sock (enclave sockets). The dev CA lives in
// DATA_DIR/dev-ca as for `supercluster dev-ca init`.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "base/config.h"
#include "base/status.h"

namespace supercluster::controller {

struct LocalClusterOptions {
  std::filesystem::path data_dir;
  std::filesystem::path supercluster_binary;  // started for workers, routers and the relay
  std::filesystem::path enclave_binary;       // supercluster-enclave
  std::filesystem::path model;                // the model every worker serves
  std::vector<std::string> regions;
  int64_t workers_per_region = 2;
  std::string client_region;                  // where the global endpoint stands
  std::string global_listen;                  // HOST:PORT of the global endpoint (port 0: any)
  // Round-trip time between two regions, keyed by the pair in name order.
  std::map<std::pair<std::string, std::string>, std::chrono::milliseconds> rtts;
  std::chrono::milliseconds default_rtt{40};
  std::chrono::milliseconds start_timeout{60000};
  std::chrono::milliseconds stop_timeout{15000};
  // --set KEY=VALUE passed to every worker and router (tests shorten intervals this way).
  std::vector<std::string> service_settings;
  // Each region's processes in its own network namespace `sc-REGION`, as
  // scripts/netns-regions creates them (root only): routers listen on the region's address
  // and reach each other over the namespaces' links (with netem delays where the kernel has
  // netem) instead of through the relay. The global endpoint runs in the client region's
  // namespace.
  bool netns = false;
  // Every process is killed when the thread that started the cluster ends (tests: a test
  // that crashes leaves no cluster behind). `supercluster up` leaves it false: the cluster
  // outlives the command.
  bool stop_with_caller = false;
  std::filesystem::path ip_binary = "/usr/sbin/ip";
  // Polled while the cluster starts (every 20 ms at most): once it returns true, the start
  // stops what it started and fails with kCancelled (`up` on SIGINT, SIGTERM or SIGHUP).
  // Must be thread-safe. Empty: never.
  std::function<bool()> interrupted;

  // cluster.* keys (docs/configuration.md); the paths are the caller's.
  static base::Result<LocalClusterOptions> FromConfig(const base::Config& config);
  // The RTT between two regions (zero within one region).
  std::chrono::milliseconds RttBetween(const std::string& a, const std::string& b) const;
};

// Parses "us-east-1:us-east-2=12ms,..." into `options.rtts`; kInvalidArgument naming the
// bad entry.
base::Status ParseRtts(const std::string& text, LocalClusterOptions& options);

struct ClusterProcess {
  std::string name;     // "us-east-1-w1", "router-us-east-1", "global", "relay"
  std::string role;     // "enclave", "worker", "router", "global", "relay"
  std::string region;   // "" for the relay and the global endpoint
  pid_t pid = 0;
  std::string program;  // the executable, so a reused pid is never signalled
  std::string log;      // its log file
  std::string endpoint; // where it serves, when it does ("http://127.0.0.1:PORT")
};

// What `up` started (cluster.json).
struct ClusterInfo {
  std::string global_endpoint;   // http://HOST:PORT
  std::string store_url;         // sqlite://...
  std::string dev_root;          // the dev CA's root.pem: what attestation is verified against
  std::string enclave_pcr0_hex;  // the measurement the cluster's policy accepts
  std::string model_name;
  std::string demo_tenant;
  std::string demo_api_key_file;
  std::vector<std::string> regions;
  std::vector<ClusterProcess> processes;  // in start order
  // cluster.stop_timeout when the cluster was started: what `down` gives each process
  // after SIGTERM unless told otherwise.
  std::chrono::milliseconds stop_timeout{15000};
};

// Starts everything and waits until the global endpoint is ready. `progress` gets one line
// per step. Options that cannot work (a duplicate or oddly named region, an unusable global
// address) are kInvalidArgument before anything starts. On failure, stops whatever it had started and says which process failed,
// with the end of its log. kAlreadyExists when a cluster of this data dir is still running.
// cluster.json names every process from the moment it is spawned, so that `down` can stop
// the ones a start that was killed outright left behind.
base::Result<ClusterInfo> StartLocalCluster(const LocalClusterOptions& options,
                                            const std::function<void(const std::string&)>& progress);

// Reads DATA_DIR/cluster/cluster.json. kNotFound when no cluster was started there.
base::Result<ClusterInfo> LoadClusterInfo(const std::filesystem::path& data_dir);

struct StopOptions {
  std::string region;  // "": the whole cluster (and cluster.json is removed)
  bool kill = false;   // SIGKILL at once instead of SIGTERM then wait (a crash, for drills)
  // After SIGTERM, before SIGKILL; unset: the cluster's own (ClusterInfo::stop_timeout).
  std::optional<std::chrono::milliseconds> timeout;
};

// Stops the processes (those of `region`, or all) in reverse start order.
base::Status StopLocalCluster(const std::filesystem::path& data_dir, const StopOptions& options,
                              const std::function<void(const std::string&)>& progress);

}  // namespace supercluster::controller
