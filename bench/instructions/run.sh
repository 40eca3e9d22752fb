#!/usr/bin/env bash
# User-space instructions per proxied request: `supercluster router` and, as the anchor,
# nginx doing the same least-connection proxying (the set-up of bench/router), each run
# under valgrind's callgrind and driven by wrk with the request of bench/router. Counting
# starts after a warm-up (callgrind_control -i on) and stops after the measured run; the
# count is divided by the requests wrk completed. Unlike CPU time on a shared machine the
# figure moves by well under 1 % between runs, so it shows what a change to the request
# path saves; it leaves out the kernel, which costs both proxies about the same.
#
# Usage: bench/instructions/run.sh path/to/supercluster [--connections N] [--duration S]
#   Needs valgrind, nginx and wrk (scripts/install-deps). About 40 s.
set -euo pipefail

usage() {
  sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
  exit 2
}

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
[[ $# -ge 1 ]] || usage
case "$1" in -h|--help) usage ;; esac
supercluster=$1
shift
connections=16
duration=5
while [[ $# -gt 0 ]]; do
  case "$1" in
    --connections) connections=${2:?--connections needs a value}; shift 2 ;;
    --duration) duration=${2:?--duration needs a value}; shift 2 ;;
    -h|--help) usage ;;
    *) echo "run.sh: unknown argument: $1" >&2; usage ;;
  esac
done

log() { echo "bench/instructions: $*" >&2; }
die() { echo "bench/instructions: FAIL: $*" >&2; exit 1; }
# shellcheck source=../lib.sh
source "$script_dir/../lib.sh"

nginx=${NGINX_BINARY:-/usr/sbin/nginx}
[[ -x "$supercluster" ]] || die "not an executable: $supercluster (make build)"
[[ -x "$nginx" ]] || die "nginx not found at $nginx (scripts/install-deps installs nginx-light)"
for tool in wrk valgrind callgrind_control; do
  command -v "$tool" >/dev/null || die "$tool not found (scripts/install-deps installs it)"
done
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

# The upstream: one nginx worker on two ports (not counted).
upstream_a=$(free_port)
upstream_b=$(free_port)
cat >"$work/upstream.conf" <<CONF
worker_processes 1;
pid $work/upstream.pid;
error_log $work/upstream-error.log error;
events { worker_connections 1024; }
http {
  access_log off;
  keepalive_requests 1000000;
  client_body_temp_path $work;
  server {
    listen 127.0.0.1:$upstream_a;
    listen 127.0.0.1:$upstream_b;
    location / { default_type application/json; return 200 '{"bench":"upstream"}'; }
  }
}
CONF
"$nginx" -p "$work" -c "$work/upstream.conf" -g 'daemon off;' >/dev/null 2>&1 &
pids+=($!)
wait_for_port "$upstream_a"

cat >"$work/request.lua" <<'LUA'
wrk.method = "POST"
wrk.body = '{"model":"bench","prompt":"hello","max_tokens":1}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer bench"
LUA

# measure NAME PORT COMMAND...: starts COMMAND under callgrind (counting off), warms up,
# counts over the measured run, stops the process and prints a table row.
measure() {
  local name=$1 port=$2
  shift 2
  local out=$work/callgrind.$name
  valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$out" "$@" \
    >"$work/$name.log" 2>&1 &
  local pid=$!
  pids+=("$pid")
  wait_for_port "$port"
  local url=http://127.0.0.1:$port/v1/completions
  wrk -t1 -c"$connections" -d2 -s "$work/request.lua" "$url" >/dev/null
  callgrind_control -i on "$pid" >/dev/null 2>&1
  local requests
  requests=$(wrk -t1 -c"$connections" -d"$duration" -s "$work/request.lua" "$url" |
    awk '/requests in/ {print $1}')
  callgrind_control -i off "$pid" >/dev/null 2>&1
  # Dumped now rather than at exit: nginx under valgrind does not always act on SIGTERM.
  callgrind_control -d "$pid" >/dev/null 2>&1
  stop_process "$pid" "$name under callgrind"
  local instructions
  instructions=$(cat "$out"* 2>/dev/null | awk '/^totals:/ {sum += $2} END {print sum + 0}')
  [[ "$instructions" -gt 0 && "${requests:-0}" -gt 0 ]] ||
    die "$name: no count or no requests (see $work/$name.log)"
  printf '| %s | %s | %s |\n' "$name" "$requests" "$((instructions / requests))"
  echo "$((instructions / requests))" >"$work/$name.per-request"
}

nginx_port=$(free_port)
cat >"$work/proxy.conf" <<CONF
worker_processes 1;
master_process off;
pid $work/proxy.pid;
error_log $work/proxy-error.log error;
events { worker_connections 1024; }
http {
  access_log off;
  keepalive_requests 1000000;
  client_body_temp_path $work;
  proxy_temp_path $work;
$(nginx_least_conn_proxy "$nginx_port" "$upstream_a" "$upstream_b")
}
CONF

router_port=$(free_port)
log "$connections connections, 2 s warm-up + $duration s counted per proxy, under callgrind"
cpu=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
echo "machine: $cpu, $(nproc) cores, Linux $(uname -r), $("$nginx" -v 2>&1 | sed 's/^nginx version: //'), $(valgrind --version)"
echo "binary:  $("$supercluster" version)"
echo
echo "| proxy | requests | user-space instructions per request |"
echo "|---|---:|---:|"
measure nginx "$nginx_port" "$nginx" -p "$work" -c "$work/proxy.conf" -g 'daemon off;'
measure router "$router_port" "$supercluster" router --tier regional --region bench \
  --listen "127.0.0.1:$router_port" --static-worker "127.0.0.1:$upstream_a" \
  --static-worker "127.0.0.1:$upstream_b" --log-level warn --set server.io_threads=1
echo
awk -v r="$(cat "$work/router.per-request")" -v n="$(cat "$work/nginx.per-request")" \
  'BEGIN {printf "router/nginx instructions per request = %.2f\n", r / n}'
