#include "controller/local_cluster.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>

#include "attest/dev_attestor.h"
#include "base/config_value.h"
#include "base/plain_name.h"
#include "controller/child_process.h"
#include "crypto/bytes.h"
#include "crypto/random.h"
#include "net/free_ports.h"
#include "net/http_client.h"
#include "router/tenant_gate.h"
#include "store/open_store.h"
#include "store/records.h"

namespace supercluster::controller {
namespace {

using Json = nlohmann::json;
namespace fs = std::filesystem;
using std::chrono::milliseconds;

constexpr const char* kDemoTenant = "demo";

fs::path ClusterDir(const fs::path& data_dir) { return data_dir / "cluster"; }
fs::path ClusterFile(const fs::path& data_dir) { return ClusterDir(data_dir) / "cluster.json"; }

std::pair<std::string, std::string> Ordered(const std::string& a, const std::string& b) {
  return a < b ? std::make_pair(a, b) : std::make_pair(b, a);
}

std::string Loopback(uint16_t port) { return "127.0.0.1:" + std::to_string(port); }

// The endpoint a "... MARKER ENDPOINT ..." log line names ("serving on tcp://...").
std::string EndpointOfLine(const std::string& line, const std::string& marker) {
  size_t at = line.find(marker);
  if (at == std::string::npos) return "";
  std::string rest = line.substr(at + marker.size());
  rest = rest.substr(std::min(rest.size(), rest.find_first_not_of(' ')));
  size_t end = rest.find_first_of(" \t\"");
  rest = rest.substr(0, end);
  if (rest.rfind("tcp://", 0) == 0) rest = "http://" + rest.substr(6);
  return rest;
}

Json ToJson(const ClusterInfo& info) {
  Json processes = Json::array();
  for (const ClusterProcess& process : info.processes) {
    processes.push_back({{"name", process.name},
                         {"role", process.role},
                         {"region", process.region},
                         {"pid", process.pid},
                         {"program", process.program},
                         {"log", process.log},
                         {"endpoint", process.endpoint}});
  }
  return {{"global_endpoint", info.global_endpoint},
          {"store_url", info.store_url},
          {"dev_root", info.dev_root},
          {"enclave_pcr0", info.enclave_pcr0_hex},
          {"model_name", info.model_name},
          {"demo_tenant", info.demo_tenant},
          {"demo_api_key_file", info.demo_api_key_file},
          {"regions", info.regions},
          {"processes", processes},
          {"stop_timeout_ms", info.stop_timeout.count()}};
}

base::Status SaveClusterInfo(const fs::path& data_dir, const ClusterInfo& info) {
  fs::path path = ClusterFile(data_dir);
  fs::path temporary = path;
  temporary += ".tmp";
  {
    std::ofstream out(temporary, std::ios::trunc);
    out << ToJson(info).dump(2) << "\n";
    if (!out) return base::Unavailable(temporary.string() + ": cannot write");
  }
  std::error_code error;
  fs::rename(temporary, path, error);
  if (error) return base::Unavailable(path.string() + ": " + error.message());
  return base::Status::Ok();
}

// What would fail only once processes run: region names (they become process names, log
// files, relay routes, store keys and namespace names) and the global endpoint's address.
// (Round-trip times for other regions are allowed: the default table names the three
// default regions whatever the cluster's are.)
base::Status CheckOptions(const LocalClusterOptions& options) {
  if (options.regions.empty()) return base::InvalidArgument("no regions to start");
  std::set<std::string> seen;
  for (const std::string& region : options.regions) {
    if (!base::IsPlainName(region, 32)) {
      return base::InvalidArgument("region '" + region +
                                   "': use 1 to 32 letters, digits and '-', '_' or '.'");
    }
    if (!seen.insert(region).second) {
      return base::InvalidArgument("region '" + region + "' is listed twice");
    }
  }
  if (!seen.contains(options.client_region)) {
    return base::InvalidArgument("the client region '" + options.client_region +
                                 "' is not one of the cluster's regions");
  }
  if (auto endpoint = net::ParseEndpoint(options.global_listen); !endpoint.ok()) {
    return base::InvalidArgument("the global endpoint's address '" + options.global_listen +
                                 "': " + endpoint.status().message());
  }
  return base::Status::Ok();
}

// Starts the processes of one cluster in order and remembers them, so that a failure
// part-way stops what was started.
class Launcher {
 public:
  Launcher(const LocalClusterOptions& options,
           const std::function<void(const std::string&)>& progress)
      : options_(options), progress_(progress) {}

  base::Result<ClusterInfo> Run();

 private:
  base::Status Prepare();
  base::Status WriteRecords();
  // Starts argv (in `region`'s namespace with `netns`) and waits for its log to show
  // `marker`.
  base::Result<ClusterProcess> Start(std::string name, std::string role, std::string region,
                                     std::vector<std::string> argv, const std::string& marker,
                                     std::string namespace_region = "");
  // With `netns`: the namespace of a region, and the address on its loopback that its
  // services listen on (read from the namespace, as scripts/netns-regions set it up).
  static std::string NamespaceOf(const std::string& region) { return "sc-" + region; }
  base::Result<std::string> RegionAddress(const std::string& region) const;
  std::vector<std::string> ServiceArgs(std::vector<std::string> argv) const;
  void StopAll();
  bool Interrupted() const { return options_.interrupted && options_.interrupted(); }

  // The steps of Run(), in order.
  base::Status StartAll();
  base::Status PlanAddresses();
  base::Status StartWorkers(const std::string& region);
  base::Status StartRelay();
  base::Status StartRouter(const std::string& region);
  base::Status StartGlobal();
  base::Status WaitUntilReady();
  // Where a region's router listens, and how a process in `from` reaches the router of `to`.
  std::string RouterAddress(const std::string& region);
  std::string PeerAddress(const std::string& from, const std::string& to);
  std::vector<std::string> RouterArgs(const std::string& tier, const std::string& region,
                                      const std::string& listen);

  const LocalClusterOptions& options_;
  const std::function<void(const std::string&)>& progress_;
  fs::path dir_;
  ClusterInfo info_;
  std::string api_key_;
  std::map<std::string, std::string> region_host_;  // loopback, or the region's netns address
  std::map<std::string, uint16_t> router_port_;
  std::map<std::pair<std::string, std::string>, uint16_t> link_port_;  // relay (from, to)
  uint16_t relay_control_port_ = 0;
};

base::Status Launcher::Prepare() {
  dir_ = ClusterDir(options_.data_dir);
  if (auto existing = LoadClusterInfo(options_.data_dir); existing.ok()) {
    for (const ClusterProcess& process : existing->processes) {
      if (ProcessRunning(process.pid, process.program)) {
        return base::AlreadyExists("a cluster started from " + options_.data_dir.string() +
                                   " is still running (pid " + std::to_string(process.pid) +
                                   ", " + process.name + "); run `supercluster down` first");
      }
    }
  }
  for (const fs::path& required : {options_.supercluster_binary, options_.enclave_binary,
                                    options_.model}) {
    if (!fs::exists(required)) return base::NotFound(required.string() + ": not found");
  }
  SC_RETURN_IF_ERROR(CheckOptions(options_));
  // A fresh cluster each time: the old state and logs go.
  std::error_code error;
  fs::remove_all(dir_, error);
  fs::create_directories(dir_ / "logs", error);
  fs::create_directories(dir_ / "run", error);
  if (error) return base::Unavailable(dir_.string() + ": cannot create: " + error.message());
  fs::permissions(dir_, fs::perms::owner_all, error);
  return base::Status::Ok();
}

base::Result<std::string> Launcher::RegionAddress(const std::string& region) const {
  std::string namespace_name = NamespaceOf(region);
  if (!fs::exists("/var/run/netns/" + namespace_name)) {
    return base::FailedPrecondition(
        "--netns: network namespace " + namespace_name + " does not exist; create the "
        "regions' namespaces first (as root): scripts/netns-regions up --regions \"" +
        [&] {
          std::string names;
          for (const std::string& name : options_.regions) names += (names.empty() ? "" : " ") + name;
          return names;
        }() + "\"");
  }
  std::string command = options_.ip_binary.string() + " -n " + namespace_name +
                        " -o -4 addr show dev lo scope global 2>/dev/null";
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) return base::Unavailable("cannot run " + options_.ip_binary.string());
  std::string output;
  char buffer[512];
  while (size_t got = std::fread(buffer, 1, sizeof(buffer), pipe)) output.append(buffer, got);
  ::pclose(pipe);
  // "1: lo    inet 10.78.0.1/32 scope global lo ..."
  size_t at = output.find("inet ");
  if (at == std::string::npos) {
    return base::FailedPrecondition("--netns: namespace " + namespace_name +
                                    " has no global address on lo (see scripts/netns-regions)");
  }
  std::string address = output.substr(at + 5);
  return address.substr(0, address.find_first_of("/ \n"));
}

base::Status Launcher::WriteRecords() {
  fs::path ca_dir = options_.data_dir / "dev-ca";
  if (!fs::exists(ca_dir / "root.pem")) {
    SC_RETURN_IF_ERROR(attest::DevCa::Init(ca_dir).status());
  }
  info_.dev_root = (ca_dir / "root.pem").string();
  SC_ASSIGN_OR_RETURN(attest::DevMeasurements measured,
                      attest::DevMeasurements::Measure(options_.enclave_binary, {},
                                                       options_.supercluster_binary));
  info_.enclave_pcr0_hex = crypto::ToHex(measured.pcr0);

  info_.store_url = "sqlite://" + (dir_ / "state.db").string();
  SC_ASSIGN_OR_RETURN(auto store, store::OpenStore(info_.store_url, base::Config::Defaults()));
  for (const std::string& region : options_.regions) {
    store::Region record;
    record.name = region;
    record.display_name = region;
    for (const std::string& peer : options_.regions) {
      if (peer != region) record.peers.push_back(peer);
    }
    std::stable_sort(record.peers.begin(), record.peers.end(),
                     [&](const std::string& a, const std::string& b) {
                       return options_.RttBetween(region, a) < options_.RttBetween(region, b);
                     });
    SC_RETURN_IF_ERROR(store->Put(store::keys::Region(region), store::Encode(record)).status());
  }
  store::Policy policy;
  policy.id = "cluster";
  policy.measurements.push_back({{0, info_.enclave_pcr0_hex}});
  SC_RETURN_IF_ERROR(store->Put(store::keys::Policy(policy.id), store::Encode(policy)).status());

  SC_ASSIGN_OR_RETURN(crypto::Bytes secret, crypto::RandomBytes(24));
  api_key_ = "sc-" + std::string(kDemoTenant) + "-" + crypto::ToHex(secret);
  store::Tenant tenant;
  tenant.id = kDemoTenant;
  tenant.display_name = "demo tenant of the local cluster";
  tenant.api_key_hashes.push_back(router::HashApiKey(api_key_));
  tenant.policy_id = policy.id;
  tenant.allow_plaintext = true;  // the demo shows the OpenAI-compatible API too
  // Room for a load test (`--rps 100` and more) from one machine.
  tenant.requests_per_second = 1000;
  tenant.max_concurrent_requests = 256;
  SC_RETURN_IF_ERROR(store->Put(store::keys::Tenant(tenant.id), store::Encode(tenant)).status());
  info_.demo_tenant = tenant.id;
  info_.demo_api_key_file = (dir_ / "demo-api-key").string();
  {
    std::ofstream out(info_.demo_api_key_file, std::ios::trunc);
    out << api_key_ << "\n";
    if (!out) return base::Unavailable(info_.demo_api_key_file + ": cannot write");
  }
  std::error_code error;
  fs::permissions(info_.demo_api_key_file, fs::perms::owner_read | fs::perms::owner_write, error);
  return base::Status::Ok();
}

std::vector<std::string> Launcher::ServiceArgs(std::vector<std::string> argv) const {
  for (const std::string& setting : options_.service_settings) {
    argv.push_back("--set");
    argv.push_back(setting);
  }
  return argv;
}

base::Result<ClusterProcess> Launcher::Start(std::string name, std::string role,
                                             std::string region, std::vector<std::string> argv,
                                             const std::string& marker,
                                             std::string namespace_region) {
  if (namespace_region.empty()) namespace_region = region;
  ClusterProcess process;
  process.name = std::move(name);
  process.role = std::move(role);
  process.region = std::move(region);
  process.program = argv.front();
  process.log = (dir_ / "logs" / (process.name + ".log")).string();
  std::vector<std::string> command = argv;
  if (options_.netns && !namespace_region.empty()) {
    command.insert(command.begin(), {options_.ip_binary.string(), "netns", "exec",
                                     NamespaceOf(namespace_region)});
  }
  if (Interrupted()) return base::Cancelled("interrupted before starting " + process.name);
  SC_ASSIGN_OR_RETURN(process.pid, SpawnDetached(command, process.log, options_.stop_with_caller));
  info_.processes.push_back(process);
  // Named in cluster.json at once: if `up` is killed outright, `down` still finds it.
  SC_RETURN_IF_ERROR(SaveClusterInfo(options_.data_dir, info_));
  SC_ASSIGN_OR_RETURN(std::string line,
                      WaitForLogLine(process.log, marker, process.pid, options_.start_timeout,
                                     options_.interrupted));
  process.endpoint = EndpointOfLine(line, marker);
  info_.processes.back().endpoint = process.endpoint;
  return process;
}

void Launcher::StopAll() {
  for (auto it = info_.processes.rbegin(); it != info_.processes.rend(); ++it) {
    SignalProcess(it->pid, it->program, SIGKILL);
  }
  for (const ClusterProcess& process : info_.processes) {
    WaitForExit(process.pid, process.program, milliseconds(2000));
  }
}

// Where every router listens and how the regions reach each other. Ports are chosen up
// front because each router is told where its peers are (--via) when it starts.
base::Status Launcher::PlanAddresses() {
  const size_t region_count = options_.regions.size();
  SC_ASSIGN_OR_RETURN(std::vector<uint16_t> ports,
                      net::FreeLoopbackPorts(region_count * (region_count + 1) + 1));
  size_t next = 0;
  for (const std::string& region : options_.regions) {
    region_host_[region] = "127.0.0.1";
    if (options_.netns) {
      SC_ASSIGN_OR_RETURN(region_host_[region], RegionAddress(region));
    }
    router_port_[region] = ports[next++];
  }
  for (const std::string& from : options_.regions) {
    for (const std::string& to : options_.regions) {
      if (from != to) link_port_[{from, to}] = ports[next++];
    }
  }
  relay_control_port_ = ports[next++];
  return base::Status::Ok();
}

std::string Launcher::RouterAddress(const std::string& region) {
  return region_host_[region] + ":" + std::to_string(router_port_[region]);
}

std::string Launcher::PeerAddress(const std::string& from, const std::string& to) {
  return options_.netns ? RouterAddress(to) : Loopback(link_port_[{from, to}]);
}

base::Status Launcher::StartWorkers(const std::string& region) {
  const std::string supercluster = options_.supercluster_binary.string();
  for (int64_t w = 1; w <= options_.workers_per_region; ++w) {
    std::string id = region + "-w" + std::to_string(w);
    std::string socket = "unix://" + (dir_ / "run" / (id + ".sock")).string();
    progress_("starting " + id + " (enclave and worker)");
    SC_RETURN_IF_ERROR(Start(id + "-enclave", "enclave", region,
                             {options_.enclave_binary.string(), "--data-dir",
                              options_.data_dir.string(), "--listen", socket, "--worker-binary",
                              supercluster},
                             "listening on")
                           .status());
    SC_RETURN_IF_ERROR(Start(id, "worker", region,
                             ServiceArgs({supercluster, "worker", "--model",
                                          options_.model.string(), "--region", region,
                                          "--instance-id", id, "--listen",
                                          region_host_[region] + ":0", "--enclave", socket,
                                          "--store", info_.store_url}),
                             "serving on")
                           .status());
  }
  return base::Status::Ok();
}

// One relay process carries every inter-region link: from a region's side to the other
// region's router, delayed by that pair's round-trip time. Its control API (docs/relay.md)
// lets drills cut or slow a link while the cluster runs.
base::Status Launcher::StartRelay() {
  std::vector<std::string> argv = {options_.supercluster_binary.string(), "relay", "--control",
                                   Loopback(relay_control_port_)};
  for (const auto& [link, port] : link_port_) {
    milliseconds rtt = options_.RttBetween(link.first, link.second);
    argv.push_back("--route");
    argv.push_back(link.first + ">" + link.second + "=" + Loopback(port) + "=" +
                   Loopback(router_port_[link.second]) + "@" + std::to_string(rtt.count()) +
                   "ms");
  }
  progress_("starting the inter-region relay (" + std::to_string(link_port_.size()) + " links)");
  return Start("relay", "relay", "", argv, "relay control on").status();
}

// The routers take their measurements from the store's policy record "cluster" written
// above and follow it, so a changed record applies to a running cluster.
std::vector<std::string> Launcher::RouterArgs(const std::string& tier, const std::string& region,
                                              const std::string& listen) {
  std::vector<std::string> argv = {options_.supercluster_binary.string(), "router", "--tier", tier,
                                   "--region", region, "--listen", listen, "--store",
                                   info_.store_url, "--attestation-root", info_.dev_root};
  for (const std::string& peer : options_.regions) {
    if (peer == region) continue;
    argv.push_back("--via");
    argv.push_back(peer + "=" + PeerAddress(region, peer));
  }
  // Every process of the cluster shares this machine's cores: a router polling for events
  // would take CPU from the workers. A --service-set given to `up` comes later and wins.
  argv.push_back("--set");
  argv.push_back("router.busy_poll_us=0");
  return ServiceArgs(argv);
}

base::Status Launcher::StartRouter(const std::string& region) {
  progress_("starting the regional router of " + region);
  return Start("router-" + region, "router", region,
               RouterArgs("regional", region, RouterAddress(region)), "serving on")
      .status();
}

// The global endpoint stands in the client's region: it reaches that region's router
// directly and the others as the client would (through the relay, or the namespaces'
// links). It belongs to no region's process group, so a region outage (`down --region`)
// leaves it running.
base::Status Launcher::StartGlobal() {
  std::string listen = options_.global_listen;
  if (options_.netns) {  // the client region's address, on the configured port
    listen = region_host_[options_.client_region] + listen.substr(listen.rfind(':'));
  }
  progress_("starting the global endpoint");
  SC_ASSIGN_OR_RETURN(ClusterProcess global,
                      Start("global", "global", /*region=*/"",
                            RouterArgs("global", options_.client_region, listen), "serving on",
                            options_.client_region));
  info_.global_endpoint = global.endpoint;
  return base::Status::Ok();
}

// Ready when the global endpoint sees a region that can serve.
base::Status Launcher::WaitUntilReady() {
  progress_("waiting for the global endpoint to see ready regions");
  SC_ASSIGN_OR_RETURN(net::Endpoint endpoint, net::ParseEndpoint(info_.global_endpoint));
  net::ClientOptions client_options = net::ClientOptions::FromConfig(base::Config::Defaults());
  client_options.request_timeout = milliseconds(2000);
  net::HttpClient client(endpoint, client_options);
  auto deadline = std::chrono::steady_clock::now() + options_.start_timeout;
  while (true) {
    net::HttpRequest request;
    request.target = "/readyz";
    auto response = client.Request(request);
    if (response.ok() && response->status == 200) return base::Status::Ok();
    if (Interrupted()) return base::Cancelled("interrupted while waiting for the global endpoint");
    if (std::chrono::steady_clock::now() >= deadline) {
      return base::DeadlineExceeded("the global endpoint did not become ready; see " +
                                    (dir_ / "logs").string());
    }
    std::this_thread::sleep_for(milliseconds(100));
  }
}

base::Status Launcher::StartAll() {
  SC_RETURN_IF_ERROR(PlanAddresses());
  for (const std::string& region : options_.regions) SC_RETURN_IF_ERROR(StartWorkers(region));
  // With netns the namespaces' links carry the round trips; one region has no links.
  if (!options_.netns && options_.regions.size() > 1) SC_RETURN_IF_ERROR(StartRelay());
  for (const std::string& region : options_.regions) SC_RETURN_IF_ERROR(StartRouter(region));
  SC_RETURN_IF_ERROR(StartGlobal());
  SC_RETURN_IF_ERROR(SaveClusterInfo(options_.data_dir, info_));
  return WaitUntilReady();
}

base::Result<ClusterInfo> Launcher::Run() {
  SC_RETURN_IF_ERROR(Prepare());
  SC_RETURN_IF_ERROR(WriteRecords());
  info_.regions = options_.regions;
  info_.stop_timeout = options_.stop_timeout;
  info_.model_name = options_.model.stem().string();
  base::Status started = StartAll();
  if (!started.ok()) {
    progress_("start failed; stopping what was started");
    StopAll();
    std::error_code error;
    fs::remove(ClusterFile(options_.data_dir), error);
    return started;
  }
  return info_;
}

}  // namespace

base::Result<LocalClusterOptions> LocalClusterOptions::FromConfig(const base::Config& config) {
  LocalClusterOptions options;
  std::stringstream regions(config.GetString("cluster.regions"));
  for (std::string region; std::getline(regions, region, ',');) {
    if (!region.empty()) options.regions.push_back(region);
  }
  options.workers_per_region = config.GetInt("cluster.workers_per_region");
  options.client_region = config.GetString("cluster.client_region");
  options.global_listen = config.GetString("cluster.global_listen");
  options.default_rtt = config.GetDuration("cluster.default_rtt");
  options.start_timeout = config.GetDuration("cluster.start_timeout");
  options.stop_timeout = config.GetDuration("cluster.stop_timeout");
  SC_RETURN_IF_ERROR(ParseRtts(config.GetString("cluster.rtts"), options));
  return options;
}

milliseconds LocalClusterOptions::RttBetween(const std::string& a, const std::string& b) const {
  if (a == b) return milliseconds(0);
  auto found = rtts.find(Ordered(a, b));
  return found == rtts.end() ? default_rtt : found->second;
}

base::Status ParseRtts(const std::string& text, LocalClusterOptions& options) {
  std::stringstream entries(text);
  for (std::string entry; std::getline(entries, entry, ',');) {
    if (entry.empty()) continue;
    size_t colon = entry.find(':');
    size_t equals = entry.find('=');
    if (colon == std::string::npos || equals == std::string::npos || colon > equals ||
        colon == 0 || equals == colon + 1) {
      return base::InvalidArgument("round-trip time '" + entry +
                                   "': expected REGION:REGION=DURATION, e.g. "
                                   "us-east-1:us-east-2=12ms");
    }
    auto duration = base::ParseTypedValue(base::ConfigType::kDuration, entry.substr(equals + 1));
    if (!duration.ok()) {
      return base::InvalidArgument("round-trip time '" + entry + "': " +
                                   duration.status().message());
    }
    options.rtts[Ordered(entry.substr(0, colon), entry.substr(colon + 1, equals - colon - 1))] =
        milliseconds(duration->integer);
  }
  return base::Status::Ok();
}

base::Result<ClusterInfo> StartLocalCluster(
    const LocalClusterOptions& options, const std::function<void(const std::string&)>& progress) {
  Launcher launcher(options, progress);
  return launcher.Run();
}

namespace {

// cluster.json's fields, each read with an error that names it: the file is ours, but an
// operator may have edited it, and `down` acts on the pids it holds.
base::Result<const Json*> ClusterField(const Json& object, const std::string& name,
                                       const std::string& where) {
  auto found = object.find(name);
  if (found == object.end()) return base::DataLoss(where + ": '" + name + "' is missing");
  return &*found;
}

base::Result<std::string> ClusterString(const Json& object, const std::string& name,
                                        const std::string& where) {
  SC_ASSIGN_OR_RETURN(const Json* value, ClusterField(object, name, where));
  if (!value->is_string()) return base::DataLoss(where + ": '" + name + "' must be a string");
  return value->get<std::string>();
}

base::Result<int64_t> ClusterInteger(const Json& object, const std::string& name, int64_t min,
                                     int64_t max, const std::string& where) {
  SC_ASSIGN_OR_RETURN(const Json* value, ClusterField(object, name, where));
  if (!value->is_number_integer() ||
      (value->is_number_unsigned() && value->get<uint64_t>() > static_cast<uint64_t>(max)) ||
      value->get<int64_t>() < min || value->get<int64_t>() > max) {
    return base::DataLoss(where + ": '" + name + "' must be a whole number from " +
                          std::to_string(min) + " to " + std::to_string(max));
  }
  return value->get<int64_t>();
}

}  // namespace

base::Result<ClusterInfo> LoadClusterInfo(const fs::path& data_dir) {
  fs::path path = ClusterFile(data_dir);
  std::ifstream in(path);
  if (!in) {
    return base::NotFound("no local cluster in " + data_dir.string() +
                          " (start one with `supercluster up`)");
  }
  std::stringstream text;
  text << in.rdbuf();
  Json parsed = Json::parse(text.str(), nullptr, /*allow_exceptions=*/false);
  const std::string where = path.string();
  if (!parsed.is_object()) return base::DataLoss(where + ": not a JSON object");
  ClusterInfo info;
  SC_ASSIGN_OR_RETURN(info.global_endpoint, ClusterString(parsed, "global_endpoint", where));
  SC_ASSIGN_OR_RETURN(info.store_url, ClusterString(parsed, "store_url", where));
  SC_ASSIGN_OR_RETURN(info.dev_root, ClusterString(parsed, "dev_root", where));
  SC_ASSIGN_OR_RETURN(info.enclave_pcr0_hex, ClusterString(parsed, "enclave_pcr0", where));
  SC_ASSIGN_OR_RETURN(info.model_name, ClusterString(parsed, "model_name", where));
  SC_ASSIGN_OR_RETURN(info.demo_tenant, ClusterString(parsed, "demo_tenant", where));
  SC_ASSIGN_OR_RETURN(info.demo_api_key_file, ClusterString(parsed, "demo_api_key_file", where));
  SC_ASSIGN_OR_RETURN(const Json* regions, ClusterField(parsed, "regions", where));
  if (!regions->is_array()) return base::DataLoss(where + ": 'regions' must be a list");
  for (const Json& region : *regions) {
    if (!region.is_string()) return base::DataLoss(where + ": 'regions' must hold strings");
    info.regions.push_back(region.get<std::string>());
  }
  if (parsed.contains("stop_timeout_ms")) {
    // cluster.stop_timeout's range (config/schema.yaml).
    SC_ASSIGN_OR_RETURN(int64_t stop_ms, ClusterInteger(parsed, "stop_timeout_ms", 0,
                                                        int64_t{3600} * 1000, where));
    info.stop_timeout = milliseconds(stop_ms);
  }
  SC_ASSIGN_OR_RETURN(const Json* processes, ClusterField(parsed, "processes", where));
  if (!processes->is_array()) return base::DataLoss(where + ": 'processes' must be a list");
  for (size_t i = 0; i < processes->size(); ++i) {
    const Json& entry = (*processes)[i];
    const std::string entry_where = where + ": processes[" + std::to_string(i) + "]";
    if (!entry.is_object()) return base::DataLoss(entry_where + " must be an object");
    ClusterProcess process;
    SC_ASSIGN_OR_RETURN(process.name, ClusterString(entry, "name", entry_where));
    SC_ASSIGN_OR_RETURN(process.role, ClusterString(entry, "role", entry_where));
    SC_ASSIGN_OR_RETURN(process.region, ClusterString(entry, "region", entry_where));
    // A pid that does not fit pid_t would wrap to another process's, which `down` signals.
    SC_ASSIGN_OR_RETURN(int64_t pid, ClusterInteger(entry, "pid", 1,
                                                    std::numeric_limits<pid_t>::max(),
                                                    entry_where));
    process.pid = static_cast<pid_t>(pid);
    SC_ASSIGN_OR_RETURN(process.program, ClusterString(entry, "program", entry_where));
    SC_ASSIGN_OR_RETURN(process.log, ClusterString(entry, "log", entry_where));
    SC_ASSIGN_OR_RETURN(process.endpoint, ClusterString(entry, "endpoint", entry_where));
    info.processes.push_back(std::move(process));
  }
  return info;
}

base::Status StopLocalCluster(const fs::path& data_dir, const StopOptions& options,
                              const std::function<void(const std::string&)>& progress) {
  SC_ASSIGN_OR_RETURN(ClusterInfo info, LoadClusterInfo(data_dir));
  std::vector<const ClusterProcess*> targets;
  for (auto it = info.processes.rbegin(); it != info.processes.rend(); ++it) {
    if (options.region.empty() || it->region == options.region) targets.push_back(&*it);
  }
  if (!options.region.empty() && targets.empty()) {
    return base::NotFound("the cluster has no region '" + options.region + "'");
  }
  // Front to back: the global endpoint and routers stop taking requests before the workers
  // that serve them drain, and enclaves go last.
  for (const ClusterProcess* process : targets) {
    if (SignalProcess(process->pid, process->program, options.kill ? SIGKILL : SIGTERM)) {
      progress((options.kill ? "killed " : "stopping ") + process->name + " (pid " +
               std::to_string(process->pid) + ")");
    }
    if (!options.kill && !WaitForExit(process->pid, process->program,
                                      options.timeout.value_or(info.stop_timeout))) {
      progress(process->name + " did not stop within the timeout; killing it");
      SignalProcess(process->pid, process->program, SIGKILL);
    }
  }
  for (const ClusterProcess* process : targets) {
    WaitForExit(process->pid, process->program, milliseconds(2000));
  }
  if (options.region.empty()) {
    std::error_code error;
    fs::remove(ClusterFile(data_dir), error);
  }
  return base::Status::Ok();
}

}  // namespace supercluster::controller
