# Shell helpers shared by the benchmark scripts (bench/*/run.sh); sourced, not run.
# Each script sets bench_name (the prefix of its messages, "bench/http") before sourcing
# this file, first thing, so that usage, log and die serve its argument parsing too.

# usage: prints the script's header comment (line 2 to `set -euo`) and exits 2.
usage() {
  sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
  exit 2
}

log() { echo "$bench_name: $*" >&2; }
die() { echo "$bench_name: FAIL: $*" >&2; exit 1; }

# stop_process PID NAME: SIGTERM, wait up to 10 s, then SIGKILL.
stop_process() {
  local pid=$1 name=$2
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 100); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    log "$name (pid $pid) did not stop on SIGTERM; killing it"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
}

# A TCP port on 127.0.0.1 that was free a moment ago.
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# cpu_siblings CPULIST: how the cores the benchmark pins to map onto physical cores, as the
# kernel sees them (a virtual machine shows what its hypervisor exposes), e.g. "1 thread
# per core" or "2 threads per core; siblings 0,8 1,9". Two busy threads on sibling
# hyperthreads share one core's execution units, so a result on such cores is not a
# per-core one. CPULIST is a taskset list ("0-3", "0,2").
cpu_siblings() {
  python3 - "$1" <<'PY'
import sys
cpus = []
for part in sys.argv[1].split(","):
    low, _, high = part.partition("-")
    cpus += range(int(low), int(high or low) + 1)
lists = []
for cpu in cpus:
    try:
        with open(f"/sys/devices/system/cpu/cpu{cpu}/topology/thread_siblings_list") as f:
            lists.append(f.read().strip())
    except OSError:
        print("topology unknown")
        sys.exit(0)
shared = sorted({s for s in lists if "," in s or "-" in s})
if not shared:
    print("1 thread per core")
else:
    per_core = max(len(s.replace("-", ",").split(",")) for s in shared)
    print(f"{per_core} threads per core; siblings {' '.join(shared)}")
PY
}

# git_revision_of DIR: the short commit of the checkout at DIR, with "-dirty" when its
# files differ from it, for the machine line; "unknown" outside a git checkout.
git_revision_of() {
  local revision
  revision=$(git -C "$1" rev-parse --short HEAD 2>/dev/null) || { echo unknown; return; }
  [[ -n "$(git -C "$1" status --porcelain 2>/dev/null)" ]] && revision="$revision-dirty"
  echo "$revision"
}

# CPU ticks the whole machine has spent busy (user, nice, system, irq, softirq, steal).
machine_busy_ticks() {
  awk '/^cpu / {print $2 + $3 + $4 + $7 + $8 + $9; exit}' /proc/stat
}

# cpu_range FIRST LAST: the taskset list of cores FIRST to LAST ("3" when they are one).
cpu_range() {
  if (( $1 == $2 )); then echo "$1"; else echo "$1-$2"; fi
}

# place_benchmark THREADS [UPSTREAM_WORKERS]: where the proxies (THREADS threads or workers
# each), the upstream and wrk run. Sets proxy_cpus, upstream_cpus, wrk_cpus (taskset lists),
# side_threads (wrk's threads, and the upstream's workers unless given), upstream_workers
# and placement (a line saying all that):
# - UPSTREAM_WORKERS M given, on 2 x THREADS + M cores or more: proxies on cores 0..N-1,
#   the upstream's M workers on the next M, wrk's N threads on the N after (an upstream
#   with more workers than the proxies have threads is far less likely to be what limits
#   them where their connections fall unevenly on its workers); on fewer cores, as
#   without it;
# - THREADS above 1 on 3 x THREADS cores or more: proxies on cores 0..N-1, the upstream's
#   N workers on N..2N-1, wrk's N threads on 2N..3N-1;
# - else proxies on 0..N-1, the upstream (one worker) on core N and wrk (one thread) on
#   N+1 when the machine has it, or both on core N;
# - THREADS at or above the cores: everything shares them (placement says WARNING).
place_benchmark() {
  local threads=$1 upstream=${2:-0} cores
  cores=$(nproc)
  proxy_cpus="0-$((threads - 1))"
  (( threads == 1 )) && proxy_cpus=0
  side_threads=1
  upstream_workers=1
  if (( upstream > 0 && 2 * threads + upstream <= cores )); then
    side_threads=$threads
    upstream_workers=$upstream
    upstream_cpus=$(cpu_range "$threads" "$((threads + upstream - 1))")
    wrk_cpus=$(cpu_range "$((threads + upstream))" "$((2 * threads + upstream - 1))")
    placement="proxies on core(s) $proxy_cpus; upstream ($upstream workers) on core(s) $upstream_cpus; wrk ($threads thread(s)) on core(s) $wrk_cpus"
  elif (( threads > 1 && 3 * threads <= cores )); then
    upstream_workers=$threads
    side_threads=$threads
    upstream_cpus="$threads-$((2 * threads - 1))"
    wrk_cpus="$((2 * threads))-$((3 * threads - 1))"
    placement="proxies on cores $proxy_cpus; upstream ($threads workers) on cores $upstream_cpus; wrk ($threads threads) on cores $wrk_cpus"
  elif (( threads + 2 <= cores )); then
    upstream_cpus="$threads"
    wrk_cpus="$((threads + 1))"
    placement="proxies on core(s) $proxy_cpus; upstream on core $upstream_cpus; wrk -t1 on core $wrk_cpus"
  elif (( threads < cores )); then
    upstream_cpus="$threads"
    wrk_cpus="$threads"
    placement="proxies on core(s) $proxy_cpus; upstream and wrk -t1 on core $upstream_cpus"
  else
    proxy_cpus="0-$((cores - 1))"
    upstream_cpus="$((cores - 1))"
    wrk_cpus="$upstream_cpus"
    placement="WARNING: $threads threads >= $cores cores: proxies on cores $proxy_cpus SHARE core $upstream_cpus with the upstream and wrk"
  fi
}

# wait_for_port PORT: until something accepts on 127.0.0.1:PORT, or die after 30 s (a
# process under valgrind takes several seconds to start). Needs die().
wait_for_port() {
  # Python rather than bash's /dev/tcp, which a bash may be built without.
  python3 - "$1" <<'PY' || die "nothing listens on port $1"
import socket, sys, time
deadline = time.monotonic() + 30
while True:
    try:
        socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=1).close()
        break
    except OSError:
        if time.monotonic() > deadline:
            sys.exit(1)
        time.sleep(0.1)
PY
}

# nginx_config DIR NAME MASTER BLOCKS [WORKERS]: writes DIR/NAME.conf, an nginx of WORKERS
# workers (default 1) that keeps everything (pid, error log, temp files) in DIR, logs no
# access, keeps connections alive for a million requests, and serves BLOCKS (`server` and
# `upstream` blocks, inside `http {}`). MASTER is on or off (`master_process`: off runs the
# worker in the started process itself, which callgrind then sees). Prints the path.
nginx_config() {
  local dir=$1 name=$2 master=$3 blocks=$4 workers=${5:-1}
  cat >"$dir/$name.conf" <<EOF
worker_processes $workers;
master_process $master;
pid $dir/$name.pid;
error_log $dir/$name-error.log error;
events { worker_connections 1024; }
http {
  access_log off;
  keepalive_requests 1000000;
  client_body_temp_path $dir;
  proxy_temp_path $dir;
  fastcgi_temp_path $dir;  # unused, but nginx makes the built-in default (/var/lib/nginx)
  uwsgi_temp_path $dir;
  scgi_temp_path $dir;
$blocks
}
EOF
  echo "$dir/$name.conf"
}

# nginx_static_server PORT... BODY_LINE: a `server` block answering every path on the
# ports with the `location` line given last.
nginx_static_server() {
  local ports=("${@:1:$#-1}") location=${*: -1} port
  echo "  server {"
  for port in "${ports[@]}"; do echo "    listen 127.0.0.1:$port;"; done
  echo "    $location"
  echo "  }"
}

# nginx_least_conn_proxy LISTEN_PORT UPSTREAM_PORT...: the `upstream` and `server` blocks
# (inside `http {}`) of an nginx that proxies 127.0.0.1:LISTEN_PORT to the upstream ports on
# 127.0.0.1 by least connections, over kept-alive HTTP/1.1: the anchor of bench/router and
# bench/instructions. It sends the upstream what the router sends a worker: a request id
# of its own (X-Supercluster-Request-Id), the tenant (X-Supercluster-Tenant: anonymous, as
# a static-mode router does) and no Authorization. The upstream then parses requests of
# the same cost from either proxy (without these headers it spent 12 % fewer instructions
# on nginx's: bench/instructions --jobs upstream), which matters wherever the upstream is
# near its limit. The id is "$pid-$connection-$connection_requests", unique per request and
# about as cheap to make as the router's (a 64-bit draw of a per-thread generator, in hex):
# nginx's own $request_id draws 16 bytes from OpenSSL's random generator, which made
# nginx's instructions per request a third more (30.8k against 23.0k).
nginx_least_conn_proxy() {
  local listen=$1 port
  shift
  echo "  upstream backends {"
  echo "    least_conn;"
  for port in "$@"; do echo "    server 127.0.0.1:$port;"; done
  echo "    keepalive 64;"
  echo "  }"
  cat <<EOF
  server {
    listen 127.0.0.1:$listen;
    location / {
      proxy_pass http://backends;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header X-Supercluster-Request-Id \$pid-\$connection-\$connection_requests;
      proxy_set_header X-Supercluster-Tenant anonymous;
      proxy_set_header Authorization "";
    }
  }
EOF
}

# The `location` line (for nginx_static_server) of the proxy benchmarks' upstream: every
# path answered 200 with the same 20-byte JSON body.
upstream_json_location() {
  echo "location / { default_type application/json; return 200 '{\"bench\":\"upstream\"}'; }"
}

# nginx_tenant_gate: the `http {}` lines of an nginx that knows the tenant "bench" by its
# API key and limits it (far above the load), as a router does with the tenant record.
nginx_tenant_gate() {
  cat <<'EOF'
  map $http_authorization $bench_tenant { "Bearer bench" bench; default ""; }
  limit_req_zone $bench_tenant zone=tenant_rate:1m rate=1000000r/s;
  limit_conn_zone $bench_tenant zone=tenant_requests:1m;
EOF
}

# nginx_gated_location PROXY_PASS_TARGET EXTRA_LINES: a `location /` that answers 401 to
# an unknown key, applies the tenant's limits and proxies over kept-alive HTTP/1.1.
nginx_gated_location() {
  cat <<EOF
    location / {
      if (\$bench_tenant = "") { return 401; }
      limit_req zone=tenant_rate burst=1000000 nodelay;
      limit_conn tenant_requests 65535;
      proxy_pass $1;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
$2
    }
EOF
}

# put_bench_tenant SUPERCLUSTER STORE_URL: writes the tenant "bench" to the store: its API
# key is the benchmark request's ("bench"), its limits far above any load.
put_bench_tenant() {
  local key_hash
  key_hash=$(printf %s bench | sha256sum | cut -d' ' -f1)
  "$1" store put --store "$2" /sc/v1/tenants/bench \
    "{\"schema\":1,\"kind\":\"Tenant\",\"id\":\"bench\",\"display_name\":\"bench\",\"api_key_hashes\":[\"$key_hash\"],\"policy_id\":\"\",\"requests_per_second\":1000000.0,\"max_concurrent_requests\":65535,\"allowed_regions\":[],\"allow_plaintext\":true}" \
    >/dev/null || die "could not write the tenant record to $2"
}

# router_hop_commands SUPERCLUSTER STORE REGIONAL_PORT GLOBAL_PORT UPSTREAM_A UPSTREAM_B
# THREADS: sets regional_hop_command and global_hop_command (arrays), the two router tiers
# of the two-hop path: a regional router with a store (the API key checked) and static
# workers at the two upstream ports, and a global one finding it through the store. They
# share cores with each other, so they do not poll for events (router.busy_poll_us=0, as
# under `supercluster up`).
router_hop_commands() {
  regional_hop_command=("$1" router --tier regional --region bench
    --listen "127.0.0.1:$3" --store "$2" --static-worker "127.0.0.1:$5"
    --static-worker "127.0.0.1:$6" --log-level warn --set server.io_threads="$7"
    --set router.busy_poll_us=0)
  global_hop_command=("$1" router --tier global --listen "127.0.0.1:$4" --store "$2"
    --log-level warn --set server.io_threads="$7" --set router.busy_poll_us=0)
}

# nginx_regional_hop_config DIR NAME LISTEN_PORT UPSTREAM_A UPSTREAM_B WORKERS [MASTER]: the
# config file of an nginx in the regional router's role on the two-hop path: the key check
# and the tenant's limits, then least-connection proxying to the upstream with what a
# regional router sends a worker (the request id it was given, the tenant, no
# Authorization). MASTER: master_process on (default) or off.
nginx_regional_hop_config() {
  nginx_config "$1" "$2" "${7:-on}" "$(nginx_tenant_gate)
  upstream backends {
    least_conn;
    server 127.0.0.1:$4;
    server 127.0.0.1:$5;
    keepalive 64;
  }
  server {
    listen 127.0.0.1:$3;
$(nginx_gated_location http://backends '      proxy_set_header X-Supercluster-Request-Id $http_x_supercluster_request_id;
      proxy_set_header X-Supercluster-Tenant $bench_tenant;
      proxy_set_header Authorization "";')
  }" "$6"
}

# nginx_global_hop_config DIR NAME LISTEN_PORT REGIONAL_PORT WORKERS [MASTER]: the config
# file of an nginx in the global router's role: the key check and the tenant's limits, then
# proxying to the regional hop with a request id of its own and the key passed on.
nginx_global_hop_config() {
  nginx_config "$1" "$2" "${6:-on}" "$(nginx_tenant_gate)
  upstream regional {
    server 127.0.0.1:$4;
    keepalive 64;
  }
  server {
    listen 127.0.0.1:$3;
$(nginx_gated_location http://regional '      proxy_set_header X-Supercluster-Request-Id $pid-$connection-$connection_requests;')
  }" "$5"
}

# wait_for_key_check URL: until URL answers the benchmark request with its key 200 (a
# global router routes once its health check has seen the regional one), or die after
# 10 s; then checks that another key gets 401.
wait_for_key_check() {
  local try code
  for try in $(seq 100); do
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 -H 'Authorization: Bearer bench' \
      -H 'Content-Type: application/json' -d '{"model":"bench","prompt":"hi","max_tokens":1}' \
      "$1/v1/completions" || true)
    [[ "$code" == 200 ]] && break
    sleep 0.1
  done
  [[ "$code" == 200 ]] || die "$1 did not answer 200 within 10 s (last: $code)"
  code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 -H 'Authorization: Bearer wrong' \
    -d '{}' "$1/v1/completions" || true)
  [[ "$code" == 401 ]] || die "$1 answered $code to an unknown API key, not 401"
}

# write_completion_lua PATH [LUA]: writes the wrk script of the proxy benchmarks' request,
# POST with a 49-byte OpenAI-style completion body and `Authorization: Bearer bench`, set
# once (wrk's fast path: no Lua per request); LUA (a done() hook, say) is appended.
write_completion_lua() {
  cat >"$1" <<'LUA'
wrk.method = "POST"
wrk.body = '{"model":"bench","prompt":"hello","max_tokens":1}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer bench"
LUA
  if [[ -n "${2:-}" ]]; then printf '%s\n' "$2" >>"$1"; fi
}
