#!/usr/bin/env bash
# Memory allocations per request: `supercluster serve` answering GET /v1/echo, and
# `supercluster router` proxying POST /v1/completions to an nginx upstream (the request of
# bench/router). Each runs with the alloc_count library preloaded (bench/allocs/
# alloc_count.cc, built with the project) and is driven by wrk: a warm-up, then the count
# over a measured run, divided by the requests wrk completed in it. Unlike CPU time on a
# shared machine the figure barely moves between runs, so it shows what a change to the
# request path saves. It counts every allocation call (malloc, calloc, operator new, ...;
# see alloc_count.cc), whichever allocator the binary uses.
#
# Usage: bench/allocs/run.sh BUILD_DIR [--connections N] [--duration S]
#   BUILD_DIR holds apps/supercluster/supercluster and bench/allocs/liballoc_count.so
#   (`make build`). Needs nginx and wrk (scripts/install-deps).
set -euo pipefail

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
bench_name=bench/allocs  # the prefix of its messages
# shellcheck source=../lib.sh
source "$script_dir/../lib.sh"
[[ $# -ge 1 ]] || usage
case "$1" in -h|--help) usage ;; esac
build_dir=$1
shift
connections=16
duration=2
while [[ $# -gt 0 ]]; do
  case "$1" in
    --connections) connections=${2:?--connections needs a value}; shift 2 ;;
    --duration) duration=${2:?--duration needs a value}; shift 2 ;;
    -h|--help) usage ;;
    *) echo "run.sh: unknown argument: $1" >&2; usage ;;
  esac
done

supercluster=$build_dir/apps/supercluster/supercluster
preload=$build_dir/bench/allocs/liballoc_count.so
nginx=${NGINX_BINARY:-/usr/sbin/nginx}
[[ -x "$supercluster" ]] || die "not an executable: $supercluster (make build)"
[[ -f "$preload" ]] || die "missing $preload (make build)"
[[ -x "$nginx" ]] || die "nginx not found at $nginx (scripts/install-deps installs nginx-light)"
command -v wrk >/dev/null || die "wrk not found (scripts/install-deps installs it)"
[[ "$connections" =~ ^[1-9][0-9]*$ ]] || die "--connections must be a positive integer"
[[ "$duration" =~ ^[1-9][0-9]*$ ]] || die "--duration must be a positive integer (seconds)"

work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do stop_process "$pid" "a benchmark process"; done
  rm -rf "$work"
}
trap cleanup EXIT
unset NGINX  # nginx reads it as inherited listening sockets

# count NAME PID URL [WRK ARGS...]: allocations per request of PID while wrk drives URL.
count() {
  local name=$1 pid=$2 url=$3
  shift 3
  local log_file=$work/$name.log
  wrk -t1 -c"$connections" -d1 "$@" "$url" >/dev/null
  kill -USR2 "$pid"
  sleep 0.2
  local requests
  requests=$(wrk -t1 -c"$connections" -d"$duration" "$@" "$url" | awk '/requests in/ {print $1}')
  kill -USR2 "$pid"
  sleep 0.2
  local counts
  counts=$(grep '^alloc_count:' "$log_file" | tail -2 | awk '{print $3}' | paste -sd' ')
  read -r before after <<<"$counts"
  [[ -n "$after" && "$requests" -gt 0 ]] || die "$name: no counts or no requests (see $log_file)"
  printf '| %s | %s | %s |\n' "$name" "$requests" \
    "$(awk -v a="$before" -v b="$after" -v n="$requests" 'BEGIN {printf "%.1f", (b - a) / n}')"
}

serve_port=$(free_port)
LD_PRELOAD=$preload "$supercluster" serve --listen "127.0.0.1:$serve_port" --log-level warn \
  --set server.io_threads=1 >"$work/serve.log" 2>&1 &
pids+=($!)
serve_pid=$!
wait_for_port "$serve_port"

upstream_port=$(free_port)
upstream_conf=$(nginx_config "$work" nginx on "$(nginx_static_server "$upstream_port" \
  "$(upstream_json_location)")")
"$nginx" -p "$work" -e "$work/upstream-error.log" -c "$upstream_conf" -g 'daemon off;' >/dev/null 2>&1 &
pids+=($!)
wait_for_port "$upstream_port"

router_port=$(free_port)
LD_PRELOAD=$preload "$supercluster" router --tier regional --region bench \
  --listen "127.0.0.1:$router_port" --static-worker "127.0.0.1:$upstream_port" \
  --log-level warn --set server.io_threads=1 >"$work/router.log" 2>&1 &
pids+=($!)
router_pid=$!
wait_for_port "$router_port"
write_completion_lua "$work/request.lua"

log "$connections connections, 1 s warm-up + $duration s counted per process"
cpu=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
echo "machine: $cpu, $(nproc) cores, Linux $(uname -r); $("$supercluster" version)"
echo
echo "| process | requests | allocations per request |"
echo "|---|---:|---:|"
count serve "$serve_pid" "http://127.0.0.1:$serve_port/v1/echo"
count router "$router_pid" "http://127.0.0.1:$router_port/v1/completions" -s "$work/request.lua"
