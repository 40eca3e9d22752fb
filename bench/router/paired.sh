#!/usr/bin/env bash
# Paired comparison of the router and nginx: both proxies run side by side on the same
# upstream, and wrk drives each in turn for a short slice (default 1 s), the order swapped
# every pair. A slow or fast spell of a shared or virtual machine then falls on both halves
# of a pair, so the ratio of each pair's requests is far less noisy than comparing runs
# seconds apart (bench/router/run.sh's rounds, whose medians spread by 10 % between runs
# of one binary on a 2-core VM). Prints, per connection count, the geometric mean of the
# pairs' router/nginx ratios with a 95 % interval, and their median; then, per connection
# count, how often the router's threads went to sleep during its slices (its io threads
# poll under load, so a sleep there is mostly a wait for a lock), how the proxies'
# connections to the upstream are spread over the upstream's workers (an uneven spread
# makes one upstream worker the limit for one proxy and not the other), and where the CPU
# went during each side's slices: each proxy's CPU time per request and how many of its
# cores it kept busy, and how many cores the upstream used. (A proxy that gets fewer
# requests with no more CPU per request and idle cores is held back by something else: the
# upstream, wrk, or the spread of its connections; one with more CPU per request pays for
# its own work, or for what its threads share.)
#
# Setup as in run.sh: the upstream is one nginx worker on two loopback ports answering a
# 20-byte JSON body; nginx proxies with `least_conn` and keep-alive, the router with two
# `--static-worker`s, one io thread and otherwise its defaults (router.busy_poll_us among
# them); both proxies on core 0, the upstream on core 1 and wrk on core 2 (on 2 cores,
# core 1 too, which then caps both proxies alike at 16 and 64 connections); the request is
# POST /v1/completions with a 49-byte JSON body. With --threads N (needs 3N cores): nginx
# N workers and the router N io threads (each polling its own io_context) on cores
# 0..N-1, the upstream N workers on cores N..2N-1, wrk N threads (at most one per
# connection) on cores 2N..3N-1. With --upstream-workers M (needs 2N + M cores) the
# upstream has M workers on the M cores after the proxies' instead, and wrk the N after
# those: with M above N the upstream is far less likely to be the limit where the proxies'
# connections fall unevenly on its workers (the second table shows how they fell).
#
# With --tier global the client's request goes through two hops on each side, on the
# proxies' cores alike: a `--tier global` router in front of the regional one, against
# two nginx in the same roles. The routers share a store (SQLite, in the run's folder)
# holding one tenant whose API key is the request's ("bench"), with limits far above the
# load: each router authenticates the key (a SHA-256 and a lookup) and applies the
# tenant's rate and concurrency limits, the global one finds the regional one through the
# store and its health checks. Each nginx looks the key up in a `map`, answers 401 to any
# other, and applies `limit_req` and `limit_conn` keyed by the tenant; the regional one
# then proxies as the regional anchor always does. ANCHOR_ROUTER_* do not apply. The two
# routers share the proxies' cores, so they do not poll for events
# (router.busy_poll_us=0, as under `supercluster up`): a thread polling on a core another
# process needs takes its time (with polling: 0.58 of nginx and 214 sleeps per 1,000
# requests on 2 cores, 16 connections).
#
# Usage: bench/router/paired.sh path/to/supercluster [--connections "1 16 64"]
#                               [--pairs 40] [--slice SECONDS] [--threads N]
#                               [--upstream-workers M] [--tier regional|global]
#   Environment: NGINX_BINARY, WRK_BINARY, ROUTER_EXTRA_FLAGS (added to the router's flags),
#   ANCHOR_ROUTER_FLAGS (when set, the anchor is a second router with these flags instead
#   of nginx: an A/B of two settings, e.g. "--set router.busy_poll_us=0"),
#   ANCHOR_ROUTER_BINARY (when set, the anchor is a router run from this binary, with
#   ANCHOR_ROUTER_FLAGS if set: an A/B of two builds, e.g. a commit and its parent).
set -euo pipefail

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
bench_name=bench/router/paired  # the prefix of its messages
# shellcheck source=../lib.sh
source "$script_dir/../lib.sh"
[[ $# -ge 1 ]] || usage
case "$1" in -h|--help) usage ;; esac
supercluster=$1
shift
connections="1 16 64"
pairs=40
slice=1
threads=1
upstream_workers_wanted=0  # 0: as many as the proxies' threads
tier=regional
while [[ $# -gt 0 ]]; do
  case "$1" in
    --tier) tier=${2:?--tier needs a value}; shift 2 ;;
    --threads) threads=${2:?--threads needs a value}; shift 2 ;;
    --upstream-workers) upstream_workers_wanted=${2:?--upstream-workers needs a value}; shift 2 ;;
    --connections) connections=${2:?--connections needs a value}; shift 2 ;;
    --pairs) pairs=${2:?--pairs needs a value}; shift 2 ;;
    --slice) slice=${2:?--slice needs a value}; shift 2 ;;
    -h|--help) usage ;;
    *) echo "paired.sh: unknown argument: $1" >&2; usage ;;
  esac
done

nginx=${NGINX_BINARY:-/usr/sbin/nginx}
wrk=${WRK_BINARY:-wrk}
unset NGINX  # nginx reads it as inherited listening sockets
[[ -x "$supercluster" ]] || die "not an executable: $supercluster (build it first: make build)"
[[ -x "$nginx" ]] || die "nginx not found at $nginx (scripts/install-deps installs nginx-light)"
for tool in "$wrk" taskset python3; do
  command -v "$tool" >/dev/null || die "$tool not found (scripts/install-deps installs it)"
done
[[ "$pairs" =~ ^[1-9][0-9]*$ && "$pairs" -ge 2 ]] || die "--pairs must be an integer of 2 or more"
[[ "$slice" =~ ^[1-9][0-9]*$ ]] || die "--slice must be a positive integer (seconds)"
[[ "$threads" =~ ^[1-9][0-9]*$ ]] || die "--threads must be a positive integer"
[[ "$upstream_workers_wanted" =~ ^[1-9][0-9]*$ || "$upstream_workers_wanted" == 0 ]] ||
  die "--upstream-workers must be a positive integer"
[[ "$tier" == regional || "$tier" == global ]] || die "--tier must be regional or global"
if [[ "$tier" == global && -n "${ANCHOR_ROUTER_FLAGS:-}${ANCHOR_ROUTER_BINARY:-}" ]]; then
  die "--tier global compares with nginx only (unset ANCHOR_ROUTER_FLAGS and ANCHOR_ROUTER_BINARY)"
fi
for c in $connections; do
  [[ "$c" =~ ^[1-9][0-9]*$ ]] || die "--connections must be positive integers, got '$c'"
done
(( $(nproc) >= 2 )) || die "needs 2 cores (proxies on core 0, upstream and wrk on core 1)"
place_benchmark "$threads" "$upstream_workers_wanted"
(( side_threads == threads )) || die "--threads $threads needs $((3 * threads)) cores"
if (( upstream_workers_wanted > 0 && upstream_workers != upstream_workers_wanted )); then
  die "--upstream-workers $upstream_workers_wanted with --threads $threads needs $((2 * threads + upstream_workers_wanted)) cores"
fi

work=$(mktemp -d)
pids=()
cleanup() {
  local status=$?
  # A failed start or run leaves its reasons in the processes' logs, which go with $work.
  (( status == 0 )) || tail -n 20 "$work"/*.log >&2 || true
  for pid in "${pids[@]}"; do stop_process "$pid" "a benchmark process" || true; done
  rm -rf "$work"
}
trap cleanup EXIT

upstream_a=$(free_port)
upstream_b=$(free_port)
conf=$(nginx_config "$work" upstream on \
  "$(nginx_static_server "$upstream_a" "$upstream_b" "$(upstream_json_location)")" "$upstream_workers")
taskset -c "$upstream_cpus" "$nginx" -p "$work" -e "$work/upstream-error.log" -c "$conf" -g 'daemon off;' >"$work/upstream.log" 2>&1 &
upstream_pid=$!
pids+=($!)
wait_for_port "$upstream_a"

# start_regional_pair: the router (regional tier, static workers) and its anchor (nginx,
# or a second router: ANCHOR_ROUTER_*) in front of the upstream. Sets anchor, anchor_port,
# router_port, router_pid, router_pids and anchor_pids.
start_regional_pair() {
  anchor_port=$(free_port)
  anchor=nginx
  anchor_binary=${ANCHOR_ROUTER_BINARY:-$supercluster}
  if [[ -n "${ANCHOR_ROUTER_FLAGS:-}" || -n "${ANCHOR_ROUTER_BINARY:-}" ]]; then
    [[ -x "$anchor_binary" ]] || die "ANCHOR_ROUTER_BINARY is not an executable: $anchor_binary"
    anchor="anchor router"
    # shellcheck disable=SC2086  # a list of flags
    taskset -c "$proxy_cpus" "$anchor_binary" router --tier regional --region bench \
      --listen "127.0.0.1:$anchor_port" --static-worker "127.0.0.1:$upstream_a" \
      --static-worker "127.0.0.1:$upstream_b" --log-level warn --set server.io_threads="$threads" \
      ${ANCHOR_ROUTER_FLAGS:-} >"$work/anchor.log" 2>&1 &
  else
    conf=$(nginx_config "$work" proxy on \
      "$(nginx_least_conn_proxy "$anchor_port" "$upstream_a" "$upstream_b")" "$threads")
    taskset -c "$proxy_cpus" "$nginx" -p "$work" -e "$work/nginx-error.log" -c "$conf" -g 'daemon off;' >"$work/nginx.log" 2>&1 &
  fi
  anchor_pids=("$!")
  pids+=($!)
  router_port=$(free_port)
  # shellcheck disable=SC2086  # ROUTER_EXTRA_FLAGS is a list of flags
  taskset -c "$proxy_cpus" "$supercluster" router --tier regional --region bench \
    --listen "127.0.0.1:$router_port" --static-worker "127.0.0.1:$upstream_a" \
    --static-worker "127.0.0.1:$upstream_b" --log-level warn --set server.io_threads="$threads" \
    ${ROUTER_EXTRA_FLAGS:-} >"$work/router.log" 2>&1 &
  router_pid=$!  # taskset execs the router: this is its pid
  router_pids=("$router_pid")
  pids+=($!)
  wait_for_port "$anchor_port"
  wait_for_port "$router_port"
}

# start_global_pair: the routers' global tier in front of their regional one, and two nginx
# in the same roles (see --tier global above). Sets what start_regional_pair sets;
# router_pid is the regional router (the one connected to the upstream).
start_global_pair() {
  local store="sqlite://$work/state.db" regional_port anchor_regional_port
  anchor=nginx
  put_bench_tenant "$supercluster" "$store"
  regional_port=$(free_port)
  router_port=$(free_port)
  router_hop_commands "$supercluster" "$store" "$regional_port" "$router_port" "$upstream_a" \
    "$upstream_b" "$threads"
  # shellcheck disable=SC2086  # ROUTER_EXTRA_FLAGS is a list of flags
  taskset -c "$proxy_cpus" "${regional_hop_command[@]}" ${ROUTER_EXTRA_FLAGS:-} \
    >"$work/router.log" 2>&1 &
  router_pid=$!
  pids+=($!)
  # shellcheck disable=SC2086  # ROUTER_EXTRA_FLAGS is a list of flags
  taskset -c "$proxy_cpus" "${global_hop_command[@]}" ${ROUTER_EXTRA_FLAGS:-} \
    >"$work/global.log" 2>&1 &
  router_pids=("$router_pid" "$!")
  pids+=($!)

  anchor_regional_port=$(free_port)
  anchor_port=$(free_port)
  conf=$(nginx_regional_hop_config "$work" anchor-regional "$anchor_regional_port" \
    "$upstream_a" "$upstream_b" "$threads")
  taskset -c "$proxy_cpus" "$nginx" -p "$work" -e "$work/anchor-regional-error.log" -c "$conf" \
    -g 'daemon off;' >"$work/anchor-regional.log" 2>&1 &
  anchor_pids=("$!")
  pids+=($!)
  conf=$(nginx_global_hop_config "$work" anchor-global "$anchor_port" "$anchor_regional_port" \
    "$threads")
  taskset -c "$proxy_cpus" "$nginx" -p "$work" -e "$work/anchor-global-error.log" -c "$conf" \
    -g 'daemon off;' >"$work/anchor-global.log" 2>&1 &
  anchor_pids+=("$!")
  pids+=($!)
  wait_for_port "$anchor_port"
  wait_for_port "$router_port"
  wait_for_key_check "http://127.0.0.1:$router_port"
  wait_for_key_check "http://127.0.0.1:$anchor_port"
}

if [[ "$tier" == global ]]; then start_global_pair; else start_regional_pair; fi

write_completion_lua "$work/request.lua" 'done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("REQUESTS %d ERRORS %d\n", summary.requests,
    e.connect + e.read + e.write + e.status + e.timeout))
end'

# The times the router's threads went to sleep so far (voluntary context switches, all
# threads). Its io threads poll while there is work, so under load a sleep is a wait for a
# lock (or a poll that found nothing for router.busy_poll_us).
router_sleeps() {
  local pid
  for pid in "${router_pids[@]}"; do cat /proc/"$pid"/task/*/status 2>/dev/null; done |
    awk '/^voluntary_ctxt_switches/ {sum += $2} END {print sum + 0}'
}

# cpu_ticks PID...: the CPU time the processes and their children (nginx's workers) have
# used so far, in clock ticks: "USER SYSTEM". Reads /proc only (no procps needed). A
# process's name in its stat line may hold spaces: fields are counted after its ')'.
cpu_ticks() {
  cat /proc/[0-9]*/stat 2>/dev/null | awk -v wanted=" $* " '
    {
      line = $0
      sub(/^.*\) /, "", line)  # state, ppid, ..., utime (12th), stime (13th)
      split(line, field, " ")
      if (index(wanted, " " $1 " ") || index(wanted, " " field[2] " ")) {
        user += field[12]
        kernel += field[13]
      }
    }
    END {print user + 0, kernel + 0}'
}
clock_ticks=$(getconf CLK_TCK)

# measure_slice PORT CONNECTIONS PID...: drives one slice on PORT; prints its requests, the
# CPU ticks the PIDs (with their children) used during it in user space and in the
# kernel, the upstream's (both), and the slice's length in seconds.
measure_slice() {
  local port=$1 c=$2 proxy_before upstream_before proxy_after upstream_after start requests
  shift 2
  proxy_before=$(cpu_ticks "$@")
  upstream_before=$(cpu_ticks "$upstream_pid")
  start=$EPOCHREALTIME
  requests=$(drive "$port" "$c" "$slice")
  proxy_after=$(cpu_ticks "$@")
  upstream_after=$(cpu_ticks "$upstream_pid")
  awk -v r="$requests" -v pb="$proxy_before" -v pa="$proxy_after" -v ub="$upstream_before" \
    -v ua="$upstream_after" -v s="$start" -v e="$EPOCHREALTIME" 'BEGIN {
      split(pb, b, " "); split(pa, a, " "); split(ub, c, " "); split(ua, d, " ")
      printf "%d %d %d %d %.3f\n", r, a[1] - b[1], a[2] - b[2], d[1] + d[2] - c[1] - c[2], e - s
    }'
}

# How the proxies' connections to the upstream are spread over the upstream's workers: per
# worker, "router+anchor" connections, busiest first. Proxies keep them open between slices,
# so this shows the spread the slices ran with. Needs ss (iproute2); says so without it.
upstream_spread() {
  command -v ss >/dev/null || { echo "(no ss)"; return; }
  ss -tnpH state established | python3 -c '
import re, sys
router_pid, ports = sys.argv[1], set(sys.argv[2:])
owner, upstream = {}, []  # local port -> pid; (upstream worker pid, peer port)
for line in sys.stdin:
    fields = line.split()
    if len(fields) < 5:
        continue
    local, peer = fields[2].rsplit(":", 1)[1], fields[3].rsplit(":", 1)[1]
    pid = re.search(r"pid=(\d+)", line)
    if not pid:
        continue
    owner[local] = pid.group(1)
    if local in ports:
        upstream.append((pid.group(1), peer))
counts = {}
for worker, peer in upstream:
    side = 0 if owner.get(peer) == router_pid else 1
    counts.setdefault(worker, [0, 0])[side] += 1
spread = sorted(counts.values(), key=lambda c: -sum(c))
print(" ".join(f"{r}+{a}" for r, a in spread) or "(none)")
' "$router_pid" "$upstream_a" "$upstream_b"
}

# drive PORT CONNECTIONS SECONDS: prints the requests wrk completed; fails on any error.
drive() {
  local out requests errors wrk_threads=$(( $2 < threads ? $2 : threads ))
  out=$(taskset -c "$wrk_cpus" "$wrk" -t"$wrk_threads" -c"$2" -d"$3"s -s "$work/request.lua" \
    "http://127.0.0.1:$1/v1/completions")
  requests=$(awk '/^REQUESTS/ {print $2}' <<<"$out")
  errors=$(awk '/^REQUESTS/ {print $4}' <<<"$out")
  [[ -n "$requests" && "$requests" -gt 0 ]] || die "wrk completed no request on port $1"
  if [[ "$errors" != 0 ]]; then
    tail -n 20 "$work"/*.log >&2  # the directory goes with the EXIT trap
    die "$errors errors on port $1 (the proxies' logs are above)"
  fi
  echo "$requests"
}

if [[ "$tier" == global ]]; then
  echo "Paired slices: global and regional routers vs two nginx in their roles, each checking the API key and the tenant's limits, least-connection proxying to 2 upstream addresses"
else
  echo "Paired slices: router vs $anchor, least-connection proxying to 2 upstream addresses"
fi
echo "machine: $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) cores, Linux $(uname -r), $("$nginx" -v 2>&1 | sed 's/^nginx version: //')"
echo "binary:  $("$supercluster" version 2>&1 | head -1)"
echo "cores:   proxies' $(cpu_siblings "$proxy_cpus"), upstream's $(cpu_siblings "$upstream_cpus")"
echo "setup:   $pairs pairs of ${slice} s slices per connection count, order swapped every pair; $placement"
if [[ "$anchor" != nginx ]]; then
  echo "anchor:  $("$anchor_binary" version 2>&1 | head -1)"
  echo "flags:   anchor router ${ANCHOR_ROUTER_FLAGS:-(defaults)}; router ${ROUTER_EXTRA_FLAGS:-(defaults)}"
fi
echo
echo "| connections | pairs | router/$anchor, geometric mean (95 % interval) | median | router requests | $anchor requests |"
echo "|---:|---:|---|---:|---:|---:|"
for c in $connections; do
  drive "$anchor_port" "$c" 2 >/dev/null  # warm-up: pooled upstream connections, caches
  drive "$router_port" "$c" 2 >/dev/null
  : >"$work/pairs"
  : >"$work/cpu"
  sleeps=0  # the router's, during its slices
  for ((i = 1; i <= pairs; i++)); do
    if (( i % 2 )); then
      anchor_slice=$(measure_slice "$anchor_port" "$c" "${anchor_pids[@]}")
    fi
    before=$(router_sleeps)
    router_slice=$(measure_slice "$router_port" "$c" "${router_pids[@]}")
    sleeps=$(( sleeps + $(router_sleeps) - before ))
    if (( i % 2 == 0 )); then
      anchor_slice=$(measure_slice "$anchor_port" "$c" "${anchor_pids[@]}")
    fi
    echo "${router_slice%% *} ${anchor_slice%% *}" >>"$work/pairs"  # the requests
    echo "$router_slice $anchor_slice" >>"$work/cpu"
  done
  total=$(awk '{sum += $1} END {print sum}' "$work/pairs")
  # Per side (fields 1-5 the router's slices, 6-10 the anchor's): µs of proxy CPU per
  # request (user + system), proxy cores busy, upstream cores busy.
  cpu_columns=$(awk -v hz="$clock_ticks" '
    {for (i = 1; i <= 10; i++) sum[i] += $i}
    function per_request(side) {
      return sprintf("%.2f (%.2f + %.2f)", 1e6 * (sum[side + 2] + sum[side + 3]) / hz / sum[side + 1],
                     1e6 * sum[side + 2] / hz / sum[side + 1], 1e6 * sum[side + 3] / hz / sum[side + 1])
    }
    function cores(ticks, side) { return sprintf("%.2f", ticks / hz / sum[side + 5]) }
    END {
      printf "%s / %s | %s / %s | %s / %s", per_request(0), per_request(5),
        cores(sum[2] + sum[3], 0), cores(sum[7] + sum[8], 5), cores(sum[4], 0), cores(sum[9], 5)
    }' "$work/cpu")
  echo "| $c | $(awk -v s="$sleeps" -v t="$total" 'BEGIN {printf "%.2f", 1000 * s / t}') | $cpu_columns | $(upstream_spread) |" >>"$work/diagnostics"
  log "$c connections: $pairs pairs done"
  python3 - "$c" "$work/pairs" <<'PY'
import math, statistics, sys
connections, path = sys.argv[1], sys.argv[2]
pairs = [tuple(int(x) for x in line.split()) for line in open(path) if line.strip()]
logs = [math.log(r / n) for r, n in pairs]
mean = statistics.mean(logs)
half = 1.96 * statistics.stdev(logs) / math.sqrt(len(logs))
print(f"| {connections} | {len(pairs)} | {math.exp(mean):.3f} ({math.exp(mean - half):.3f} to "
      f"{math.exp(mean + half):.3f}) | {math.exp(statistics.median(logs)):.3f} | "
      f"{sum(r for r, _ in pairs)} | {sum(n for _, n in pairs)} |")
PY
done
echo
echo "| connections | router sleeps per 1,000 requests | proxy CPU µs per request (user + system), router / $anchor | proxy cores busy, router / $anchor | upstream cores busy in router's / $anchor's slices | upstream connections per upstream worker, router+$anchor |"
echo "|---:|---:|---|---|---|---|"
cat "$work/diagnostics"
