#!/usr/bin/env bash
# Cluster state store benchmark: put, CAS and watch-delivery rates and latencies of both
# Store backends, each next to its anchor in the same run (see bench/store/store_bench.cc):
#   sqlite: SqliteStore vs the same puts through the sqlite3 C API (WAL, synchronous=FULL)
#   etcd:   EtcdStore vs the same puts sent straight to etcd's /v3/kv/put gateway
#
# Starts one etcd member (Debian's /usr/bin/etcd) on free loopback ports with a temp data
# dir, runs store_bench against a temp SQLite file and against that etcd, prints one table
# with the machine line, and writes the results as JSON to build/bench/store-<time>.json.
# The temp files (SQLite database and etcd data dir) live under $TMPDIR (default /tmp):
# their filesystem decides what an fsync costs, so the machine line names it.
#
# Usage: bench/store/run.sh BUILD_DIR [--duration SECONDS] [--ops N] [--clients N]
#   (or `make bench`). --duration is per measurement; the default 5 keeps the whole run
#   near 75 s. Environment: OUT_DIR (default build/bench), ETCD_BINARY (default
#   /usr/bin/etcd), TMPDIR.
set -euo pipefail

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
bench_name=bench/store  # the prefix of its messages
# shellcheck source=../lib.sh
source "$script_dir/../lib.sh"
repo_root=$(cd "$script_dir/../.." && pwd)

[[ $# -ge 1 ]] || usage
case "$1" in -h|--help) usage ;; esac
build_dir=$1
shift
duration=5
ops=0
clients=4
while [[ $# -gt 0 ]]; do
  case "$1" in
    --duration) duration=${2:?--duration needs a value}; shift 2 ;;
    --ops) ops=${2:?--ops needs a value}; shift 2 ;;
    --clients) clients=${2:?--clients needs a value}; shift 2 ;;
    -h|--help) usage ;;
    *) echo "run.sh: unknown argument: $1" >&2; usage ;;
  esac
done

bench=$build_dir/bench/store/store_bench
etcd=${ETCD_BINARY:-/usr/bin/etcd}
out_dir=${OUT_DIR:-$repo_root/build/bench}

[[ -x "$bench" ]] || die "not an executable: $bench (build it first: make build)"
[[ -x "$etcd" ]] || die "etcd not found at $etcd (scripts/install-deps installs etcd-server)"
for tool in curl python3; do
  command -v "$tool" >/dev/null || die "$tool not found (scripts/install-deps installs it)"
done
[[ "$duration" =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "--duration must be a number of seconds"
[[ "$ops" =~ ^[0-9]+$ ]] || die "--ops must be a non-negative integer"
[[ "$clients" =~ ^[1-9][0-9]*$ ]] || die "--clients must be a positive integer"

# --- temp dir and cleanup --------------------------------------------------------------
tmp=$(mktemp -d "${TMPDIR:-/tmp}/supercluster-bench-store.XXXXXX")
etcd_pid=""
bench_pid=""

cleanup() {
  local status=$?
  trap - EXIT INT TERM
  stop_process "$bench_pid" store_bench
  stop_process "$etcd_pid" etcd
  if [[ $status -ne 0 && -s "$tmp/etcd.log" ]]; then
    log "last lines of etcd.log:"
    tail -n 20 "$tmp/etcd.log" >&2
  fi
  rm -rf "$tmp"
  exit "$status"
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT
trap 'log "terminated"; exit 143' TERM

# --- machine description ---------------------------------------------------------------
cpu_model=$(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -n 1)
cores=$(nproc)
kernel=$(uname -sr)
etcd_version=$("$etcd" --version 2>/dev/null | sed -n 's/^etcd Version: *//p' | head -n 1)
run_date=$(date -u +%Y-%m-%dT%H:%M:%SZ)
git_revision=$(git_revision_of "$repo_root")
# Where the database and etcd's data dir live: filesystem type and block device.
storage=$(df -T "$tmp" | awk 'NR == 2 {print $2 " on " $1}')

# --- start etcd ------------------------------------------------------------------------
client_port=$(free_port)
peer_port=$(free_port)
client_url="http://127.0.0.1:$client_port"
peer_url="http://127.0.0.1:$peer_port"
log "starting etcd $etcd_version on $client_url (data dir under $tmp)"
"$etcd" --name bench --data-dir "$tmp/etcd" \
  --listen-client-urls "$client_url" --advertise-client-urls "$client_url" \
  --listen-peer-urls "$peer_url" --initial-advertise-peer-urls "$peer_url" \
  --initial-cluster "bench=$peer_url" --initial-cluster-state new \
  --logger zap --log-outputs "$tmp/etcd.log" --log-level error >"$tmp/etcd.out" 2>&1 &
etcd_pid=$!
ready=""
for _ in $(seq 100); do
  kill -0 "$etcd_pid" 2>/dev/null || die "etcd exited during start-up: $(tail -n 5 "$tmp/etcd.out")"
  if curl -fsS --max-time 1 "$client_url/health" 2>/dev/null | grep -q '"health":"true"'; then
    ready=yes
    break
  fi
  sleep 0.1
done
[[ -n "$ready" ]] || die "etcd did not report healthy at $client_url/health within 10 s"

# --- measure ---------------------------------------------------------------------------
clock_ticks=$(getconf CLK_TCK)
process_ticks() {  # user + system CPU ticks of one process (all its threads)
  local fields
  # Fields after the ")" that ends the command name: utime is the 12th, stime the 13th.
  fields=$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null) || { echo 0; return; }
  awk '{print $12 + $13}' <<<"$fields"
}
# Busy CPU ticks of the whole machine (user, nice, system, irq, softirq, steal).
run_backend() {  # run_backend NAME ARGS...: store_bench into $tmp/NAME.json, CPU into NAME.cpu
  local name=$1 start_ns end_ns etcd_before machine_before
  shift
  log "$name: store_bench, ${duration} s per measurement"
  etcd_before=$(process_ticks "$etcd_pid")
  machine_before=$(machine_busy_ticks)
  start_ns=$(date +%s%N)
  "$bench" "$@" --duration "$duration" --ops "$ops" --clients "$clients" \
    --json "$tmp/$name.json" >"$tmp/$name.out" 2>"$tmp/$name.err" &
  bench_pid=$!
  if ! wait "$bench_pid"; then
    bench_pid=""
    cat "$tmp/$name.err" >&2
    die "store_bench failed for $name"
  fi
  bench_pid=""
  end_ns=$(date +%s%N)
  kill -0 "$etcd_pid" 2>/dev/null || die "etcd died during the $name run"
  printf '{"wall_seconds": %s, "etcd_cpu_seconds": %s, "machine_cpu_seconds": %s}\n' \
    "$(awk -v a="$start_ns" -v b="$end_ns" 'BEGIN {printf "%.3f", (b - a) / 1e9}')" \
    "$(awk -v t=$(( $(process_ticks "$etcd_pid") - etcd_before )) -v h="$clock_ticks" \
         'BEGIN {printf "%.2f", t / h}')" \
    "$(awk -v t=$(( $(machine_busy_ticks) - machine_before )) -v h="$clock_ticks" \
         'BEGIN {printf "%.2f", t / h}')" >"$tmp/$name.cpu"
}

run_backend sqlite --backend sqlite --path "$tmp/store.db"
run_backend etcd --backend etcd --endpoint "$client_url"

# --- report ----------------------------------------------------------------------------
mkdir -p "$out_dir"
json_file="$out_dir/store-$(date -u +%Y%m%dT%H%M%SZ).json"
bench_binary=$(realpath "$bench")
export cpu_model cores kernel etcd_version run_date git_revision storage duration ops clients \
  bench_binary
python3 - "$tmp" "$json_file" <<'EOF'
import json, os, sys

tmp, json_path = sys.argv[1], sys.argv[2]
env = os.environ
results, cpu = {}, {}
for backend in ("sqlite", "etcd"):
    with open(os.path.join(tmp, backend + ".json")) as f:
        results[backend] = json.load(f)
    with open(os.path.join(tmp, backend + ".cpu")) as f:
        cpu[backend] = json.load(f)

machine = (f'{env["cpu_model"]}, {env["cores"]} cores, {env["kernel"]}, '
           f'etcd {env["etcd_version"]}, SQLite {results["sqlite"]["sqlite_version"]}, '
           f'temp files on {env["storage"]}, {env["run_date"]}, git {env["git_revision"]}')
clients = int(env["clients"])
print()
print("Cluster state store: SqliteStore vs raw sqlite3, EtcdStore vs raw etcd gateway")
print(f"machine:  {machine}")
print(f"setup:    {env['duration']} s per measurement (store and anchor alternate, 2 rounds each); "
      f"{clients} clients for the concurrent rows; "
      f"{results['sqlite']['settings']['value_bytes']}-byte values, each put a new value")
print()

def ms(us):
    return f"{us / 1000:.2f}"

header = ("backend", "measurement", "store ops/s", "p50 ms", "p99 ms",
          "anchor ops/s", "anchor p50 ms", "anchor p99 ms", "ratio", "notes")
print("| " + " | ".join(header) + " |")
print("|" + "|".join("-" * (len(h) + 2) for h in header) + "|")
for key, label, note in (
        ("sync_probe", "4 KiB write + fdatasync", "the floor under any durable commit"),
        ("sync_probe_busy_cpu", "same, all CPUs kept busy",
         "no idle vCPU to wake: what is left is the disk")):
    probe = results["sqlite"][key]
    cells = ("disk", label, f'{probe["ops_per_second"]:.0f}', ms(probe["p50_us"]),
             ms(probe["p99_us"]), "", "", "", "", note)
    print("| " + " | ".join(cells) + " |")
for backend, r in results.items():
    for key, label in (("put_sequential", "put, 1 client"),
                       ("put_concurrent", f"put, {clients} clients")):
        s, a = r[key]["store"], r[key]["anchor"]
        cells = (backend, label, f'{s["ops_per_second"]:.0f}', ms(s["p50_us"]), ms(s["p99_us"]),
                 f'{a["ops_per_second"]:.0f}', ms(a["p50_us"]), ms(a["p99_us"]),
                 f'{r[key]["ratio"]:.2f}',
                 f'client CPU µs/put {s["client_cpu_us_per_op"]:.0f} vs '
                 f'{a["client_cpu_us_per_op"]:.0f}')
        print("| " + " | ".join(cells) + " |")
    c = r["cas"]
    cells = (backend, f"CAS increment, {clients} clients", f'{c["increments_per_second"]:.0f}',
             ms(c["p50_us"]), ms(c["p99_us"]), "", "", "", "",
             f'{c["retries_per_increment"]:.3f} retries/increment; counter {c["final_counter"]}'
             f' = increments')
    print("| " + " | ".join(cells) + " |")
    for key, label in (("watch_same_client", "watch delivery, writer's store"),
                       ("watch_separate_client", "watch delivery, second store")):
        w = r[key]
        cells = (backend, label, f'{w["delivered_per_second"]:.0f}', ms(w["p50_us"]),
                 ms(w["p99_us"]), "", "", "", "",
                 f'{w["delivered"]}/{w["written"]} delivered once, in order')
        print("| " + " | ".join(cells) + " |")
print()
print("ratio = store puts/s / anchor puts/s. Anchors: sqlite = sqlite3 C API, WAL, synchronous=FULL,")
print("one BEGIN IMMEDIATE + one-row upsert + COMMIT per put; etcd = POST /v3/kv/put with")
print("net::HttpClient, keep-alive. Watch latency: just before Put is issued -> callback sees it.")
print("client CPU µs/put: CPU of the putting threads per put (store vs anchor); for etcd, etcd's")
print("own CPU is not in it (see the CPU lines below).")

noisy = False
for backend in ("sqlite", "etcd"):
    c = cpu[backend]
    own = sum(results[backend]["process_cpu_seconds"].values()) + c["etcd_cpu_seconds"]
    other = max(0.0, c["machine_cpu_seconds"] - own) / c["wall_seconds"]
    c["bench_and_etcd_cpu_cores"] = own / c["wall_seconds"]
    c["other_cpu_cores"] = other
    print(f"{backend}: {c['wall_seconds']:.0f} s; store_bench + etcd used "
          f"{c['bench_and_etcd_cpu_cores']:.2f} cores, the rest of the machine {other:.2f} cores")
    if other > 0.10:
        noisy = True
if noisy:
    print("WARNING: other work used more than 0.10 core during a run; rerun on a quiet machine.")

document = {
    "benchmark": "store",
    "machine": {
        "cpu_model": env["cpu_model"], "cores": int(env["cores"]), "kernel": env["kernel"],
        "etcd": env["etcd_version"], "sqlite": results["sqlite"]["sqlite_version"],
        "storage": env["storage"], "date": env["run_date"], "git_revision": env["git_revision"],
        "store_bench_binary": env["bench_binary"],
    },
    "setup": {"duration_seconds_per_measurement": float(env["duration"]),
              "ops_cap": int(env["ops"]), "clients": clients},
    "cpu": cpu,
    "interference_warning": noisy,
    "results": results,
}
with open(json_path, "w") as f:
    json.dump(document, f, indent=2)
    f.write("\n")
EOF
log "results written to $json_file"
