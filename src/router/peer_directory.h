// Where the other routers are: the regional routers of every region (for the global tier,
// and for a regional router's spills), from store::RouterEndpoint records under
// keys::RouterPrefix(""), with each region's address overridden by `--via REGION=HOST:PORT`
// (the way between regions may differ from where a router listens, docs/data-plane.md);
// plus the spill preference of this router's own region (store::Region::peers).
//
// A region named only by --via (no record) is still a peer: a router started by hand or a
// test can name its peers without a store. Callers: RouterService (the global tier per
// request, a regional router per spill). Thread-safe.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "base/status.h"
#include "net/endpoint.h"
#include "store/prefix_cache.h"

namespace supercluster::router {

struct PeerRouter {
  std::string region;
  net::Endpoint endpoint;
};

class PeerDirectory {
 public:
  // `routers` follows keys::RouterPrefix(""), `regions` keys::Region(""); either may be
  // null (no store). `via` holds "REGION=HOST:PORT" entries as given on the command line;
  // a malformed one is kInvalidArgument naming it. Preconditions: the caches outlive this.
  static base::Result<std::unique_ptr<PeerDirectory>> Create(
      const store::PrefixCache* routers, const store::PrefixCache* regions,
      const std::vector<std::string>& via, std::string own_region);

  // One regional router per region other than the own region (every region when the own
  // region is ""), sorted by region name. The records are decoded again only when the
  // store's copy changed (decoding them cost the global tier more per request than the
  // rest of its routing), and when nothing changed since the calling thread last asked it
  // reads one atomic and writes nothing another thread shares. The list is valid until
  // this thread calls RegionalRouters again, on any PeerDirectory.
  const std::vector<PeerRouter>& RegionalRouters() const;

  // The own region's record's `peers`, in order; empty when there is none.
  std::vector<std::string> SpillPreference() const;

 private:
  PeerDirectory();
  // The list from the records in the store's copy now, and --via.
  std::vector<PeerRouter> Decode() const;
  // routers_'s version (0 without a store: the list never changes then).
  uint64_t RoutersVersion() const;

  // Tells this directory's entries in the threads' caches from another's (one made later
  // at the same address included): unique per process.
  const uint64_t id_;
  const store::PrefixCache* routers_ = nullptr;
  const store::PrefixCache* regions_ = nullptr;
  std::map<std::string, net::Endpoint> via_;
  std::string own_region_;

  mutable std::mutex mutex_;  // guards what follows
  mutable std::optional<uint64_t> decoded_version_;  // routers_'s, when decoded_ was made
  mutable std::shared_ptr<const std::vector<PeerRouter>> decoded_;
};

}  // namespace supercluster::router
