// balancer_bench: what the router's shared Balancer costs per proxied request when several
// io threads use it at once.
//
// One request is what the regional tier does for a first try: PickAndStart over two worker
// ids ("bench/static-1", "bench/static-2", as `--static-worker` names them) with
// first_try = true, then OnFinish(id, kSuccess, time_to_head) with time_to_head cycling
// through 50, 100, 150 and 200 µs (so the peak EWMA both jumps up and decays through
// std::exp). The Balancer has its defaults: coarse clock, per-thread random engine.
//
// Shared: T threads make requests on ONE Balancer, as the router's io threads do (the two
// entries' counts and latency estimates written per request; the request path takes no
// lock since 2026-11-28, but each thread's pick still reads what the others wrote).
// Private, the anchor: T threads each make the same requests on a Balancer of their own,
// built and warmed in that thread: the same work with nothing shared.
//
// Shared and private alternate in --rounds rounds (private, shared, private, ...) and each
// reports its median round. Prints, per thread count, nanoseconds per request (wall time
// divided by each thread's requests, so perfect scaling keeps it flat), shared over
// private, and how often a thread of the shared runs slept, over all rounds: voluntary
// context switches (getrusage RUSAGE_THREAD) per 1,000 requests. In this loop a thread
// sleeps only in the mutex's futex wait; a contended lock that gets the mutex without
// sleeping (the futex call returns at once, or it never gets that far) does not count.
//
// Usage: balancer_bench [--requests N] [--rounds R] [--threads LIST] [--work NS]
//   N: requests per thread per round, default 1,000,000; R: rounds, default 5 (a few
//   seconds in all on 2 cores); LIST: thread counts, default 1,2. Thread counts above the
//   machine's cores measure time-slicing, not sharing: 4, 8 and 16 need that many cores.
//   NS: nanoseconds of other work (touching nothing shared) before each request, default
//   0: back to back is the worst case; a router's io thread does some 15 to 20 µs of other
//   work per request, which makes the threads meet in the lock far less often. (Lower N
//   with it: N x NS is the round's length.)
#include <sys/resource.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <latch>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "machine_line.h"
#include "thread_counts.h"
#include "router/balancer.h"

namespace {

using supercluster::router::Balancer;
using supercluster::router::BalancerOptions;
using supercluster::router::Outcome;
using Clock = std::chrono::steady_clock;

const std::array<std::string, 2> kIds = {"bench/static-1", "bench/static-2"};
constexpr std::array<std::chrono::nanoseconds, 4> kTimesToHead = {
    std::chrono::microseconds(50), std::chrono::microseconds(100),
    std::chrono::microseconds(150), std::chrono::microseconds(200)};

// Other work of `work` ns, touching nothing shared (reads of the clock).
void OtherWork(std::chrono::nanoseconds work) {
  if (work.count() == 0) return;
  const Clock::time_point until = Clock::now() + work;
  while (Clock::now() < until) {
  }
}

// `count` requests on `balancer`, each after `work` ns of other work; false if a pick
// found no worker.
bool Requests(Balancer& balancer, long count, std::chrono::nanoseconds work) {
  const std::vector<std::string_view> candidates = {kIds[0], kIds[1]};
  for (long i = 0; i < count; ++i) {
    OtherWork(work);
    const std::optional<std::string_view> pick = balancer.PickAndStart(candidates, true);
    if (!pick) return false;
    const std::string& id = *pick == kIds[0] ? kIds[0] : kIds[1];
    balancer.OnFinish(id, Outcome::kSuccess, kTimesToHead[static_cast<size_t>(i) % 4]);
  }
  return true;
}

struct Result {
  double ns_per_request = 0;
  long sleeps = 0;  // voluntary context switches, all threads
  bool ok = true;
};

// `threads` threads each make `count` requests at once, on `shared` or, when it is null,
// each on a Balancer of its own.
Result Run(int threads, long count, std::chrono::nanoseconds work, Balancer* shared) {
  std::latch ready(threads + 1);
  std::atomic<long> sleeps{0};
  std::atomic<bool> ok{true};
  // Each thread's own start and end: the wall time runs from the first start to the last
  // end (the main thread may be scheduled only after short runs have finished).
  std::vector<Clock::time_point> starts(static_cast<size_t>(threads));
  std::vector<Clock::time_point> ends(static_cast<size_t>(threads));
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      // Built here, so that its entries come from this thread's allocations.
      std::unique_ptr<Balancer> own;
      if (shared == nullptr) own = std::make_unique<Balancer>(BalancerOptions{});
      Balancer& balancer = shared != nullptr ? *shared : *own;
      if (!Requests(balancer, 1000, work)) ok = false;  // warm: entries, random engine, caches
      ready.arrive_and_wait();
      rusage before{};
      getrusage(RUSAGE_THREAD, &before);
      starts[static_cast<size_t>(t)] = Clock::now();
      if (!Requests(balancer, count, work)) ok = false;
      ends[static_cast<size_t>(t)] = Clock::now();
      rusage after{};
      getrusage(RUSAGE_THREAD, &after);
      sleeps += after.ru_nvcsw - before.ru_nvcsw;
      if (own && (own->Outstanding(kIds[0]) != 0 || own->Outstanding(kIds[1]) != 0)) ok = false;
    });
  }
  ready.arrive_and_wait();
  for (std::thread& worker : workers) worker.join();
  const double elapsed_ns = std::chrono::duration<double, std::nano>(
                                *std::max_element(ends.begin(), ends.end()) -
                                *std::min_element(starts.begin(), starts.end()))
                                .count();
  if (shared != nullptr &&
      (shared->Outstanding(kIds[0]) != 0 || shared->Outstanding(kIds[1]) != 0)) {
    ok = false;
  }
  return {elapsed_ns / static_cast<double>(count), sleeps.load(), ok.load()};
}

double Median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return values[values.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  long count = 1'000'000;
  long rounds = 5;
  long work_ns = 0;
  std::vector<int> thread_counts = {1, 2};
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--requests") == 0 && i + 1 < argc) {
      count = std::atol(argv[++i]);
    } else if (std::strcmp(argv[i], "--rounds") == 0 && i + 1 < argc) {
      rounds = std::atol(argv[++i]);
    } else if (std::strcmp(argv[i], "--work") == 0 && i + 1 < argc) {
      work_ns = std::atol(argv[++i]);
    } else if (std::strcmp(argv[i], "--threads") == 0 && i + 1 < argc) {
      std::optional<std::vector<int>> parsed = supercluster::bench::ParseThreadCounts(argv[++i]);
      if (!parsed) {
        std::fprintf(stderr, "balancer_bench: --threads wants counts such as 1,2,4\n");
        return 2;
      }
      thread_counts = *parsed;
    } else {
      std::fprintf(stderr,
                   "usage: balancer_bench [--requests N] [--rounds R] [--threads LIST] "
                   "[--work NS]\n");
      return 2;
    }
  }
  if (count <= 0 || rounds <= 0 || work_ns < 0) {
    std::fprintf(stderr,
                 "balancer_bench: --requests and --rounds must be positive, --work not "
                 "negative\n");
    return 2;
  }
  const std::chrono::nanoseconds work(work_ns);
  std::printf("%s; %ld requests per thread per round, %ld ns of other work before each, "
              "%ld rounds, median round\n\n",
              supercluster::bench::MachineLine().c_str(), count, work_ns, rounds);
  std::printf("| threads | shared Balancer ns/request | private Balancers ns/request | ratio |"
              " shared: sleeps per 1k requests |\n");
  std::printf("|---:|---:|---:|---:|---:|\n");
  for (int threads : thread_counts) {
    std::vector<double> own_ns;
    std::vector<double> shared_ns;
    long sleeps = 0;
    for (long round = 0; round < rounds; ++round) {
      const Result own = Run(threads, count, work, nullptr);
      Balancer balancer{BalancerOptions{}};
      const Result shared = Run(threads, count, work, &balancer);
      if (!own.ok || !shared.ok) {
        std::fprintf(stderr, "balancer_bench: a pick failed or a request was not finished\n");
        return 1;
      }
      own_ns.push_back(own.ns_per_request);
      shared_ns.push_back(shared.ns_per_request);
      sleeps += shared.sleeps;
    }
    const double requests =
        static_cast<double>(threads) * static_cast<double>(count) * static_cast<double>(rounds);
    std::printf("| %d | %.1f | %.1f | %.2f | %.2f |\n", threads, Median(shared_ns),
                Median(own_ns), Median(shared_ns) / Median(own_ns),
                1000.0 * static_cast<double>(sleeps) / requests);
  }
  return 0;
}
