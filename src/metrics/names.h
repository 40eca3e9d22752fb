// The name of every metric Supercluster exports, in one place, so that dashboards, alerts
// and docs can be checked against one list and no two modules export the same thing under
// two names. Code that defines a metric (metrics::HttpMetrics, the process collector, and
// later the router, worker and engine) takes the name from here.
//
// The names follow Prometheus' rules, which `promtool check metrics` enforces: base units
// spelled out in the name (_seconds, _bytes), counters end in _total, and every label has a
// bounded set of values.
#pragma once

namespace supercluster::metrics {

// ---- HTTP server (every service; updated by metrics::HttpMetrics) ----

// Counter {method, route, code}: requests answered. `route` is the router's pattern, not
// the raw path, and `method` is one of the standard methods or "other", so a client cannot
// create series at will.
inline constexpr char kHttpRequestsTotal[] = "supercluster_http_requests_total";

// Histogram {method, route}: time from the start of a request to the end of its response,
// as net::HttpServer measures it, in seconds.
inline constexpr char kHttpRequestDurationSeconds[] = "supercluster_http_request_duration_seconds";

// Gauge: client connections open now.
inline constexpr char kHttpConnectionsOpen[] = "supercluster_http_connections_open";

// Label names of the HTTP metrics above.
inline constexpr char kMethodLabel[] = "method";
inline constexpr char kRouteLabel[] = "route";
inline constexpr char kCodeLabel[] = "code";

// ---- GPU cluster (names fixed by the product spec; defined by later modules) ----

// Gauge: inference requests per second the cluster is serving, averaged by its producer
// over a short window. The spec asks for a ready-made gauge; rate() over a counter is the
// Prometheus-native equivalent.
inline constexpr char kGpuClusterRps[] = "gpu_cluster_rps";

// Gauge: inference requests admitted but not yet running.
inline constexpr char kGpuClusterQueueDepth[] = "gpu_cluster_queue_depth";

// Histogram: time to load a model until it can serve, in seconds.
inline constexpr char kGpuClusterModelLoadTimeSeconds[] = "gpu_cluster_model_load_time_seconds";

// Histogram: time to answer one inference request, in seconds. P50/P95/P99 are computed at
// query time with histogram_quantile(), so they can be aggregated across workers (a
// per-process summary's quantiles cannot).
inline constexpr char kGpuClusterInferenceLatencySeconds[] =
    "gpu_cluster_inference_latency_seconds";

// ---- Worker (src/worker) ----

// Histogram: time from a request's arrival at a worker to its first generated token, in
// seconds (the prefill and queueing a user waits through before text starts to flow).
inline constexpr char kWorkerTimeToFirstTokenSeconds[] =
    "supercluster_worker_time_to_first_token_seconds";

// Gauge: sequences the worker's engine is running now (in its batch).
inline constexpr char kWorkerRunningSequences[] = "supercluster_worker_running_sequences";

// Gauge: tokens the worker's engine generated over the last 5 s, per second (0 once idle
// that long).
inline constexpr char kWorkerTokensPerSecond[] = "supercluster_worker_tokens_per_second";

// Counter {outcome}: requests the worker turned away before running them, by why
// (outcome: "queue_full", "loading", "draining", "bad_request", "forbidden",
// "unknown_model", "enclave_refused", "enclave_unavailable").
inline constexpr char kWorkerRejectedTotal[] = "supercluster_worker_rejected_total";
inline constexpr char kOutcomeLabel[] = "outcome";

// ---- Cluster state (src/store; routers and workers, store::ExportCacheStaleness) ----

// Gauge {prefix}: seconds since the process's copy of the store keys under `prefix`
// (a store::PrefixCache) last confirmed it was in step with the store: a watch event, or a
// probe every half second. It grows while the store cannot be reached; the process then
// serves from the last copy it had, so alert when it stays above a few seconds.
inline constexpr char kStoreCacheStalenessSeconds[] = "supercluster_store_cache_staleness_seconds";
inline constexpr char kPrefixLabel[] = "prefix";

// ---- Router (router --tier regional|global; defined by router::RouterMetrics) ----

// Counter {tier, outcome}: client requests on the proxied paths, by how they ended: ok,
// upstream_error (a 5xx passed on), stream_broken (failed after the first byte),
// no_upstream (nothing could take it), unauthenticated, rate_limited, too_large,
// bad_request, not_found, region_forbidden, plaintext_forbidden (a confidential tenant's
// request to the OpenAI-compatible API), cancelled (the client went away).
inline constexpr char kRouterRequestsTotal[] = "supercluster_router_requests_total";

// Histogram {tier, kind}: time from sending a request upstream to its response head, in
// seconds; kind is worker or router (another region's).
inline constexpr char kRouterUpstreamLatencySeconds[] =
    "supercluster_router_upstream_latency_seconds";

// Counter {tier}: upstreams ejected by outlier detection (consecutive failures).
inline constexpr char kRouterEjectionsTotal[] = "supercluster_router_ejections_total";

// Counter {tier}: requests handed to another region's router (X-Supercluster-Spilled).
inline constexpr char kRouterSpillsTotal[] = "supercluster_router_spills_total";

// Counter {tier}: second and later attempts of a request on another upstream.
inline constexpr char kRouterRetriesTotal[] = "supercluster_router_retries_total";

// Gauge {tier}: upstreams that may get traffic now (not ejected, passing health checks).
inline constexpr char kRouterUpstreamsAvailable[] = "supercluster_router_upstreams_available";

// ---- Process (the standard names every Prometheus client library exports) ----

// Counter: user plus system CPU time used by the process, in seconds.
inline constexpr char kProcessCpuSecondsTotal[] = "process_cpu_seconds_total";

// Gauge: file descriptors the process has open.
inline constexpr char kProcessOpenFds[] = "process_open_fds";

// Gauge: resident set size, in bytes.
inline constexpr char kProcessResidentMemoryBytes[] = "process_resident_memory_bytes";

// Gauge: when the process started, in seconds since the Unix epoch.
inline constexpr char kProcessStartTimeSeconds[] = "process_start_time_seconds";

}  // namespace supercluster::metrics
