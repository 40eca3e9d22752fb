#include "store/cache_metrics.h"

#include <chrono>

#include "metrics/names.h"

namespace supercluster::store {

void ExportCacheStaleness(const PrefixCache& cache, metrics::Registry& registry) {
  prometheus::Gauge& gauge =
      registry
          .AddGauge(metrics::kStoreCacheStalenessSeconds,
                    "Seconds since this process's copy of the store keys under the prefix last "
                    "confirmed it was in step with the store.")
          .Add({{metrics::kPrefixLabel, cache.prefix()}});
  registry.AddScrapeHook([&cache, &gauge] {
    gauge.Set(std::chrono::duration<double>(cache.Staleness()).count());
  });
}

}  // namespace supercluster::store
