// `supercluster up`, `down` and `status`: a whole multi-region cluster on this machine as
// separate processes (controller/local_cluster.h), stopped cleanly, and looked at.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <optional>
#include <sstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "base/data_dir.h"
#include "base/flags.h"
#include "base/service_flags.h"
#include "cli/command.h"
#include "cli/commands.h"
#include "controller/child_process.h"
#include "controller/local_cluster.h"
#include "net/http_client.h"
#include "store/open_store.h"
#include "store/records.h"

namespace supercluster::cli {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

int Usage(const std::string& command, const std::string& why) {
  std::cerr << "supercluster " << command << ": " << why << "\n";
  return kExitUsage;
}

int Fail(const std::string& command, const std::string& why) {
  std::cerr << "supercluster " << command << ": " << why << "\n";
  return kExitFailure;
}

fs::path ThisBinary() {
  std::error_code error;
  return fs::read_symlink("/proc/self/exe", error);
}

// supercluster-enclave beside this binary, as installed, or in the build tree's sibling
// directory (build/release/apps/supercluster-enclave/).
fs::path FindEnclaveBinary() {
  fs::path here = ThisBinary().parent_path();
  for (const fs::path& candidate :
       {here / "supercluster-enclave", here.parent_path() / "supercluster-enclave" /
                                           "supercluster-enclave"}) {
    if (fs::exists(candidate)) return candidate;
  }
  return here / "supercluster-enclave";
}

// The bundled model: models/kjv/kjv.gguf in the source tree above the binary.
fs::path FindBundledModel() {
  for (fs::path dir = ThisBinary().parent_path(); !dir.empty() && dir != dir.root_path();
       dir = dir.parent_path()) {
    fs::path candidate = dir / "models" / "kjv" / "kjv.gguf";
    if (fs::exists(candidate)) return candidate;
  }
  return "models/kjv/kjv.gguf";
}

void PrintProgress(const std::string& line) { std::cerr << "supercluster up: " << line << "\n"; }

// Set by a SIGINT, SIGTERM or SIGHUP while `up` starts the cluster: the start then stops
// what it started instead of leaving it running where no cluster.json names it.
std::atomic<bool> start_interrupted{false};
static_assert(std::atomic<bool>::is_always_lock_free, "set from a signal handler");

void NoteInterrupt(int) { start_interrupted.store(true); }
void IgnoreSignal(int) {}

// While alive, the signals that would end `up` mid-start are caught instead. Caught (not
// ignored) so that the children, whose handlers exec resets, keep the default ones. A
// closed stdout or stderr (`up | head`) makes writes fail with EPIPE instead of killing
// `up` half-way.
class InterruptibleStart {
 public:
  InterruptibleStart() {
    for (size_t i = 0; i < std::size(kSignals); ++i) {
      struct sigaction action {};
      action.sa_handler = kSignals[i] == SIGPIPE ? IgnoreSignal : NoteInterrupt;
      sigemptyset(&action.sa_mask);
      ::sigaction(kSignals[i], &action, &saved_[i]);
    }
  }
  ~InterruptibleStart() {
    for (size_t i = 0; i < std::size(kSignals); ++i) ::sigaction(kSignals[i], &saved_[i], nullptr);
  }
  InterruptibleStart(const InterruptibleStart&) = delete;
  InterruptibleStart& operator=(const InterruptibleStart&) = delete;

 private:
  static constexpr int kSignals[] = {SIGINT, SIGTERM, SIGHUP, SIGPIPE};
  struct sigaction saved_[std::size(kSignals)] = {};
};

}  // namespace

int RunUp(const std::vector<std::string>& args) {
  base::ServiceFlags service_flags;
  std::string data_dir = base::DefaultDataDir();
  // Empty: the config's value (a string, so that --help shows no default of its own).
  std::string model, enclave_binary, regions, workers_per_region, client_region, global_listen,
      rtts;
  std::vector<std::string> service_settings;
  bool json = false;
  base::FlagSet flags("supercluster up [flags]");
  service_flags.Register(flags);
  flags.AddString("data-dir", &data_dir, "the local cluster's state, keys and logs");
  flags.AddString("model", &model, "the model file every worker serves (default: the bundled "
                                   "models/kjv/kjv.gguf)");
  flags.AddString("enclave-binary", &enclave_binary, "supercluster-enclave (default: beside "
                                                     "this binary)");
  flags.AddString("regions", &regions, "comma-separated regions (overrides cluster.regions)");
  flags.AddString("workers-per-region", &workers_per_region,
               "workers per region (overrides cluster.workers_per_region)");
  flags.AddString("client-region", &client_region,
                  "where the global endpoint stands (overrides cluster.client_region)");
  flags.AddString("global-listen", &global_listen,
                  "HOST:PORT of the global endpoint (overrides cluster.global_listen)");
  flags.AddString("rtts", &rtts, "A:B=12ms,... round-trip times (overrides cluster.rtts)");
  flags.AddRepeated("service-set", &service_settings,
                    "KEY=VALUE given to every worker and router as --set");
  flags.AddBool("json", &json, "print what was started as JSON");
  bool netns = false;
  flags.AddBool("netns", &netns,
                "each region in its own network namespace sc-REGION (root; create them first "
                "with scripts/netns-regions up)");
  if (base::Status parsed = flags.Parse(args); !parsed.ok()) return Usage("up", parsed.message());
  if (flags.help_requested()) {
    std::cout << flags.Help();
    return kExitOk;
  }
  auto config = service_flags.LoadConfig("up");
  if (!config.ok()) return Fail("up", config.status().message());
  auto options = controller::LocalClusterOptions::FromConfig(*config);
  if (!options.ok()) return Fail("up", options.status().message());
  if (!regions.empty()) {
    options->regions.clear();
    std::stringstream list(regions);
    for (std::string region; std::getline(list, region, ',');) {
      if (!region.empty()) options->regions.push_back(region);
    }
  }
  if (!workers_per_region.empty()) {
    int count = 0;
    const char* end = workers_per_region.data() + workers_per_region.size();
    auto [stop, error] = std::from_chars(workers_per_region.data(), end, count);
    if (error != std::errc() || stop != end || count < 1 || count > 64) {
      return Usage("up", "--workers-per-region must be 1..64");
    }
    options->workers_per_region = count;
  }
  if (!client_region.empty()) options->client_region = client_region;
  if (!global_listen.empty()) options->global_listen = global_listen;
  if (!rtts.empty()) {
    // The flag's own regions must be the cluster's (a typo would pass silently otherwise).
    controller::LocalClusterOptions given;
    if (base::Status parsed = controller::ParseRtts(rtts, given); !parsed.ok()) {
      return Usage("up", "--rtts: " + parsed.message());
    }
    for (const auto& [pair, rtt] : given.rtts) {
      for (const std::string& region : {pair.first, pair.second}) {
        if (std::find(options->regions.begin(), options->regions.end(), region) ==
            options->regions.end()) {
          return Usage("up", "--rtts names region '" + region + "', which is not one of the "
                             "cluster's regions");
        }
      }
      options->rtts[pair] = rtt;
    }
  }
  options->data_dir = fs::absolute(data_dir);
  options->supercluster_binary = ThisBinary();
  options->enclave_binary = enclave_binary.empty() ? FindEnclaveBinary()
                                                   : fs::absolute(enclave_binary);
  options->model = fs::absolute(model.empty() ? FindBundledModel() : fs::path(model));
  options->service_settings = service_settings;
  options->netns = netns;

  options->interrupted = [] { return start_interrupted.load(); };
  base::Result<controller::ClusterInfo> info = [&] {
    InterruptibleStart interruptible;
    return controller::StartLocalCluster(*options, PrintProgress);
  }();
  if (!info.ok()) {
    if (info.status().code() == base::StatusCode::kInvalidArgument) {
      return Usage("up", info.status().message());
    }
    return Fail("up", info.status().message());
  }
  if (json) {
    std::ifstream in(fs::path(data_dir) / "cluster" / "cluster.json");
    std::cout << in.rdbuf();
    return kExitOk;
  }
  std::string api_key;
  std::ifstream(info->demo_api_key_file) >> api_key;
  // The commands to try next need --data-dir too unless it is the default.
  const std::string data_dir_flag =
      fs::absolute(data_dir) == fs::absolute(base::DefaultDataDir()) ? ""
                                                                     : " --data-dir " + data_dir;
  size_t workers = 0;
  for (const auto& process : info->processes) workers += process.role == "worker";
  std::cout << "cluster up: " << info->regions.size() << " regions, " << workers
            << " workers serving model '" << info->model_name << "'\n"
            << "  global endpoint  " << info->global_endpoint << "\n"
            << "  demo tenant      " << info->demo_tenant << "\n"
            << "  API key          " << api_key << "   (also in " << info->demo_api_key_file
            << ")\n"
            << "  logs             " << (fs::path(data_dir) / "cluster" / "logs").string() << "/\n"
            << "  attestation      dev attestor (INSECURE, local only), root "
            << info->dev_root << "\n"
            << "try:  supercluster infer" << data_dir_flag << " --prompt \"And God said\"\n"
            << "      supercluster status" << data_dir_flag << "\n"
            << "stop: supercluster down" << data_dir_flag << "\n";
  return kExitOk;
}

int RunDown(const std::vector<std::string>& args) {
  std::string data_dir = base::DefaultDataDir();
  controller::StopOptions options;
  base::FlagSet flags("supercluster down [--region NAME [--kill]]");
  flags.AddString("data-dir", &data_dir, "the local cluster's state, keys and logs");
  flags.AddString("region", &options.region,
                  "stop only this region's processes (its router, workers and enclaves)");
  flags.AddBool("kill", &options.kill, "SIGKILL at once, as a crash would (failover drills)");
  if (base::Status parsed = flags.Parse(args); !parsed.ok()) return Usage("down", parsed.message());
  if (flags.help_requested()) {
    std::cout << flags.Help();
    return kExitOk;
  }
  // Each process gets the cluster.stop_timeout that `up` was given (kept in cluster.json).
  base::Status stopped = controller::StopLocalCluster(
      data_dir, options, [](const std::string& line) { std::cerr << "supercluster down: " << line << "\n"; });
  if (!stopped.ok()) return Fail("down", stopped.message());
  std::cout << (options.region.empty() ? "cluster stopped\n" : "region " + options.region + " stopped\n");
  return kExitOk;
}

namespace {

// GET PATH from a process's endpoint, briefly; nullopt when it does not answer.
std::optional<net::HttpResponse> Probe(const std::string& endpoint, const std::string& path) {
  auto parsed = net::ParseEndpoint(endpoint);
  if (!parsed.ok()) return std::nullopt;
  net::ClientOptions options = net::ClientOptions::FromConfig(base::Config::Defaults());
  options.connect_timeout = std::chrono::milliseconds(300);
  options.request_timeout = std::chrono::milliseconds(1000);
  net::HttpClient client(*parsed, options);
  net::HttpRequest request;
  request.target = path;
  auto response = client.Request(request);
  if (!response.ok()) return std::nullopt;
  return *response;
}

}  // namespace

int RunStatus(const std::vector<std::string>& args) {
  std::string data_dir = base::DefaultDataDir();
  bool json = false;
  base::FlagSet flags("supercluster status [--json]");
  flags.AddString("data-dir", &data_dir, "the local cluster's state, keys and logs");
  flags.AddBool("json", &json, "machine-readable output");
  if (base::Status parsed = flags.Parse(args); !parsed.ok()) return Usage("status", parsed.message());
  if (flags.help_requested()) {
    std::cout << flags.Help();
    return kExitOk;
  }
  auto info = controller::LoadClusterInfo(data_dir);
  if (!info.ok()) return Fail("status", info.status().message());

  // What the store says about workers: their lifecycle state.
  std::map<std::string, std::string> instance_state;
  if (auto store = store::OpenStore(info->store_url, base::Config::Defaults()); store.ok()) {
    if (auto range = (*store)->Range(store::keys::InstancePrefix("")); range.ok()) {
      for (const auto& kv : range->kvs) {
        if (auto instance = store::DecodeInstance(kv.value, kv.key); instance.ok()) {
          instance_state[instance->id] = store::InstanceStateName(instance->state);
        }
      }
    }
  }

  Json rows = Json::array();
  for (const controller::ClusterProcess& process : info->processes) {
    Json row = {{"name", process.name}, {"role", process.role}, {"region", process.region},
                {"pid", process.pid}, {"endpoint", process.endpoint}};
    bool alive = controller::ProcessRunning(process.pid, process.program);
    row["alive"] = alive;
    std::string health = alive ? "up" : "down";
    if (alive && (process.role == "worker" || process.role == "router" || process.role == "global")) {
      auto ready = Probe(process.endpoint, "/readyz");
      health = !ready ? "not answering" : ready->status == 200 ? "ready" : "not ready";
      if (auto status = Probe(process.endpoint, "/v1/status"); status && status->status == 200) {
        Json parsed = Json::parse(status->body, nullptr, false);
        if (parsed.is_object()) row["status"] = parsed;
      }
    }
    row["health"] = health;
    if (process.role == "worker") {
      auto found = instance_state.find(process.name);
      row["state"] = found == instance_state.end() ? "unregistered" : found->second;
      // The store keeps a dead worker's record until its lease runs out: say so rather than
      // show a killed worker as serving.
      row["stale_registration"] = !alive && found != instance_state.end();
    }
    rows.push_back(row);
  }
  if (json) {
    std::cout << Json{{"global_endpoint", info->global_endpoint}, {"processes", rows}}.dump(2)
              << "\n";
    return kExitOk;
  }
  std::cout << "global endpoint " << info->global_endpoint << "\n\n";
  std::cout << std::left << std::setw(11) << "REGION" << std::setw(22) << "PROCESS"
            << std::setw(9) << "ROLE" << std::setw(9) << "PID" << std::setw(15) << "HEALTH"
            << std::setw(14) << "STATE" << "LOAD\n";
  bool any_stale = false;
  for (const Json& row : rows) {
    std::string state = row.contains("state") ? row["state"].get<std::string>() : "-";
    if (row.value("stale_registration", false)) {
      state = "stale";
      any_stale = true;
    }
    std::string load;
    if (row.contains("status")) {
      const Json& status = row["status"];
      if (status.contains("running") && status.contains("queued")) {
        load = "running " + status["running"].dump() + ", queued " + status["queued"].dump();
      } else if (status.contains("outstanding")) {
        load = "in flight " + status["outstanding"].dump();
      }
    }
    std::cout << std::left << std::setw(11) << row["region"].get<std::string>()
              << std::setw(22) << row["name"].get<std::string>() << std::setw(9)
              << row["role"].get<std::string>() << std::setw(9) << row["pid"].dump()
              << std::setw(15) << row["health"].get<std::string>() << std::setw(14) << state
              << load << "\n";
  }
  if (any_stale) {
    std::cout << "\nstale: the worker's process is gone but its registration stays in the store "
                 "until its lease runs out\n(worker.lease_ttl); routers stop sending to it as "
                 "soon as their health checks fail.\n";
  }
  return kExitOk;
}

}  // namespace supercluster::cli
