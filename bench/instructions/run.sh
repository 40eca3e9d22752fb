#!/usr/bin/env bash
# User-space instructions per request, for four jobs, each against nginx doing the same:
#   proxy:    `supercluster router` and nginx doing the same least-connection proxying (the
#             set-up and POST request of bench/router);
#   upstream: the upstream nginx those two proxy to, counted while each proxy feeds it
#             (run natively): what each proxy's requests cost the upstream (where the
#             upstream is the limit, a proxy whose requests cost it more gets fewer
#             answers; the router's health checks are counted too, a few per run);
#   global:   the two-hop path of `paired.sh --tier global` (a global router in front of
#             a regional one with a store, each checking the API key and the tenant's
#             limits), each hop counted in turn, against two nginx in those roles;
#   serve:    `supercluster serve` and nginx answering GET /v1/echo with the same 24-byte
#             body (the set-up of bench/http).
# The proxy job also measures asio_floor_proxy (bench/instructions/asio_floor_proxy.cc), the
# least an Asio proxy does: a floor, not a competitor. It is looked for beside the build's
# supercluster (BUILD/bench/instructions/asio_floor_proxy; FLOOR_BINARY overrides) and
# left out, saying so, when it is not there.
# Each runs under valgrind's callgrind, driven by wrk. Counting
# starts after a warm-up (callgrind_control -i on) and stops after the measured run; the
# count is divided by the requests wrk completed. Unlike CPU time on a shared machine the
# figure moves by well under 1 % between runs, so it shows what a change to the request
# path saves; it leaves out the kernel, which costs both proxies about the same.
#
# Two more columns come from the same run: first-level instruction-cache misses per
# request (callgrind's cache simulation, a 32 KiB L1; how much code a request runs
# through, not only how long it is) and locked instructions per request (atomic
# read-modify-writes: mutexes, reference counts; bench/instructions/locked.py).
#
# Usage: bench/instructions/run.sh path/to/supercluster [--connections N] [--duration S]
#                                         [--jobs "proxy upstream global serve"]
#   Needs valgrind, nginx, wrk, objdump and python3 (scripts/install-deps). About 40 s
#   per job.
#   Each server's profile is kept as $OUT_DIR/callgrind-<name>.out (default build/bench),
#   with its request count in callgrind-<name>.requests; bench/instructions/cgdiff.py
#   compares two such profiles function by function.
set -euo pipefail

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
bench_name=bench/instructions  # the prefix of its messages
# shellcheck source=../lib.sh
source "$script_dir/../lib.sh"
[[ $# -ge 1 ]] || usage
case "$1" in -h|--help) usage ;; esac
supercluster=$1
shift
connections=16
duration=5
jobs="proxy upstream global serve"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --connections) connections=${2:?--connections needs a value}; shift 2 ;;
    --duration) duration=${2:?--duration needs a value}; shift 2 ;;
    --jobs) jobs=${2:?--jobs needs a value}; shift 2 ;;
    -h|--help) usage ;;
    *) echo "run.sh: unknown argument: $1" >&2; usage ;;
  esac
done

nginx=${NGINX_BINARY:-/usr/sbin/nginx}
floor=${FLOOR_BINARY:-$(dirname "$supercluster")/../../bench/instructions/asio_floor_proxy}
[[ -x "$supercluster" ]] || die "not an executable: $supercluster (make build)"
[[ -x "$nginx" ]] || die "nginx not found at $nginx (scripts/install-deps installs nginx-light)"
for tool in wrk valgrind callgrind_control objdump python3; do
  command -v "$tool" >/dev/null || die "$tool not found (scripts/install-deps installs it)"
done
[[ "$connections" =~ ^[1-9][0-9]*$ ]] || die "--connections must be a positive integer"
[[ "$duration" =~ ^[1-9][0-9]*$ ]] || die "--duration must be a positive integer (seconds)"
for job in $jobs; do
  [[ "$job" == proxy || "$job" == upstream || "$job" == global || "$job" == serve ]] ||
    die "unknown job '$job' (proxy, upstream, global or serve)"
done

work=$(mktemp -d)
profile_dir=${OUT_DIR:-$(cd "$script_dir/../.." && pwd)/build/bench}
mkdir -p "$profile_dir"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do stop_process "$pid" "a benchmark process"; done
  rm -rf "$work"
}
trap cleanup EXIT
unset NGINX  # nginx reads it as inherited listening sockets

# The upstream: one nginx worker on two ports (not counted).
upstream_a=$(free_port)
upstream_b=$(free_port)
upstream_conf=$(nginx_config "$work" upstream on "$(nginx_static_server "$upstream_a" "$upstream_b" \
  "$(upstream_json_location)")")
"$nginx" -p "$work" -e "$work/upstream-error.log" -c "$upstream_conf" -g 'daemon off;' >/dev/null 2>&1 &
pids+=($!)
wait_for_port "$upstream_a"

write_completion_lua "$work/request.lua"

# start_counted NAME PORT COMMAND...: starts COMMAND under callgrind (counting off) and
# waits until it listens on PORT; sets counted_pid.
start_counted() {
  local name=$1 port=$2
  shift 2
  valgrind --tool=callgrind --instr-atstart=no --cache-sim=yes --dump-instr=yes \
    --callgrind-out-file="$work/callgrind.$name" "$@" \
    >"$work/$name.log" 2>&1 &
  counted_pid=$!
  pids+=("$counted_pid")
  wait_for_port "$port"
}

# measure NAME PORT PATH SCRIPT COMMAND...: starts COMMAND under callgrind (counting off),
# then counts it as wrk asks it for PATH (see count).
measure() {
  local name=$1 port=$2 path=$3 script=$4
  shift 4
  start_counted "$name" "$port" "$@"
  count "$name" "$counted_pid" "http://127.0.0.1:$port$path" "$script"
}

# count NAME PID URL SCRIPT: with the process PID started by start_counted NAME, warms up,
# counts over the measured run of wrk asking for URL (with the wrk Lua SCRIPT, or a plain
# GET when SCRIPT is ""), stops the process and prints a table row.
count() {
  local name=$1 pid=$2 url=$3 script=$4
  local out=$work/callgrind.$name
  local script_args=()
  [[ -n "$script" ]] && script_args=(-s "$script")
  wrk -t1 -c"$connections" -d2 "${script_args[@]}" "$url" >/dev/null
  callgrind_control -i on "$pid" >/dev/null 2>&1
  local requests
  requests=$(wrk -t1 -c"$connections" -d"$duration" "${script_args[@]}" "$url" |
    awk '/requests in/ {print $1}')
  callgrind_control -i off "$pid" >/dev/null 2>&1
  # Dumped now rather than at exit: nginx under valgrind does not always act on SIGTERM.
  callgrind_control -d "$pid" >/dev/null 2>&1
  stop_process "$pid" "$name under callgrind"
  local instructions
  instructions=$(cat "$out"* 2>/dev/null | awk '/^totals:/ {sum += $2} END {print sum + 0}')
  if [[ ! "$instructions" -gt 0 || ! "${requests:-0}" -gt 0 ]]; then
    tail -n 20 "$work/$name.log" >&2  # the directory goes with the EXIT trap
    die "$name: no count or no requests (its log is above)"
  fi
  # The dump taken above holds the count; the file written at exit holds none.
  local part profile="" total best=-1
  for part in "$out"*; do
    total=$(awk '/^totals:/ {print $2}' "$part")
    if (( ${total:-0} > best )); then
      best=${total:-0}
      profile=$part
    fi
  done
  cp "$profile" "$profile_dir/callgrind-$name.out"
  echo "$requests" >"$profile_dir/callgrind-$name.requests"
  # The events line names the counters; I1mr is the instruction cache's first-level misses.
  local i1_misses locked
  i1_misses=$(awk -v requests="$requests" '
    /^events:/ {for (i = 2; i <= NF; i++) if ($i == "I1mr") column = i}
    /^totals:/ {printf "%.0f", $column / requests}' "$profile")
  locked=$(python3 "$script_dir/locked.py" "$profile" "$requests" | awk 'NR == 1 {print $NF}')
  printf '| %s | %s | %s | %s | %s |\n' "$name" "$requests" "$((instructions / requests))" \
    "$i1_misses" "$locked"
  echo "$((instructions / requests))" >"$work/$name.per-request"
}

# ratio A B: prints "A/B instructions per request = R" from the two measured rows.
ratio() {
  awk -v a="$(cat "$work/$1.per-request")" -v b="$(cat "$work/$2.per-request")" \
    -v label="$1/$2" 'BEGIN {printf "%s instructions per request = %.2f\n", label, a / b}'
}

proxy_job() {
  local nginx_port router_port conf
  nginx_port=$(free_port)
  conf=$(nginx_config "$work" proxy off \
    "$(nginx_least_conn_proxy "$nginx_port" "$upstream_a" "$upstream_b")")
  router_port=$(free_port)
  echo "proxy: POST /v1/completions through two upstreams, least connections"
  echo
  echo "| proxy | requests | user-space instructions per request | L1i misses per request | locked instructions per request |"
  echo "|---|---:|---:|---:|---:|"
  measure nginx-proxy "$nginx_port" /v1/completions "$work/request.lua" \
    "$nginx" -p "$work" -e "$work/nginx-error.log" -c "$conf" -g 'daemon off;'
  measure router "$router_port" /v1/completions "$work/request.lua" \
    "$supercluster" router --tier regional --region bench \
    --listen "127.0.0.1:$router_port" --static-worker "127.0.0.1:$upstream_a" \
    --static-worker "127.0.0.1:$upstream_b" --log-level warn --set server.io_threads=1 \
    --set router.busy_poll_us=0  # polling for events while idle would count as work
  if [[ -x "$floor" ]]; then
    local floor_port
    floor_port=$(free_port)
    measure asio-floor "$floor_port" /v1/completions "$work/request.lua" \
      "$floor" "$floor_port" "$upstream_a" "$upstream_b"
  else
    log "no asio_floor_proxy at $floor: its row is left out"
  fi
  echo
  ratio router nginx-proxy
  [[ -x "$floor" ]] && ratio router asio-floor
  return 0
}

# The upstream's own cost, fed by each proxy: the upstream nginx under callgrind, the proxy
# run natively in front of it. What a proxy sends (its headers) is work for the upstream;
# where the upstream is near its limit, a proxy whose requests cost it more gets fewer
# answers. The nginx anchor sends what the router sends (bench/lib.sh), so the two rows
# should match.
upstream_job() {
  local feeder upstream_port proxy_port conf feeder_pid
  echo "upstream: the upstream nginx answering POST /v1/completions, fed by each proxy"
  echo
  echo "| upstream fed by | requests | user-space instructions per request | L1i misses per request | locked instructions per request |"
  echo "|---|---:|---:|---:|---:|"
  for feeder in router nginx-proxy; do
    upstream_port=$(free_port)
    proxy_port=$(free_port)
    conf=$(nginx_config "$work" "upstream-for-$feeder" off \
      "$(nginx_static_server "$upstream_port" "$(upstream_json_location)")")
    start_counted "upstream-for-$feeder" "$upstream_port" \
      "$nginx" -p "$work" -e "$work/upstream-for-$feeder-error.log" -c "$conf" -g 'daemon off;'
    if [[ "$feeder" == router ]]; then
      "$supercluster" router --tier regional --region bench --listen "127.0.0.1:$proxy_port" \
        --static-worker "127.0.0.1:$upstream_port" --log-level warn \
        --set server.io_threads=1 >"$work/feeder-router.log" 2>&1 &
    else
      conf=$(nginx_config "$work" feeder-nginx off \
        "$(nginx_least_conn_proxy "$proxy_port" "$upstream_port")")
      "$nginx" -p "$work" -e "$work/feeder-nginx-error.log" -c "$conf" -g 'daemon off;' \
        >"$work/feeder-nginx.log" 2>&1 &
    fi
    feeder_pid=$!
    pids+=("$feeder_pid")
    wait_for_port "$proxy_port"
    count "upstream-for-$feeder" "$counted_pid" "http://127.0.0.1:$proxy_port/v1/completions" \
      "$work/request.lua"
    stop_process "$feeder_pid" "the $feeder in front of the upstream"
  done
  echo
  ratio upstream-for-router upstream-for-nginx-proxy
}

# The two-hop path of `paired.sh --tier global`: a global router in front of a store-mode
# regional one, each checking the API key and applying the tenant's limits, against two
# nginx in those roles (bench/lib.sh). Each of the four is counted in turn while the hop
# beside it runs natively: what a request costs at each hop.
global_job() {
  local counted store regional_port global_port conf other entry
  local regional_command=() global_command=()
  echo "global: the two-hop path (global, then regional), the API key and the tenant's limits at each hop"
  echo
  echo "| hop | requests | user-space instructions per request | L1i misses per request | locked instructions per request |"
  echo "|---|---:|---:|---:|---:|"
  for counted in nginx-global router-global nginx-regional router-regional; do
    regional_port=$(free_port)
    global_port=$(free_port)
    if [[ "$counted" == router-* ]]; then
      store="sqlite://$work/state-$counted.db"
      put_bench_tenant "$supercluster" "$store"
      router_hop_commands "$supercluster" "$store" "$regional_port" "$global_port" \
        "$upstream_a" "$upstream_b" 1
      regional_command=("${regional_hop_command[@]}")
      global_command=("${global_hop_command[@]}")
    else
      conf=$(nginx_regional_hop_config "$work" "$counted-regional" "$regional_port" \
        "$upstream_a" "$upstream_b" 1 off)
      regional_command=("$nginx" -p "$work" -e "$work/$counted-regional-error.log" -c "$conf"
        -g 'daemon off;')
      conf=$(nginx_global_hop_config "$work" "$counted-global" "$global_port" "$regional_port" 1 off)
      global_command=("$nginx" -p "$work" -e "$work/$counted-global-error.log" -c "$conf"
        -g 'daemon off;')
    fi
    if [[ "$counted" == *-regional ]]; then
      start_counted "$counted" "$regional_port" "${regional_command[@]}"
      "${global_command[@]}" >"$work/$counted-other.log" 2>&1 &
      other=$!
    else
      "${regional_command[@]}" >"$work/$counted-other.log" 2>&1 &
      other=$!
      start_counted "$counted" "$global_port" "${global_command[@]}"
    fi
    pids+=("$other")
    entry=http://127.0.0.1:$global_port
    wait_for_port "$global_port"
    wait_for_key_check "$entry"
    count "$counted" "$counted_pid" "$entry/v1/completions" "$work/request.lua"
    stop_process "$other" "the hop beside $counted"
  done
  echo
  ratio router-global nginx-global
  ratio router-regional nginx-regional
}

serve_job() {
  local nginx_port serve_port conf
  nginx_port=$(free_port)
  conf=$(nginx_config "$work" serve off "$(nginx_static_server "$nginx_port" \
    'location = /v1/echo { default_type text/plain; return 200 "hello from supercluster\n"; }')")
  serve_port=$(free_port)
  echo "serve: GET /v1/echo, a 24-byte answer"
  echo
  echo "| server | requests | user-space instructions per request | L1i misses per request | locked instructions per request |"
  echo "|---|---:|---:|---:|---:|"
  measure nginx-serve "$nginx_port" /v1/echo "" \
    "$nginx" -p "$work" -e "$work/nginx-error.log" -c "$conf" -g 'daemon off;'
  measure serve "$serve_port" /v1/echo "" \
    "$supercluster" serve --listen "127.0.0.1:$serve_port" --log-level warn \
    --set server.io_threads=1
  echo
  ratio serve nginx-serve
}

log "$connections connections, 2 s warm-up + $duration s counted per server, under callgrind"
cpu=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
echo "machine: $cpu, $(nproc) cores, Linux $(uname -r), $("$nginx" -v 2>&1 | sed 's/^nginx version: //'), $(valgrind --version)"
echo "binary:  $("$supercluster" version)"
for job in $jobs; do
  echo
  "${job}_job"
done
