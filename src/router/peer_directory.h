// Where the other routers are: the regional routers of every region (for the global tier,
// and for a regional router's spills), from store::RouterEndpoint records under
// keys::RouterPrefix(""), with each region's address overridden by `--via REGION=HOST:PORT`
// (the way between regions may differ from where a router listens, docs/data-plane.md);
// plus the spill preference of this router's own region (store::Region::peers). A region
// whose record says it is not `accepting` (drained by an operator) is left out of the
// peers: the global tier stops sending to it and no router spills to it, while its own
// router still serves whoever reaches it directly.
//
// A region named only by --via (no record) is still a peer: a router started by hand or a
// test can name its peers without a store. Callers: RouterService (the global tier per
// request, a regional router per spill). Thread-safe.
#pragma once

#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "base/status.h"
#include "net/endpoint.h"
#include "store/derived_view.h"
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
  // region is "") and other than the drained ones, sorted by region name. The records are decoded again only when the
  // store's copy changed (decoding them cost the global tier more per request than the
  // rest of its routing), and read from the calling thread's own reference
  // (store::DerivedView). The list is valid until this thread calls RegionalRouters
  // again, on any PeerDirectory.
  const std::vector<PeerRouter>& RegionalRouters() const;

  // The own region's record's `peers`, in order; empty when there is none.
  std::vector<std::string> SpillPreference() const;

  // Whether `region` is one of the cluster's: the own region, a region with a record (even
  // while none of its routers runs), or a peer in RegionalRouters(). Calls RegionalRouters.
  bool KnowsRegion(const std::string& region) const;

 private:
  PeerDirectory(const store::PrefixCache* routers, const store::PrefixCache* regions,
                std::string own_region);
  // The list from the router records of `routers` (null: none), and --via.
  std::vector<PeerRouter> Decode(const store::PrefixSnapshot* routers) const;
  // The regions whose record says they are not accepting traffic.
  static std::set<std::string> DecodeDrained(const store::PrefixSnapshot* regions);

  const store::PrefixCache* const regions_;
  std::map<std::string, net::Endpoint> via_;  // set by Create, before the first Decode
  const std::string own_region_;
  const store::DerivedView<std::vector<PeerRouter>> regional_routers_;
  const store::DerivedView<std::set<std::string>> drained_regions_;
};

}  // namespace supercluster::router
