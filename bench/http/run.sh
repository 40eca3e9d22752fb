#!/usr/bin/env bash
# HTTP benchmark: `supercluster serve` against nginx on the same small keep-alive request.
#
# Starts both servers on loopback (127.0.0.1, free ports) with the same number of worker
# processes / io threads, checks that both answer GET /v1/echo with the same 24-byte body,
# then drives each with wrk at the same connection counts and prints requests/s, p50 and
# p99 latency and the ratio supercluster/nginx. Results also go to a JSON file
# ($OUT_DIR/http-<timestamp>.json). Each run also records, from /proc, the CPU used by the
# server (hence CPU time per request, the per-core cost even when a core is not saturated),
# by wrk, and by everything else on the machine; the script warns when other work used more
# than 0.1 core, since such a run is not trustworthy.
#
# Rounds: with --rounds R (default 1) every connection count is measured R times, the two
# servers in alternating order (supercluster first in odd rounds, nginx first in even ones),
# and the table shows each measure's median over the rounds, with the per-round ratios
# beside it. On a shared or virtual machine single runs scatter; medians of 3 or more are
# what to compare.
#
# CPU pinning: the servers run on cores 0..N-1 (N = --threads), wrk on core N, so the load
# generator does not steal the servers' CPU. On a 2-core machine with the default N=1:
# server = core 0, wrk = core 1.
#
# nginx runs from a temp dir (its own config, pid file, error log, temp paths; access log
# off); it never reads /etc/nginx and never listens on port 80.
#
# Usage: bench/http/run.sh path/to/supercluster [--threads N] [--connections "1 16 64"]
#                                               [--duration SECONDS] [--rounds R]
#   (or `make bench`). Environment: OUT_DIR (default build/bench), NGINX_BINARY (default
#   /usr/sbin/nginx), WRK_BINARY (default wrk).
set -euo pipefail

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
bench_name=bench/http  # the prefix of its messages
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
rounds=1
warmup=2
while [[ $# -gt 0 ]]; do
  case "$1" in
    --threads) threads=${2:?--threads needs a value}; shift 2 ;;
    --connections) connections=${2:?--connections needs a value}; shift 2 ;;
    --duration) duration=${2:?--duration needs a value}; shift 2 ;;
    --rounds) rounds=${2:?--rounds needs a value}; shift 2 ;;
    -h|--help) usage ;;
    *) echo "run.sh: unknown argument: $1" >&2; usage ;;
  esac
done

nginx=${NGINX_BINARY:-/usr/sbin/nginx}
wrk=${WRK_BINARY:-wrk}
# nginx reads $NGINX as a list of inherited listening sockets (binary upgrade); never pass one.
unset NGINX
out_dir=${OUT_DIR:-$repo_root/build/bench}
expected_body=$'hello from supercluster\n'

[[ -x "$supercluster" ]] || die "not an executable: $supercluster (build it first: make build)"
[[ -x "$nginx" ]] || die "nginx not found at $nginx (scripts/install-deps installs nginx-light)"
for tool in "$wrk" taskset curl python3; do
  command -v "$tool" >/dev/null || die "$tool not found (scripts/install-deps installs it)"
done
[[ "$threads" =~ ^[1-9][0-9]*$ ]] || die "--threads must be a positive integer"
[[ "$duration" =~ ^[1-9][0-9]*$ ]] || die "--duration must be a positive integer (seconds)"
[[ "$rounds" =~ ^[1-9][0-9]*$ ]] || die "--rounds must be a positive integer"
for c in $connections; do
  [[ "$c" =~ ^[1-9][0-9]*$ ]] || die "--connections must be positive integers, got '$c'"
done

# --- CPU placement ---------------------------------------------------------------------
cores=$(nproc)
server_cpus="0-$((threads - 1))"
(( threads == 1 )) && server_cpus=0
if (( threads < cores )); then
  wrk_cpus="$threads"
  placement="servers pinned to core(s) $server_cpus, wrk to core $wrk_cpus"
else
  # Not enough cores to keep them apart: the numbers then include wrk's own CPU use.
  server_cpus="0-$((cores - 1))"
  wrk_cpus="$((cores - 1))"
  placement="WARNING: $threads threads >= $cores cores: servers on cores $server_cpus SHARE core $wrk_cpus with wrk"
  log "$placement"
fi

# --- temp dir and cleanup --------------------------------------------------------------
tmp=$(mktemp -d "${TMPDIR:-/tmp}/supercluster-bench-http.XXXXXX")
supercluster_pid=""
nginx_pid=""
wrk_pid=""

cleanup() {
  local status=$?
  trap - EXIT INT TERM
  stop_process "$wrk_pid" wrk
  stop_process "$supercluster_pid" supercluster
  # nginx: SIGTERM to the master is a fast shutdown; it stops its workers.
  stop_process "$nginx_pid" nginx
  if [[ $status -ne 0 ]]; then
    for f in "$tmp"/supercluster.log "$tmp"/error.log; do
      [[ -s "$f" ]] && { log "last lines of $(basename "$f"):"; tail -n 20 "$f" >&2; }
    done
  fi
  rm -rf "$tmp"
  exit "$status"
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT
trap 'log "terminated"; exit 143' TERM

wait_ready() {  # wait_ready NAME PID URL: until URL answers, the process dies, or 10 s pass
  local name=$1 pid=$2 url=$3
  for _ in $(seq 100); do
    kill -0 "$pid" 2>/dev/null || die "$name exited during start-up"
    curl -fsS -o /dev/null --max-time 1 "$url" 2>/dev/null && return 0
    sleep 0.1
  done
  die "$name did not answer $url within 10 s"
}

# --- machine description ---------------------------------------------------------------
cpu_model=$(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -n 1)
kernel=$(uname -sr)
nginx_version=$("$nginx" -v 2>&1 | sed 's/^nginx version: //')  # "nginx/1.22.1"
wrk_version=$("$wrk" -v 2>&1 | head -n 1 | awk '{print $2}' || true)
run_date=$(date -u +%Y-%m-%dT%H:%M:%SZ)
git_revision=$(git_revision_of "$repo_root")
supercluster_version=$("$supercluster" version 2>/dev/null | head -n 1 || true)

# --- start supercluster ----------------------------------------------------------------
supercluster_port=$(free_port)
log "starting supercluster serve on 127.0.0.1:$supercluster_port ($threads io threads, core(s) $server_cpus)"
taskset -c "$server_cpus" "$supercluster" serve --listen "127.0.0.1:$supercluster_port" \
  --set "server.io_threads=$threads" --log-level warn >"$tmp/supercluster.log" 2>&1 &
supercluster_pid=$!
wait_ready supercluster "$supercluster_pid" "http://127.0.0.1:$supercluster_port/healthz"

# --- start nginx -----------------------------------------------------------------------
nginx_port=$(free_port)
mkdir -p "$tmp/nginx-temp"
user_line=""
# As root, nginx would switch its workers to "nobody"; keep them as the current user.
[[ $(id -u) -eq 0 ]] && user_line="user $(id -un) $(id -gn);"
cat >"$tmp/nginx.conf" <<EOF
# Written by bench/http/run.sh; the anchor for supercluster serve's GET /v1/echo.
$user_line
worker_processes $threads;
pid $tmp/nginx.pid;
lock_file $tmp/nginx.lock;
error_log $tmp/error.log warn;
events {
  worker_connections 4096;
}
http {
  access_log off;
  keepalive_requests 1000000;
  keepalive_timeout 75s;
  client_body_temp_path $tmp/nginx-temp/body;
  proxy_temp_path $tmp/nginx-temp/proxy;
  fastcgi_temp_path $tmp/nginx-temp/fastcgi;
  uwsgi_temp_path $tmp/nginx-temp/uwsgi;
  scgi_temp_path $tmp/nginx-temp/scgi;
  server {
    listen 127.0.0.1:$nginx_port;
    location = /v1/echo {
      default_type text/plain;
      return 200 "hello from supercluster\n";
    }
    location = /healthz {
      return 200 "ok\n";
    }
  }
}
EOF
log "starting nginx on 127.0.0.1:$nginx_port ($threads workers, core(s) $server_cpus)"
"$nginx" -t -q -p "$tmp" -e "$tmp/error.log" -c "$tmp/nginx.conf" -g 'daemon off;' \
  || die "nginx rejected its config ($tmp/nginx.conf)"
taskset -c "$server_cpus" "$nginx" -p "$tmp" -e "$tmp/error.log" -c "$tmp/nginx.conf" \
  -g 'daemon off;' >"$tmp/nginx.out" 2>&1 &
nginx_pid=$!
wait_ready nginx "$nginx_pid" "http://127.0.0.1:$nginx_port/healthz"

# --- same answer from both -------------------------------------------------------------
check_body() {  # check_body NAME URL: the body must be exactly the expected 24 bytes
  local name=$1 url=$2 body
  body=$(curl -fsS --max-time 5 "$url"; echo x) || die "$name: GET $url failed"
  body=${body%x}
  [[ "$body" == "$expected_body" ]] \
    || die "$name answered $(printf %q "$body") to GET $url, expected $(printf %q "$expected_body")"
}
supercluster_url="http://127.0.0.1:$supercluster_port/v1/echo"
nginx_url="http://127.0.0.1:$nginx_port/v1/echo"
check_body supercluster "$supercluster_url"
check_body nginx "$nginx_url"
supercluster_header_bytes=$(curl -fsS -o /dev/null -w '%{size_header}' "$supercluster_url")
nginx_header_bytes=$(curl -fsS -o /dev/null -w '%{size_header}' "$nginx_url")
log "both answer the same ${#expected_body}-byte body (response headers: supercluster" \
  "$supercluster_header_bytes bytes, nginx $nginx_header_bytes bytes)"

# --- measure ---------------------------------------------------------------------------
# wrk's done() hook prints exact numbers (latency in microseconds) instead of its rounded
# human-readable summary. Defining only done() keeps wrk on its fast, script-free path.
cat >"$tmp/report.lua" <<'EOF'
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "RESULT requests=%d duration_us=%d p50_us=%d p99_us=%d errors=%d non2xx=%d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.timeout, e.status))
end
EOF

run_wrk() {  # run_wrk URL CONNECTIONS SECONDS OUTPUT
  taskset -c "$wrk_cpus" "$wrk" -t1 -c "$2" -d "${3}s" --latency -s "$tmp/report.lua" "$1" \
    >"$4" 2>&1 &
  wrk_pid=$!
  wait "$wrk_pid" || { wrk_pid=""; cat "$4" >&2; die "wrk failed against $1"; }
  wrk_pid=""
}

# CPU time (clock ticks, user + system) of a server: the process, its threads and its
# direct children (nginx's workers). Tells whether the server's core was saturated.
clock_ticks=$(getconf CLK_TCK)
cpu_ticks() {
  local total=0 pid fields
  for pid in "$1" $(pgrep -P "$1" || true); do
    # Fields after the ")" that ends the command name: utime is the 12th, stime the 13th.
    fields=$(sed 's/^.*) //' "/proc/$pid/stat" 2>/dev/null) || continue
    total=$(( total + $(awk '{print $12 + $13}' <<<"$fields") ))
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

# Busy CPU ticks of the whole machine (user, nice, system, irq, softirq, steal). What is
# busy during a run besides the server and wrk is interference from other work.
results="$tmp/results.tsv"
: >"$results"
for round in $(seq "$rounds"); do
for c in $connections; do
  # Interleaved per connection count, so a slow drift of the machine hits both alike; the
  # order alternates between rounds, so neither server always runs first.
  order="supercluster nginx"
  (( round % 2 == 0 )) && order="nginx supercluster"
  for server in $order; do
    if [[ $server == supercluster ]]; then url=$supercluster_url; pid=$supercluster_pid
    else url=$nginx_url; pid=$nginx_pid; fi
    log "round $round/$rounds: $server: $c connections: ${warmup} s warm-up, ${duration} s measured"
    run_wrk "$url" "$c" "$warmup" "$tmp/warmup.txt"
    server_ticks_before=$(cpu_ticks "$pid")
    machine_ticks_before=$(machine_busy_ticks)
    children_cpu_ms
    wrk_ms_before=$children_ms
    run_wrk "$url" "$c" "$duration" "$tmp/wrk-$server-$c.txt"
    server_ticks=$(( $(cpu_ticks "$pid") - server_ticks_before ))
    machine_ticks=$(( $(machine_busy_ticks) - machine_ticks_before ))
    children_cpu_ms
    wrk_ms=$(( children_ms - wrk_ms_before ))
    kill -0 "$pid" 2>/dev/null || die "$server died during the run"
    line=$(grep '^RESULT ' "$tmp/wrk-$server-$c.txt") \
      || { cat "$tmp/wrk-$server-$c.txt" >&2; die "no result from wrk for $server"; }
    line="${line#RESULT } server_cpu_ms=$(( server_ticks * 1000 / clock_ticks ))"
    line+=" wrk_cpu_ms=$wrk_ms machine_cpu_ms=$(( machine_ticks * 1000 / clock_ticks ))"
    printf '%s\t%s\t%s\t%s\n' "$round" "$server" "$c" "$line" >>"$results"
    log "  $line"
  done
done
done

# --- report ----------------------------------------------------------------------------
mkdir -p "$out_dir"
json_file="$out_dir/http-$(date -u +%Y%m%dT%H%M%SZ).json"
supercluster_binary=$(realpath "$supercluster")
export supercluster_binary cpu_model cores kernel nginx_version wrk_version run_date git_revision placement \
  threads duration warmup rounds supercluster_version supercluster_header_bytes nginx_header_bytes
python3 - "$results" "$json_file" <<'EOF'
import json, os, statistics, sys

results_path, json_path = sys.argv[1], sys.argv[2]
env = os.environ
runs = {}  # connections -> server -> [one measurement per round]
for line in open(results_path):
    round_number, server, connections, fields = line.rstrip("\n").split("\t")
    values = dict(item.split("=") for item in fields.split())
    values = {k: int(v) for k, v in values.items()}
    seconds = values["duration_us"] / 1e6
    runs.setdefault(int(connections), {}).setdefault(server, []).append({
        "round": int(round_number),
        "requests_per_second": values["requests"] / seconds,
        # Share of one core used by the server / by wrk during the measured run
        # (1.0 = one core saturated).
        "server_cpu_cores": values["server_cpu_ms"] / 1000.0 / seconds,
        "wrk_cpu_cores": values["wrk_cpu_ms"] / 1000.0 / seconds,
        # Everything else the machine did meanwhile (other processes, kernel threads).
        "other_cpu_cores": max(0, values["machine_cpu_ms"] - values["server_cpu_ms"]
                               - values["wrk_cpu_ms"]) / 1000.0 / seconds,
        # Server CPU time per request: the per-core cost, independent of whether the
        # server's core was saturated.
        "server_cpu_us_per_request": values["server_cpu_ms"] * 1000.0 / max(values["requests"], 1),
        "p50_ms": values["p50_us"] / 1000.0,
        "p99_ms": values["p99_us"] / 1000.0,
        "requests": values["requests"],
        "errors": values["errors"],
        "non_2xx": values["non2xx"],
    })

def median_of(measurements):
    """Each numeric measure's median over the rounds (errors are summed)."""
    keys = [k for k in measurements[0] if k != "round"]
    merged = {k: statistics.median(m[k] for m in measurements) for k in keys}
    for k in ("requests", "errors", "non_2xx"):
        merged[k] = sum(m[k] for m in measurements)
    return merged

rows = {c: {server: median_of(ms) for server, ms in by_server.items()}
        for c, by_server in runs.items()}

machine = (f'{env["cpu_model"]}, {env["cores"]} cores, {env["kernel"]}, {env["nginx_version"]}, '
           f'wrk {env["wrk_version"]}, {env["run_date"]}, git {env["git_revision"]}')
print()
print(f"HTTP: supercluster serve vs nginx, GET /v1/echo (24-byte body), keep-alive")
print(f"machine:  {machine}")
print(f"binary:   {env['supercluster_version'] or '?'} ({env['supercluster_binary']})")
print(f"setup:    {env['threads']} io thread(s) / nginx worker(s); wrk -t1; {env['placement']}; "
      f"{env['warmup']} s warm-up + {env['duration']} s per run; {env['rounds']} round(s)"
      + (", medians shown" if int(env["rounds"]) > 1 else ""))
print(f"response headers: supercluster {env['supercluster_header_bytes']} bytes, "
      f"nginx {env['nginx_header_bytes']} bytes")
print()
header = ("connections", "sc req/s", "sc p50 ms", "sc p99 ms",
          "nginx req/s", "nginx p50 ms", "nginx p99 ms", "ratio",
          "sc CPU", "nginx CPU", "sc µs CPU/req", "nginx µs CPU/req", "wrk CPU (sc/nginx)",
          "other CPU (sc/nginx)", "ratio per round")
print("| " + " | ".join(header) + " |")
print("|" + "|".join("-" * (len(h) + 2) for h in header) + "|")
table = []
noisy = False
for connections in sorted(rows):
    sc, ng = rows[connections]["supercluster"], rows[connections]["nginx"]
    ratio = sc["requests_per_second"] / ng["requests_per_second"] if ng["requests_per_second"] else 0
    round_ratios = [s["requests_per_second"] / n["requests_per_second"] if n["requests_per_second"] else 0
                    for s, n in zip(runs[connections]["supercluster"], runs[connections]["nginx"])]
    table.append({"connections": connections, "supercluster": sc, "nginx": ng, "ratio": ratio,
                  "ratio_per_round": round_ratios,
                  "rounds": {"supercluster": runs[connections]["supercluster"],
                             "nginx": runs[connections]["nginx"]}})
    cells = (str(connections), f'{sc["requests_per_second"]:.0f}', f'{sc["p50_ms"]:.3f}',
             f'{sc["p99_ms"]:.3f}', f'{ng["requests_per_second"]:.0f}', f'{ng["p50_ms"]:.3f}',
             f'{ng["p99_ms"]:.3f}', f"{ratio:.2f}",
             f'{sc["server_cpu_cores"]:.2f}', f'{ng["server_cpu_cores"]:.2f}',
             f'{sc["server_cpu_us_per_request"]:.1f}', f'{ng["server_cpu_us_per_request"]:.1f}',
             f'{sc["wrk_cpu_cores"]:.2f}/{ng["wrk_cpu_cores"]:.2f}',
             f'{sc["other_cpu_cores"]:.2f}/{ng["other_cpu_cores"]:.2f}',
             " ".join(f"{r:.2f}" for r in round_ratios))
    print("| " + " | ".join(cells) + " |")
    for name, r in (("supercluster", sc), ("nginx", ng)):
        if any(m["other_cpu_cores"] > 0.10 for m in runs[connections][name]):
            noisy = True
        if r["errors"] or r["non_2xx"]:
            print(f"  warning: {name} at {connections} connections: {r['errors']} socket errors, "
                  f"{r['non_2xx']} non-2xx responses")
print()
print("ratio = supercluster req/s / nginx req/s (goal: >= 1.00), of the medians when there are")
print("several rounds. CPU = cores busy during the measured run (1.00 = the server's core")
print("saturated); µs CPU/req = server CPU time per request; other CPU = what the rest of the")
print("machine used meanwhile (interference).")
if noisy:
    print("WARNING: other work used more than 0.10 core during some runs; rerun on a quiet machine.")

document = {
    "benchmark": "http-echo",
    "request": "GET /v1/echo, keep-alive, 24-byte response body",
    "machine": {
        "cpu_model": env["cpu_model"], "cores": int(env["cores"]), "kernel": env["kernel"],
        "nginx": env["nginx_version"], "wrk": env["wrk_version"], "date": env["run_date"],
        "git_revision": env["git_revision"], "supercluster_version": env["supercluster_version"],
        "supercluster_binary": env["supercluster_binary"],
    },
    "setup": {
        "threads": int(env["threads"]), "wrk_threads": 1, "placement": env["placement"],
        "warmup_seconds": int(env["warmup"]), "duration_seconds": int(env["duration"]),
        "rounds": int(env["rounds"]),
        "response_header_bytes": {"supercluster": int(env["supercluster_header_bytes"]),
                                  "nginx": int(env["nginx_header_bytes"])},
    },
    "interference_warning": noisy,
    "results": table,
}
with open(json_path, "w") as f:
    json.dump(document, f, indent=2)
    f.write("\n")
EOF
log "results written to $json_file"
