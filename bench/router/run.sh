#!/usr/bin/env bash
# Router benchmark: the supercluster regional router proxying to a fixed upstream, next to
# nginx and HAProxy doing the same least-connection proxying in the same run.
#
# Upstream: one nginx worker listening on two loopback ports (two upstream addresses) and
# answering every request with the same 20-byte JSON body. nginx's static `return` is the
# cheapest upstream there is, so the proxies, not the upstream, are what differs between
# runs. (`supercluster serve` would do too, but costs more CPU on a 2-core machine, where
# the upstream shares a core with wrk.)
#
# Proxies, each to both upstream addresses, each with `--threads N` workers (default 1):
#   nginx    `upstream { least_conn; keepalive 64; }`, HTTP/1.1 to the upstream
#   haproxy  `balance leastconn`, `http-reuse always`
#   (both send the upstream what the router sends a worker: a request id, the tenant
#   header, no Authorization; see nginx_least_conn_proxy in bench/lib.sh)
#   router   `supercluster router --tier regional --region bench --static-worker U1
#            --static-worker U2`
#            (static upstreams: no store, no attestation), with its defaults: its io
#            thread polls for events 50 µs before it sleeps (router.busy_poll_us). It gets
#            `Authorization: Bearer bench` on every request (static mode is expected to
#            accept it, or no key at all); like the router, the anchors do not pass it on.
# and `direct`: wrk straight to the upstream, the baseline for "added latency" (a proxy's
# p50/p99 minus direct's at the same connection count).
#
# The request: POST $BENCH_PATH (default /v1/completions) with a small JSON completion
# body, keep-alive, `wrk --latency` (one thread, unless placed below) at each connection count. At 1 connection latency is
# the unloaded cost of a hop; at 16 and 64 the proxy's core saturates and throughput is
# what is compared (closed-loop latency there is mostly queueing: connections / throughput).
#
# Memory: for each proxy, the RSS (process and its children) before, while holding
# --idle-connections idle client connections (default 10000; connected, nothing sent), and
# after they close. The script raises its open-file limit for this.
#
# CPU placement: proxies on cores 0..N-1; the upstream on core N and wrk on core N+1 when
# the machine has them, else both share core N (on 2 cores: proxy core 0, upstream and wrk
# core 1, where at 16 and 64 connections that core saturates too and caps every proxy
# alike). With --threads N above 1 on a machine of 3N cores or more, the upstream gets N
# workers on cores N..2N-1 and wrk N threads (at most one per connection) on cores
# 2N..3N-1, so that N proxy threads are not capped by a one-core upstream or load
# generator. The proxy's CPU per request comes from /proc.
#
# Rounds: with --rounds R (default 1) every connection count is measured R times, the
# targets in a different order each round (reversed in even rounds), and the table shows
# each measure's median over the rounds, with the per-round router/nginx ratios beside
# it. Single runs on a shared or virtual machine scatter by 15 % or more; compare medians.
#
# Usage: bench/router/run.sh path/to/supercluster [--threads N] [--connections "1 16 64"]
#                            [--duration SECONDS] [--idle-connections N] [--rounds R]
#   (or `make bench`). Environment: ROUTER=router (default) | serve | floor | none: `serve`
#   puts `supercluster serve` where the router goes, to check the script's plumbing only
#   (it is not a proxy; the request then goes to POST /v1/echo everywhere); `floor` puts
#   bench/instructions/asio_floor_proxy there, the least an Asio proxy does (a floor for
#   the router's numbers, not a proxy to use; FLOOR_BINARY, default beside the build's
#   supercluster); `none` runs the anchors only. ROUTER_FLAGS: the router's flags after --tier, --listen and --static-worker
#   (default "--log-level warn --set server.io_threads=N"); ROUTER_EXTRA_FLAGS: flags added
#   to those (e.g. "--set router.max_attempts=1"). OUT_DIR (default build/bench),
#   NGINX_BINARY, HAPROXY_BINARY, WRK_BINARY, BENCH_PATH, BENCH_NICE (e.g. -10: run
#   everything it starts at that priority, on a machine shared with other work).
set -euo pipefail

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
bench_name=bench/router  # the prefix of its messages
# shellcheck source=../lib.sh
source "$script_dir/../lib.sh"
repo_root=$(cd "$script_dir/../.." && pwd)

[[ $# -ge 1 ]] || usage
case "$1" in -h|--help) usage ;; esac
supercluster=$1
shift
threads=1
connections="1 16 64"
duration=10
warmup=2
idle_connections=10000
rounds=1
while [[ $# -gt 0 ]]; do
  case "$1" in
    --threads) threads=${2:?--threads needs a value}; shift 2 ;;
    --connections) connections=${2:?--connections needs a value}; shift 2 ;;
    --duration) duration=${2:?--duration needs a value}; shift 2 ;;
    --idle-connections) idle_connections=${2:?--idle-connections needs a value}; shift 2 ;;
    --rounds) rounds=${2:?--rounds needs a value}; shift 2 ;;
    -h|--help) usage ;;
    *) echo "run.sh: unknown argument: $1" >&2; usage ;;
  esac
done

router_mode=${ROUTER:-router}
nginx=${NGINX_BINARY:-/usr/sbin/nginx}
haproxy=${HAPROXY_BINARY:-/usr/sbin/haproxy}
wrk=${WRK_BINARY:-wrk}
bench_path=${BENCH_PATH:-/v1/completions}
# nginx reads $NGINX as a list of inherited listening sockets (binary upgrade); never pass one.
unset NGINX
out_dir=${OUT_DIR:-$repo_root/build/bench}
request_body='{"model":"bench","prompt":"hello","max_tokens":1}'
upstream_body='{"bench":"upstream"}'

case "$router_mode" in
  router|serve|floor|none) ;;
  *) die "ROUTER must be router, serve, floor or none, got '$router_mode'" ;;
esac
floor=${FLOOR_BINARY:-$(dirname "$supercluster")/../../bench/instructions/asio_floor_proxy}
[[ "$router_mode" != floor || -x "$floor" ]] \
  || die "not an executable: $floor (make build builds bench/instructions/asio_floor_proxy)"
[[ "$router_mode" == serve ]] && bench_path=/v1/echo
[[ "$router_mode" == none || -x "$supercluster" ]] \
  || die "not an executable: $supercluster (build it first: make build)"
[[ -x "$nginx" ]] || die "nginx not found at $nginx (scripts/install-deps installs nginx-light)"
[[ -x "$haproxy" ]] || die "haproxy not found at $haproxy (scripts/install-deps installs haproxy)"
for tool in "$wrk" taskset curl python3; do
  command -v "$tool" >/dev/null || die "$tool not found (scripts/install-deps installs it)"
done
if [[ "$router_mode" == router ]] && ! "$supercluster" router --help >/dev/null 2>&1; then
  die "$supercluster has no working 'router' command (\`$supercluster router --help\` fails);" \
    "build a tree with src/router, or run ROUTER=none for the anchors only"
fi
[[ "$threads" =~ ^[1-9][0-9]*$ ]] || die "--threads must be a positive integer"
[[ "$duration" =~ ^[1-9][0-9]*$ ]] || die "--duration must be a positive integer (seconds)"
[[ "$idle_connections" =~ ^[0-9]+$ ]] || die "--idle-connections must be a number"
[[ "$rounds" =~ ^[1-9][0-9]*$ ]] || die "--rounds must be a positive integer"
for c in $connections; do
  [[ "$c" =~ ^[1-9][0-9]*$ ]] || die "--connections must be positive integers, got '$c'"
done
# BENCH_NICE=-10 runs everything the benchmark starts at that priority: on a machine shared
# with other work (builds), the measured processes then get most of the CPU they ask for.
prio=""
if [[ -n "${BENCH_NICE:-}" ]]; then
  [[ "$BENCH_NICE" =~ ^-?[0-9]+$ ]] || die "BENCH_NICE must be an integer, got '$BENCH_NICE'"
  nice -n "$BENCH_NICE" true 2>/dev/null || die "cannot run at nice $BENCH_NICE (needs root for < 0)"
  prio="nice -n $BENCH_NICE"
fi
router_flags="${ROUTER_FLAGS:-"--log-level warn --set server.io_threads=$threads"} ${ROUTER_EXTRA_FLAGS:-}"

# Idle connections need a file descriptor each in the helper and in the proxy (plus one to
# the upstream for some); children inherit this limit.
wanted_files=$(( idle_connections * 2 + 1024 ))
if (( $(ulimit -n) < wanted_files )); then
  ulimit -n "$wanted_files" 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
fi
open_files=$(ulimit -n)
if (( open_files < idle_connections + 512 )); then
  log "open-file limit $(ulimit -n) is too low for $idle_connections idle connections;" \
    "using $(( $(ulimit -n) - 512 ))"
  idle_connections=$(( $(ulimit -n) - 512 ))
fi

# --- CPU placement ---------------------------------------------------------------------
cores=$(nproc)
place_benchmark "$threads"
[[ "$placement" == WARNING* ]] && log "$placement"

# --- temp dir and cleanup --------------------------------------------------------------
tmp=$(mktemp -d "${TMPDIR:-/tmp}/supercluster-bench-router.XXXXXX")
upstream_pid=""
nginx_pid=""
haproxy_pid=""
router_pid=""
wrk_pid=""
idle_pid=""

cleanup() {
  local status=$?
  trap - EXIT INT TERM
  stop_process "$idle_pid" idle-helper
  stop_process "$wrk_pid" wrk
  stop_process "$router_pid" router
  stop_process "$haproxy_pid" haproxy
  stop_process "$nginx_pid" nginx
  stop_process "$upstream_pid" upstream
  if [[ $status -ne 0 ]]; then
    for f in "$tmp"/*.log; do
      [[ -s "$f" ]] && { log "last lines of $(basename "$f"):"; tail -n 20 "$f" >&2; }
    done
  fi
  rm -rf "$tmp"
  exit "$status"
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT
trap 'log "terminated"; exit 143' TERM

wait_ready() {  # wait_ready NAME PID URL: until URL answers at all, the process dies, or 10 s
  local name=$1 pid=$2 url=$3
  for _ in $(seq 100); do
    kill -0 "$pid" 2>/dev/null || die "$name exited during start-up"
    curl -sS -o /dev/null --max-time 1 "$url" 2>/dev/null && return 0
    sleep 0.1
  done
  die "$name did not answer $url within 10 s"
}

# --- machine description ---------------------------------------------------------------
cpu_model=$(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -n 1)
kernel=$(uname -sr)
nginx_version=$("$nginx" -v 2>&1 | sed 's/^nginx version: //')
haproxy_version=$("$haproxy" -v 2>&1 | head -n 1 | awk '{print $3}')
wrk_version=$("$wrk" -v 2>&1 | head -n 1 | awk '{print $2}' || true)
run_date=$(date -u +%Y-%m-%dT%H:%M:%SZ)
git_revision=$(git_revision_of "$repo_root")
supercluster_version=""
[[ "$router_mode" != none ]] && supercluster_version=$("$supercluster" version 2>/dev/null | head -n 1 || true)

user_line=""
# As root, nginx would switch its workers to "nobody"; keep them as the current user.
[[ $(id -u) -eq 0 ]] && user_line="user $(id -un) $(id -gn);"
nginx_common() {  # nginx_common NAME WORKERS: the top of an nginx config in $tmp/NAME
  mkdir -p "$tmp/$1-temp"
  cat <<EOF
# Written by bench/router/run.sh.
$user_line
worker_processes $2;
worker_rlimit_nofile $open_files;
pid $tmp/$1.pid;
lock_file $tmp/$1.lock;
error_log $tmp/$1-error.log warn;
events {
  worker_connections $(( idle_connections + 1024 ));
}
EOF
}
nginx_http_common() {  # the temp paths of an http block for NAME
  cat <<EOF
  access_log off;
  keepalive_requests 1000000;
  keepalive_timeout 75s;
  client_body_temp_path $tmp/$1-temp/body;
  proxy_temp_path $tmp/$1-temp/proxy;
  fastcgi_temp_path $tmp/$1-temp/fastcgi;
  uwsgi_temp_path $tmp/$1-temp/uwsgi;
  scgi_temp_path $tmp/$1-temp/scgi;
EOF
}
start_nginx() {  # start_nginx NAME CPUS: runs $tmp/NAME.conf; sets started_pid
  "$nginx" -t -q -p "$tmp" -e "$tmp/$1-error.log" -c "$tmp/$1.conf" -g 'daemon off;' \
    || die "nginx rejected its config ($tmp/$1.conf)"
  $prio taskset -c "$2" "$nginx" -p "$tmp" -e "$tmp/$1-error.log" -c "$tmp/$1.conf" \
    -g 'daemon off;' >"$tmp/$1.log" 2>&1 &
  started_pid=$!
}

# --- the upstream: one nginx worker, two addresses ---------------------------------------
upstream_port_1=$(free_port)
upstream_port_2=$(free_port)
{
  nginx_common upstream "$side_threads"
  echo "http {"
  nginx_http_common upstream
  cat <<EOF
  server {
    listen 127.0.0.1:$upstream_port_1;
    listen 127.0.0.1:$upstream_port_2;
    location / {
      default_type application/json;
      return 200 '$upstream_body';
    }
  }
}
EOF
} >"$tmp/upstream.conf"
log "starting the upstream (nginx, $side_threads worker(s), core(s) $upstream_cpus) on 127.0.0.1:$upstream_port_1 and :$upstream_port_2"
start_nginx upstream "$upstream_cpus"
upstream_pid=$started_pid
wait_ready upstream "$upstream_pid" "http://127.0.0.1:$upstream_port_1/"

# --- nginx, least_conn -------------------------------------------------------------------
nginx_port=$(free_port)
{
  nginx_common nginx "$threads"
  echo "http {"
  nginx_http_common nginx
  nginx_least_conn_proxy "$nginx_port" "$upstream_port_1" "$upstream_port_2"
  echo "}"
} >"$tmp/nginx.conf"
log "starting nginx (least_conn, $threads workers, core(s) $proxy_cpus) on 127.0.0.1:$nginx_port"
start_nginx nginx "$proxy_cpus"
nginx_pid=$started_pid
wait_ready nginx "$nginx_pid" "http://127.0.0.1:$nginx_port/"

# --- HAProxy, leastconn ------------------------------------------------------------------
haproxy_port=$(free_port)
# HAProxy refuses to start unless its file limit covers two descriptors per connection
# (client and server side), so where the limit cannot be raised it holds fewer idle
# connections than asked; the rest wait in the kernel's accept queue.
haproxy_maxconn=$(( idle_connections + 512 ))
if (( haproxy_maxconn * 2 + 64 > open_files )); then
  haproxy_maxconn=$(( (open_files - 64) / 2 ))
  log "haproxy: maxconn $haproxy_maxconn (open-file limit $open_files counts two per connection)"
fi
cat >"$tmp/haproxy.cfg" <<EOF
# Written by bench/router/run.sh.
global
  nbthread $threads
  maxconn $haproxy_maxconn
  pidfile $tmp/haproxy.pid
defaults
  mode http
  timeout connect 5s
  timeout client 120s
  timeout server 120s
  timeout http-keep-alive 120s
  http-reuse always
frontend bench
  bind 127.0.0.1:$haproxy_port
  default_backend upstreams
backend upstreams
  balance leastconn
  # What the router sends a worker, as the nginx anchor does (bench/lib.sh).
  http-request set-header X-Supercluster-Request-Id %[uuid]
  http-request set-header X-Supercluster-Tenant anonymous
  http-request del-header Authorization
  server u1 127.0.0.1:$upstream_port_1
  server u2 127.0.0.1:$upstream_port_2
EOF
"$haproxy" -c -q -f "$tmp/haproxy.cfg" || die "haproxy rejected its config ($tmp/haproxy.cfg)"
log "starting haproxy (leastconn, $threads threads, core(s) $proxy_cpus) on 127.0.0.1:$haproxy_port"
$prio taskset -c "$proxy_cpus" "$haproxy" -db -f "$tmp/haproxy.cfg" >"$tmp/haproxy.log" 2>&1 &
haproxy_pid=$!
wait_ready haproxy "$haproxy_pid" "http://127.0.0.1:$haproxy_port/"

# --- the router (or its stand-in) --------------------------------------------------------
targets="direct nginx haproxy"
router_label=router
if [[ "$router_mode" != none ]]; then
  router_port=$(free_port)
  # shellcheck disable=SC2086  # ROUTER_FLAGS is a list of flags
  if [[ "$router_mode" == router ]]; then
    log "starting supercluster router (core(s) $proxy_cpus) on 127.0.0.1:$router_port"
    $prio taskset -c "$proxy_cpus" "$supercluster" router --tier regional --region bench \
      --listen "127.0.0.1:$router_port" --static-worker "127.0.0.1:$upstream_port_1" \
      --static-worker "127.0.0.1:$upstream_port_2" $router_flags >"$tmp/router.log" 2>&1 &
  elif [[ "$router_mode" == floor ]]; then
    router_label="asio-floor"
    log "ROUTER=floor: asio_floor_proxy stands in for the router (a floor, not a proxy to use)"
    $prio taskset -c "$proxy_cpus" "$floor" "$router_port" "$upstream_port_1" \
      "$upstream_port_2" >"$tmp/router.log" 2>&1 &
  else
    router_label="serve(plumbing)"
    log "ROUTER=serve: supercluster serve stands in for the router (NOT a proxy; plumbing check only)"
    $prio taskset -c "$proxy_cpus" "$supercluster" serve --listen "127.0.0.1:$router_port" \
      $router_flags >"$tmp/router.log" 2>&1 &
  fi
  router_pid=$!
  wait_ready "$router_label" "$router_pid" "http://127.0.0.1:$router_port/healthz"
  targets+=" router"
fi

url_of() {
  case "$1" in
    direct) echo "http://127.0.0.1:$upstream_port_1$bench_path" ;;
    nginx) echo "http://127.0.0.1:$nginx_port$bench_path" ;;
    haproxy) echo "http://127.0.0.1:$haproxy_port$bench_path" ;;
    router) echo "http://127.0.0.1:$router_port$bench_path" ;;
  esac
}
pid_of() {
  case "$1" in
    direct) echo "$upstream_pid" ;;
    nginx) echo "$nginx_pid" ;;
    haproxy) echo "$haproxy_pid" ;;
    router) echo "$router_pid" ;;
  esac
}

# --- every target answers the benchmark request -----------------------------------------
for target in $targets; do
  url=$(url_of "$target")
  code=$(curl -sS -o "$tmp/answer" -w '%{http_code}' --max-time 5 -X POST \
    -H 'Content-Type: application/json' -H 'Authorization: Bearer bench' \
    --data-binary "$request_body" "$url") || die "$target: POST $url failed"
  [[ "$code" == 2* ]] || die "$target answered $code to POST $url: $(head -c 300 "$tmp/answer")"
  log "$target answers POST $bench_path with $code ($(wc -c <"$tmp/answer") bytes)"
done

# --- measure ---------------------------------------------------------------------------
# wrk.method/body/headers set once and done() for exact numbers keep wrk on its fast path
# (no per-request Lua).
cat >"$tmp/request.lua" <<EOF
wrk.method = "POST"
wrk.body = [[$request_body]]
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer bench"
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "RESULT requests=%d duration_us=%d p50_us=%d p99_us=%d errors=%d non2xx=%d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.timeout, e.status))
end
EOF

run_wrk() {  # run_wrk URL CONNECTIONS SECONDS OUTPUT
  local wrk_threads=$(( $2 < side_threads ? $2 : side_threads ))  # wrk wants a connection each
  $prio taskset -c "$wrk_cpus" "$wrk" -t"$wrk_threads" -c "$2" -d "${3}s" --latency \
    -s "$tmp/request.lua" "$1" >"$4" 2>&1 &
  wrk_pid=$!
  wait "$wrk_pid" || { wrk_pid=""; cat "$4" >&2; die "wrk failed against $1"; }
  wrk_pid=""
}

clock_ticks=$(getconf CLK_TCK)
cpu_ticks() {  # CPU ticks (user + system) of a process and its direct children
  local total=0 pid fields
  for pid in "$1" $(pgrep -P "$1" || true); do
    fields=$(sed 's/^.*) //' "/proc/$pid/stat" 2>/dev/null) || continue
    total=$(( total + $(awk '{print $12 + $13}' <<<"$fields") ))
  done
  echo "$total"
}
rss_kib() {  # resident memory (KiB) of a process and its direct children
  local total=0 pid kib
  for pid in "$1" $(pgrep -P "$1" || true); do
    kib=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
    total=$(( total + ${kib:-0} ))
  done
  echo "$total"
}

# Sets children_ms to the CPU time (milliseconds) of this shell's waited-for children, so
# its difference across a run is wrk's. Must not run in a subshell ($(...) or a pipeline),
# which would report its own children instead.
children_ms=0
children_cpu_ms() {
  times >"$tmp/times.txt"
  children_ms=$(tail -n 1 "$tmp/times.txt" | awk '{
    total = 0
    for (i = 1; i <= 2; i++) { split($i, p, /[ms]/); total += p[1] * 60000 + p[2] * 1000 }
    printf "%d\n", total }')
}

fd_count() {  # open file descriptors of a process and its direct children
  local total=0 pid
  for pid in "$1" $(pgrep -P "$1" || true); do
    total=$(( total + $(ls "/proc/$pid/fd" 2>/dev/null | wc -l) ))
  done
  echo "$total"
}

results="$tmp/results.tsv"
: >"$results"
for round in $(seq "$rounds"); do
  # Reversed in even rounds, so that no target always runs first (or right after another).
  order=$targets
  (( round % 2 == 0 )) && order=$(tr ' ' '\n' <<<"$targets" | tac | tr '\n' ' ')
  for c in $connections; do
    # Interleaved per connection count, so a slow drift of the machine hits all alike.
    for target in $order; do
      url=$(url_of "$target")
      pid=$(pid_of "$target")
      log "round $round/$rounds: $target: $c connections: ${warmup} s warm-up, ${duration} s measured"
      run_wrk "$url" "$c" "$warmup" "$tmp/warmup.txt"
      proxy_before=$(cpu_ticks "$pid")
      upstream_before=$(cpu_ticks "$upstream_pid")
      machine_before=$(machine_busy_ticks)
      children_cpu_ms
      wrk_ms_before=$children_ms
      run_wrk "$url" "$c" "$duration" "$tmp/wrk-$target-$c.txt"
      children_cpu_ms
      wrk_ms=$(( children_ms - wrk_ms_before ))
      proxy_ticks=$(( $(cpu_ticks "$pid") - proxy_before ))
      upstream_ticks=$(( $(cpu_ticks "$upstream_pid") - upstream_before ))
      machine_ticks=$(( $(machine_busy_ticks) - machine_before ))
      kill -0 "$pid" 2>/dev/null || die "$target died during the run"
      line=$(grep '^RESULT ' "$tmp/wrk-$target-$c.txt") \
        || { cat "$tmp/wrk-$target-$c.txt" >&2; die "no result from wrk for $target"; }
      [[ "$target" == direct ]] && proxy_ticks=0
      line="${line#RESULT } proxy_cpu_ms=$(( proxy_ticks * 1000 / clock_ticks ))"
      line+=" upstream_cpu_ms=$(( upstream_ticks * 1000 / clock_ticks ))"
      line+=" wrk_cpu_ms=$wrk_ms machine_cpu_ms=$(( machine_ticks * 1000 / clock_ticks ))"
      printf '%s\t%s\t%s\t%s\n' "$target" "$c" "$round" "$line" >>"$results"
      log "  $line"
    done
  done
done

# --- memory with idle connections --------------------------------------------------------
cat >"$tmp/idle.py" <<'EOF'
# Opens COUNT idle TCP connections to HOST:PORT (nothing sent), reports, holds them for
# HOLD seconds, then reports how many the server closed meanwhile and exits (closing all).
import select, socket, sys, time
host, port, count, hold = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
sockets = []
try:
    for _ in range(count):
        sockets.append(socket.create_connection((host, port), timeout=10))
except OSError as error:
    print(f"error after {len(sockets)} connections: {error}", flush=True)
    sys.exit(1)
print(f"opened {len(sockets)}", flush=True)
time.sleep(hold)
poller = select.poll()
for s in sockets:
    poller.register(s, select.POLLIN)
print(f"closed_by_server {len(poller.poll(0))}", flush=True)
EOF
memory="$tmp/memory.tsv"
: >"$memory"
if (( idle_connections > 0 )); then
  for target in $targets; do
    [[ "$target" == direct ]] && continue
    pid=$(pid_of "$target")
    port=$(url_of "$target" | sed 's|http://127.0.0.1:\([0-9]*\)/.*|\1|')
    sleep 1
    before=$(rss_kib "$pid")
    fds_before=$(fd_count "$pid")
    log "$target: opening $idle_connections idle connections (RSS before: $before KiB)"
    $prio taskset -c "$wrk_cpus" python3 "$tmp/idle.py" 127.0.0.1 "$port" "$idle_connections" 6 \
      >"$tmp/idle-$target.out" 2>&1 &
    idle_pid=$!
    for _ in $(seq 600); do
      grep -q -E '^(opened|error)' "$tmp/idle-$target.out" && break
      kill -0 "$idle_pid" 2>/dev/null || break
      sleep 0.1
    done
    grep -q '^opened' "$tmp/idle-$target.out" \
      || die "$target: could not open $idle_connections idle connections: $(cat "$tmp/idle-$target.out")"
    sleep 2  # the proxy accepts the last of them
    held=$(rss_kib "$pid")
    # What the proxy accepted (HAProxy may stop at its maxconn; the rest wait in the kernel).
    accepted=$(( $(fd_count "$pid") - fds_before ))
    wait "$idle_pid" || die "$target: the idle-connection helper failed: $(cat "$tmp/idle-$target.out")"
    idle_pid=""
    closed=$(sed -n 's/^closed_by_server //p' "$tmp/idle-$target.out")
    sleep 2
    after=$(rss_kib "$pid")
    kill -0 "$pid" 2>/dev/null || die "$target died holding idle connections"
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$target" "$before" "$held" "$after" "${closed:-?}" \
      "$accepted" >>"$memory"
    log "  RSS KiB before $before, holding $held ($accepted accepted), after $after;" \
      "closed by the proxy meanwhile: ${closed:-?}"
  done
fi

# --- report ----------------------------------------------------------------------------
mkdir -p "$out_dir"
json_file="$out_dir/router-$(date -u +%Y%m%dT%H%M%SZ).json"
export cpu_model cores kernel nginx_version haproxy_version wrk_version run_date git_revision \
  placement threads duration warmup supercluster_version router_mode router_label bench_path \
  idle_connections rounds
bench_nice=${BENCH_NICE:-}
export bench_nice
python3 - "$results" "$memory" "$json_file" <<'EOF'
import json, os, statistics, sys

results_path, memory_path, json_path = sys.argv[1:4]
env = os.environ
runs = {}  # connections -> target -> one measure dict per round
for line in open(results_path):
    target, connections, round_number, fields = line.rstrip("\n").split("\t")
    values = {k: int(v) for k, v in (item.split("=") for item in fields.split())}
    seconds = values["duration_us"] / 1e6
    runs.setdefault(int(connections), {}).setdefault(target, []).append({
        "requests_per_second": values["requests"] / seconds,
        "p50_ms": values["p50_us"] / 1000.0,
        "p99_ms": values["p99_us"] / 1000.0,
        # The proxy's CPU time per request: its per-core cost, valid when not saturated.
        "proxy_cpu_us_per_request": values["proxy_cpu_ms"] * 1000.0 / max(values["requests"], 1),
        "proxy_cpu_cores": values["proxy_cpu_ms"] / 1000.0 / seconds,
        "upstream_cpu_cores": values["upstream_cpu_ms"] / 1000.0 / seconds,
        "wrk_cpu_cores": values["wrk_cpu_ms"] / 1000.0 / seconds,
        # Everything else the machine did meanwhile (other processes, kernel threads).
        "other_cpu_cores": max(0, values["machine_cpu_ms"] - values["proxy_cpu_ms"]
                               - values["upstream_cpu_ms"] - values["wrk_cpu_ms"]) / 1000.0 / seconds,
        "requests": values["requests"],
        "errors": values["errors"],
        "non_2xx": values["non2xx"],
    })
# Each measure's median over the rounds (errors summed); the per-round router/nginx ratio.
rows = {}
round_ratios = {}
for connections, by_target in runs.items():
    for target, measures in by_target.items():
        merged = {key: statistics.median(m[key] for m in measures) for key in measures[0]}
        for key in ("requests", "errors", "non_2xx"):
            merged[key] = sum(m[key] for m in measures)
        rows.setdefault(connections, {})[target] = merged
    if "router" in by_target and "nginx" in by_target:
        round_ratios[connections] = [r["requests_per_second"] / n["requests_per_second"]
                                     for r, n in zip(by_target["router"], by_target["nginx"])]
memory = []
for line in open(memory_path):
    target, before, held, after, closed, accepted = line.rstrip("\n").split("\t")
    memory.append({"target": target, "rss_before_kib": int(before), "rss_holding_kib": int(held),
                   "rss_after_kib": int(after), "accepted": int(accepted),
                   "closed_by_proxy": int(closed) if closed.isdigit() else None})

router_name = "router" if env["router_mode"] == "router" else env["router_label"]
names = {"direct": "direct", "nginx": "nginx", "haproxy": "haproxy", "router": router_name}
print()
print(f"Router: least-connection proxying to 2 upstream addresses, POST {env['bench_path']}, keep-alive")
print(f"machine: {env['cpu_model']}, {env['cores']} cores, {env['kernel']}, {env['nginx_version']}, "
      f"HAProxy {env['haproxy_version']}, wrk {env['wrk_version']}, {env['run_date']}, git {env['git_revision']}")
if env["supercluster_version"]:
    print(f"binary:  {env['supercluster_version']}")
print(f"setup:   {env['threads']} proxy thread(s)/worker(s); {env['placement']}; "
      f"{env['warmup']} s warm-up + {env['duration']} s per run"
      + (f"; {env['rounds']} rounds, medians shown" if env["rounds"] != "1" else "")
      + (f"; everything at nice {env['bench_nice']}" if env["bench_nice"] else ""))
print()
header = ("connections", "target", "req/s", "p50 ms", "p99 ms", "added p50 ms", "added p99 ms",
          "proxy CPU", "proxy µs CPU/req", "upstream CPU", "wrk CPU", "other CPU", "errors")
print("| " + " | ".join(header) + " |")
print("|" + "|".join("---:" if i != 1 else "---" for i in range(len(header))) + "|")
table = []
for connections in sorted(rows):
    by_target = rows[connections]
    direct = by_target.get("direct")
    for target, r in by_target.items():
        if direct and target != "direct":
            r["added_p50_ms"] = r["p50_ms"] - direct["p50_ms"]
            r["added_p99_ms"] = r["p99_ms"] - direct["p99_ms"]
        cells = (str(connections), names[target], f'{r["requests_per_second"]:.0f}',
                 f'{r["p50_ms"]:.3f}', f'{r["p99_ms"]:.3f}',
                 f'{r["added_p50_ms"]:.3f}' if "added_p50_ms" in r else "-",
                 f'{r["added_p99_ms"]:.3f}' if "added_p99_ms" in r else "-",
                 f'{r["proxy_cpu_cores"]:.2f}' if target != "direct" else "-",
                 f'{r["proxy_cpu_us_per_request"]:.1f}' if target != "direct" else "-",
                 f'{r["upstream_cpu_cores"]:.2f}', f'{r["wrk_cpu_cores"]:.2f}',
                 f'{r["other_cpu_cores"]:.2f}',
                 str(r["errors"] + r["non_2xx"]))
        print("| " + " | ".join(cells) + " |")
    table.append({"connections": connections, **by_target})

print()
ratios = []
for connections in sorted(rows):
    r = rows[connections]
    for subject in ("router", "nginx"):
        for anchor in ("nginx", "haproxy"):
            if subject == anchor or subject not in r or anchor not in r:
                continue
            entry = {"connections": connections, "subject": subject, "anchor": anchor,
                     "throughput_ratio": r[subject]["requests_per_second"] / r[anchor]["requests_per_second"]}
            if "added_p99_ms" in r[subject] and "added_p99_ms" in r[anchor]:
                entry["added_p99_ms"] = (r[subject]["added_p99_ms"], r[anchor]["added_p99_ms"])
            ratios.append(entry)
            added = ""
            if "added_p99_ms" in entry:
                added = (f"; added p99 {entry['added_p99_ms'][0]:.3f} ms vs "
                         f"{entry['added_p99_ms'][1]:.3f} ms")
            per_round = ""
            if subject == "router" and anchor == "nginx" and len(round_ratios.get(connections, [])) > 1:
                entry["throughput_ratio_per_round"] = round_ratios[connections]
                per_round = " (rounds: " + ", ".join(f"{x:.2f}" for x in round_ratios[connections]) + ")"
            print(f"{connections:>3} connections: {names[subject]}/{anchor} req/s = "
                  f"{entry['throughput_ratio']:.2f}{per_round}{added}")
if "router" in next(iter(rows.values()), {}) and env["router_mode"] == "router":
    print("goal: router/nginx req/s >= 1.00 and router added p99 < 0.5 ms on loopback")
elif env["router_mode"] == "serve":
    print("ROUTER=serve: the 'router' rows are supercluster serve answering by itself, not proxying;")
    print("they check the script only and are not a result.")
elif env["router_mode"] == "floor":
    print("ROUTER=floor: the asio-floor rows are bench/instructions/asio_floor_proxy, the least an")
    print("Asio proxy does (bytes copied through, no fields changed): a floor, not a proxy to use.")
else:
    print("ROUTER=none: anchors only; rerun with a binary that has `supercluster router`.")

if memory:
    print()
    print(f"Memory with {env['idle_connections']} idle client connections (RSS of the process and its children):")
    print("| target | accepted | RSS before MiB | holding MiB | after MiB | KiB per connection | closed by proxy |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for m in memory:
        per = (m["rss_holding_kib"] - m["rss_before_kib"]) / max(m["accepted"], 1)
        m["kib_per_connection"] = per
        print(f'| {names[m["target"]]} | {m["accepted"]} | {m["rss_before_kib"] / 1024:.1f} | '
              f'{m["rss_holding_kib"] / 1024:.1f} | {m["rss_after_kib"] / 1024:.1f} | {per:.2f} | '
              f'{m["closed_by_proxy"]} |')
    print("accepted = file descriptors the proxy gained while the connections were held.")

print()
print("CPU columns: cores busy during the measured run (1.00 = one core); other = the rest of")
print("the machine meanwhile (interference).")
noisy = False
for connections in sorted(rows):
    for target, r in rows[connections].items():
        if r["other_cpu_cores"] > 0.10:
            noisy = True
        if r["errors"] or r["non_2xx"]:
            print(f"warning: {target} at {connections} connections: {r['errors']} socket errors, "
                  f"{r['non_2xx']} non-2xx responses")

if noisy:
    print("WARNING: other work used more than 0.10 core during some runs; rerun on a quiet machine.")

document = {
    "benchmark": "router-proxy",
    "interference_warning": noisy,
    "request": f"POST {env['bench_path']}, keep-alive, small JSON body; upstream answers 20 bytes",
    "machine": {"cpu_model": env["cpu_model"], "cores": int(env["cores"]), "kernel": env["kernel"],
                "nginx": env["nginx_version"], "haproxy": env["haproxy_version"],
                "wrk": env["wrk_version"], "date": env["run_date"],
                "git_revision": env["git_revision"],
                "supercluster_version": env["supercluster_version"]},
    "setup": {"threads": int(env["threads"]), "placement": env["placement"],
              "warmup_seconds": int(env["warmup"]), "duration_seconds": int(env["duration"]),
              "rounds": int(env["rounds"]),
              "router_mode": env["router_mode"], "nice": env["bench_nice"]},
    "results": table,
    "ratios": ratios,
    "idle_connections": int(env["idle_connections"]),
    "memory": memory,
}
with open(json_path, "w") as f:
    json.dump(document, f, indent=2)
    f.write("\n")
EOF
log "results written to $json_file"
