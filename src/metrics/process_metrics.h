// The standard process_* metrics (CPU time, resident memory, open file descriptors, start
// time) with the names and meanings every Prometheus client library gives them, so stock
// dashboards and alerts work on our services too. Read from /proc at each scrape;
// Registry::Serialize calls this, nothing else needs to.
#pragma once

#include <prometheus/metric_family.h>

#include <vector>

namespace supercluster::metrics {

// One family per metric that could be read from /proc/self now. A metric whose source
// cannot be read (no /proc, an unexpected format) is left out rather than reported as 0,
// so that a dashboard shows "no data" instead of a wrong value.
std::vector<prometheus::MetricFamily> CollectProcessMetrics();

}  // namespace supercluster::metrics
