// The data-plane cache's metric: how stale each of a process's store::PrefixCache copies
// is, as the gauge supercluster_store_cache_staleness_seconds{prefix} (metrics/names.h),
// read at every scrape. Routers and workers keep serving from their last copy while the
// store is unreachable; this is where an operator sees that they are.
#pragma once

#include "metrics/registry.h"
#include "store/prefix_cache.h"

namespace supercluster::store {

// Adds `cache`'s series to `registry`, set from cache.Staleness() before every scrape.
// Precondition: `cache` outlives every scrape of `registry` (stop the server that serves
// /metrics before destroying the cache), and no two exported caches share a prefix.
void ExportCacheStaleness(const PrefixCache& cache, metrics::Registry& registry);

}  // namespace supercluster::store
