#include "router/peer_directory.h"

#include <algorithm>

#include "store/records.h"

namespace supercluster::router {

PeerDirectory::PeerDirectory(const store::PrefixCache* routers,
                             const store::PrefixCache* regions, std::string own_region)
    : regions_(regions),
      own_region_(std::move(own_region)),
      regional_routers_(routers, [this](const store::PrefixSnapshot* snapshot) {
        return Decode(snapshot);
      }),
      drained_regions_(regions, &PeerDirectory::DecodeDrained) {}

base::Result<std::unique_ptr<PeerDirectory>> PeerDirectory::Create(
    const store::PrefixCache* routers, const store::PrefixCache* regions,
    const std::vector<std::string>& via, std::string own_region) {
  std::unique_ptr<PeerDirectory> directory(
      new PeerDirectory(routers, regions, std::move(own_region)));
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

const std::vector<PeerRouter>& PeerDirectory::RegionalRouters() const {
  const std::vector<PeerRouter>& all = regional_routers_.Current();
  const std::set<std::string>& drained = drained_regions_.Current();
  if (drained.empty()) return all;  // the usual case: no copy
  // Only while an operator drains a region: the list without it, in this thread's buffer
  // (valid, as promised, until the thread's next call).
  static thread_local std::vector<PeerRouter> open;
  open.clear();
  for (const PeerRouter& peer : all) {
    if (!drained.contains(peer.region)) open.push_back(peer);
  }
  return open;
}

std::set<std::string> PeerDirectory::DecodeDrained(const store::PrefixSnapshot* regions) {
  std::set<std::string> drained;
  if (regions == nullptr) return drained;
  for (const auto& [key, kv] : regions->entries) {
    base::Result<store::Region> region = store::DecodeRegion(kv.value, key);
    if (region.ok() && !region->accepting) drained.insert(region->name);
  }
  return drained;
}

std::vector<PeerRouter> PeerDirectory::Decode(const store::PrefixSnapshot* routers) const {
  std::map<std::string, net::Endpoint> by_region;
  if (routers != nullptr) {
    for (const auto& [key, kv] : routers->entries) {
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

bool PeerDirectory::KnowsRegion(const std::string& region) const {
  if (region == own_region_) return true;
  if (regions_ != nullptr && regions_->Snapshot()->entries.contains(store::keys::Region(region))) {
    return true;
  }
  const std::vector<PeerRouter>& peers = RegionalRouters();
  return std::any_of(peers.begin(), peers.end(),
                     [&](const PeerRouter& peer) { return peer.region == region; });
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
