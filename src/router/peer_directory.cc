#include "router/peer_directory.h"

#include "store/records.h"

namespace supercluster::router {
namespace {

std::atomic<uint64_t> next_directory_id{1};

}  // namespace

PeerDirectory::PeerDirectory() : id_(next_directory_id.fetch_add(1, std::memory_order_relaxed)) {}

base::Result<std::unique_ptr<PeerDirectory>> PeerDirectory::Create(
    const store::PrefixCache* routers, const store::PrefixCache* regions,
    const std::vector<std::string>& via, std::string own_region) {
  std::unique_ptr<PeerDirectory> directory(new PeerDirectory());
  directory->routers_ = routers;
  directory->regions_ = regions;
  directory->own_region_ = std::move(own_region);
  for (const std::string& entry : via) {
    size_t equals = entry.find('=');
    if (equals == std::string::npos || equals == 0) {
      return base::InvalidArgument("--via " + entry + ": expected REGION=HOST:PORT");
    }
    base::Result<net::Endpoint> endpoint = net::ParseEndpoint(entry.substr(equals + 1));
    if (!endpoint.ok()) {
      return base::InvalidArgument("--via " + entry + ": " + endpoint.status().message());
    }
    directory->via_[entry.substr(0, equals)] = *endpoint;
  }
  return directory;
}

uint64_t PeerDirectory::RoutersVersion() const {
  return routers_ != nullptr ? routers_->Version() : 0;
}

const std::vector<PeerRouter>& PeerDirectory::RegionalRouters() const {
  struct ThreadView {
    uint64_t directory_id = 0;  // id_; 0 for none
    uint64_t version = 0;
    std::shared_ptr<const std::vector<PeerRouter>> peers;
  };
  thread_local ThreadView view;
  // The version first: the list made after it is at least that new.
  const uint64_t version = RoutersVersion();
  if (view.directory_id == id_ && view.version == version) return *view.peers;
  std::lock_guard lock(mutex_);
  // Versions only grow; a thread that read an older one than the list was decoded at
  // takes that list (it is newer) rather than decoding again.
  if (!decoded_version_ || *decoded_version_ < version) {
    decoded_ = std::make_shared<const std::vector<PeerRouter>>(Decode());
    decoded_version_ = version;
  }
  view.directory_id = id_;
  view.version = *decoded_version_;
  view.peers = decoded_;
  return *view.peers;
}

std::vector<PeerRouter> PeerDirectory::Decode() const {
  std::map<std::string, net::Endpoint> by_region;
  if (routers_ != nullptr) {
    auto snapshot = routers_->Snapshot();
    for (const auto& [key, kv] : snapshot->entries) {
      base::Result<store::RouterEndpoint> record = store::DecodeRouterEndpoint(kv.value, key);
      if (!record.ok() || record->tier != "regional") continue;
      if (by_region.count(record->region)) continue;  // the first by key stands for its region
      base::Result<net::Endpoint> endpoint = net::ParseEndpoint(record->address);
      if (!endpoint.ok()) continue;
      by_region[record->region] = *endpoint;
    }
  }
  for (const auto& [region, endpoint] : via_) by_region[region] = endpoint;
  std::vector<PeerRouter> peers;
  for (auto& [region, endpoint] : by_region) {
    if (region == own_region_) continue;
    peers.push_back(PeerRouter{region, endpoint});
  }
  return peers;
}

std::vector<std::string> PeerDirectory::SpillPreference() const {
  if (regions_ == nullptr || own_region_.empty()) return {};
  auto snapshot = regions_->Snapshot();
  auto it = snapshot->entries.find(store::keys::Region(own_region_));
  if (it == snapshot->entries.end()) return {};
  base::Result<store::Region> region = store::DecodeRegion(it->second.value, it->first);
  if (!region.ok()) return {};
  return region->peers;
}

}  // namespace supercluster::router
