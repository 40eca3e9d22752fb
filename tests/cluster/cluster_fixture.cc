#include "cluster_fixture.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <gtest/gtest.h>
#include <sstream>

#include "base/config.h"
#include "controller/child_process.h"
#include "crypto/bytes.h"
#include "crypto/random.h"
#include "net/http_client.h"
#include "router/tenant_gate.h"
#include "store/open_store.h"

namespace supercluster::testing {

namespace fs = std::filesystem;

std::vector<controller::ClusterProcess> TestCluster::Processes(const std::string& role,
                                                               const std::string& region) const {
  std::vector<controller::ClusterProcess> found;
  for (const controller::ClusterProcess& process : info.processes) {
    if (process.role == role && (region.empty() || process.region == region)) {
      found.push_back(process);
    }
  }
  return found;
}

void TestCluster::KillRegion(const std::string& region) const {
  controller::StopOptions options;
  options.region = region;
  options.kill = true;
  base::Status stopped = controller::StopLocalCluster(data_dir, options, [](const std::string&) {});
  EXPECT_TRUE(stopped.ok()) << stopped.ToString();
}

void TestCluster::Stop() {
  controller::StopOptions options;
  options.timeout = std::chrono::milliseconds(5000);
  base::Status stopped = controller::StopLocalCluster(data_dir, options, [](const std::string&) {});
  EXPECT_TRUE(stopped.ok()) << stopped.ToString();
  std::error_code error;
  fs::remove_all(data_dir, error);
}

std::unique_ptr<TestCluster> StartTestCluster(const std::string& name,
                                              std::vector<std::string> settings,
                                              int64_t workers_per_region) {
  auto cluster = std::make_unique<TestCluster>();
  cluster->data_dir = fs::temp_directory_path() /
                      ("supercluster-" + name + "-" + std::to_string(::getpid()));
  std::error_code error;
  fs::remove_all(cluster->data_dir, error);
  auto options = controller::LocalClusterOptions::FromConfig(base::Config::Defaults());
  EXPECT_TRUE(options.ok());
  if (!options.ok()) return nullptr;
  options->data_dir = cluster->data_dir;
  options->supercluster_binary = SUPERCLUSTER_BINARY_PATH;
  options->enclave_binary = SUPERCLUSTER_ENCLAVE_BINARY_PATH;
  options->model = fs::path(SUPERCLUSTER_SOURCE_DIR) / "models" / "kjv" / "kjv.gguf";
  options->workers_per_region = workers_per_region;
  options->global_listen = "127.0.0.1:0";
  options->service_settings = std::move(settings);
  options->stop_with_caller = true;  // a crashed test leaves no processes behind
  auto info = controller::StartLocalCluster(*options, [](const std::string& line) {
    std::cerr << "[cluster] " << line << "\n";
  });
  EXPECT_TRUE(info.ok()) << info.status().ToString();
  if (!info.ok()) return nullptr;
  cluster->info = std::move(*info);
  std::ifstream(cluster->info.demo_api_key_file) >> cluster->demo_api_key;
  return cluster;
}

void SharedClusterEnvironment::SetUp() {
  cluster_ = StartTestCluster(name_, settings_);
  *published_ = cluster_.get();
}

void SharedClusterEnvironment::TearDown() {
  if (cluster_) cluster_->Stop();
  *published_ = nullptr;
}

std::string AddTenant(const TestCluster& cluster, store::Tenant tenant) {
  auto secret = crypto::RandomBytes(16);
  std::string api_key = "sc-" + tenant.id + "-" + crypto::ToHex(*secret);
  tenant.api_key_hashes.push_back(router::HashApiKey(api_key));
  auto store = store::OpenStore(cluster.info.store_url, base::Config::Defaults());
  EXPECT_TRUE(store.ok());
  if (!store.ok()) return api_key;
  auto put = (*store)->Put(store::keys::Tenant(tenant.id), store::Encode(tenant));
  EXPECT_TRUE(put.ok()) << put.status().ToString();
  return api_key;
}

client::ClusterClientOptions ClientOptions(const TestCluster& cluster,
                                           const std::string& api_key) {
  client::ClusterClientOptions options;
  options.endpoint = cluster.info.global_endpoint;
  options.api_key = api_key;
  options.candidates = 4;
  options.http = net::ClientOptions::FromConfig(base::Config::Defaults());
  std::ifstream in(cluster.info.dev_root);
  std::stringstream pem;
  pem << in.rdbuf();
  EXPECT_TRUE(options.policy.SetRootCertificate(crypto::AsBytes(pem.str())).ok());
  crypto::Bytes pcr0;
  EXPECT_TRUE(crypto::FromHex(cluster.info.enclave_pcr0_hex, &pcr0));
  options.policy.allowed_measurements.push_back({{0, pcr0}});
  return options;
}

base::Result<net::HttpResponse> Call(const std::string& endpoint, net::HttpRequest request) {
  SC_ASSIGN_OR_RETURN(net::Endpoint parsed, net::ParseEndpoint(endpoint));
  net::HttpClient client(parsed, net::ClientOptions::FromConfig(base::Config::Defaults()));
  return client.Request(request);
}

std::optional<bool> MemoryContains(pid_t pid, const std::string& marker) {
  std::ifstream maps("/proc/" + std::to_string(pid) + "/maps");
  int mem = ::open(("/proc/" + std::to_string(pid) + "/mem").c_str(), O_RDONLY | O_CLOEXEC);
  if (!maps || mem < 0) {
    if (mem >= 0) ::close(mem);
    return std::nullopt;
  }
  bool read_any = false;
  bool found = false;
  std::string line;
  std::vector<char> buffer;
  while (!found && std::getline(maps, line)) {
    // "start-end perms offset dev inode path": scan every readable, private mapping (heap,
    // stacks, anonymous memory), not the mapped files of the binary and libraries.
    std::istringstream fields(line);
    std::string range, perms, offset, device, inode, path;
    fields >> range >> perms >> offset >> device >> inode >> path;
    if (perms.size() < 4 || perms[0] != 'r' || perms[3] != 'p') continue;
    if (!path.empty() && path[0] == '/' ) continue;
    if (path == "[vvar]" || path == "[vsyscall]") continue;
    size_t dash = range.find('-');
    uint64_t start = std::stoull(range.substr(0, dash), nullptr, 16);
    uint64_t end = std::stoull(range.substr(dash + 1), nullptr, 16);
    // Huge reservations (a sanitizer's shadow memory) are mostly unbacked: skip them.
    if (end - start > (uint64_t{1} << 32)) continue;
    // Read in slices that overlap by the marker's length, so a marker across two slices
    // is still found; a slice that cannot be read (a guard page) is skipped.
    constexpr uint64_t kSlice = 1 << 20;
    for (uint64_t at = start; at < end && !found; at += kSlice) {
      uint64_t length = std::min<uint64_t>(kSlice + marker.size(), end - at);
      buffer.resize(length);
      ssize_t got = ::pread(mem, buffer.data(), length, static_cast<off_t>(at));
      if (got <= 0) continue;
      read_any = true;
      found = std::string_view(buffer.data(), static_cast<size_t>(got)).find(marker) !=
              std::string_view::npos;
    }
  }
  ::close(mem);
  if (!read_any) return std::nullopt;
  return found;
}

bool FilesContain(const fs::path& dir, const std::string& marker) {
  for (const auto& entry : fs::recursive_directory_iterator(dir)) {
    if (!entry.is_regular_file()) continue;
    std::ifstream in(entry.path(), std::ios::binary);
    std::stringstream text;
    text << in.rdbuf();
    if (text.str().find(marker) != std::string::npos) return true;
  }
  return false;
}

}  // namespace supercluster::testing
