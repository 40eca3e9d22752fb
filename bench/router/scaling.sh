#!/usr/bin/env bash
# The router with several io threads against nginx with as many workers: the checks that
# decide whether the router keeps at least nginx's throughput when both use several
# cores, in one command for a machine lent for a few minutes (bench/bundle.sh packs what
# it needs). In order, each a bench/router/paired.sh run with --threads N:
#   1. router against nginx at 16 and 64 connections: the result;
#   2. the same at 64 with twice as many upstream workers (on the cores after the
#      proxies'), which takes the upstream out of the limit: if the ratio rises here, the
#      upstream held one proxy back more than the other in 1;
#   3. the router not polling (router.busy_poll_us=0) against nginx at 64: what its
#      polling threads cost the cores beside them (siblings of one physical core among
#      them, when paired.sh's "cores:" line lists any);
#   4. when ANCHOR_ROUTER_BINARY is set (bundle.sh's ANCHOR_SUPERCLUSTER), this binary
#      against that one at 64: what the changes between the two builds did;
#   5. balancer_bench at 1, 2, 4, ... threads (up to 4N and the machine's cores) with 16 us
#      of other work per request, when it is on PATH: what the shared balancer costs each
#      thread.
# Each step's output goes to the terminal and, with OUT_DIR, to OUT_DIR/scaling-<step>.txt;
# at the end a summary repeats each paired step's ratios and says whether step 1 has the
# router at or above nginx at every connection count, by the geometric mean and by the
# whole 95 % interval.
# Steps 1 to 4 took about 4 minutes at the defaults on 16 cores (2026-11-28; step 5, not
# timed there, adds balancer_bench's rounds: 5 per thread count). N=4, 20 pairs;
# 3N cores needed, 4N for step 2, which is skipped with a note when they are not there;
# N=1 runs on 2 cores, as paired.sh does.
#
# Usage: bench/router/scaling.sh path/to/supercluster [--threads 4] [--pairs 20]
#   Environment: as paired.sh's (NGINX_BINARY, WRK_BINARY, ANCHOR_ROUTER_BINARY), and
#   OUT_DIR (optional) for the copies of the output.
set -euo pipefail

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
bench_name=bench/router/scaling  # the prefix of its messages
# shellcheck source=../lib.sh
source "$script_dir/../lib.sh"
[[ $# -ge 1 ]] || usage
case "$1" in -h|--help) usage ;; esac
supercluster=$1
shift
threads=4
pairs=20
while [[ $# -gt 0 ]]; do
  case "$1" in
    --threads) threads=${2:?--threads needs a value}; shift 2 ;;
    --pairs) pairs=${2:?--pairs needs a value}; shift 2 ;;
    -h|--help) usage ;;
    *) echo "scaling.sh: unknown argument: $1" >&2; usage ;;
  esac
done
[[ -x "$supercluster" ]] || die "not an executable: $supercluster (build it first: make build)"
[[ "$threads" =~ ^[1-9][0-9]*$ ]] || die "--threads must be a positive integer"
[[ "$pairs" =~ ^[1-9][0-9]*$ && "$pairs" -ge 2 ]] || die "--pairs must be an integer of 2 or more"
cores=$(nproc)
(( threads == 1 || 3 * threads <= cores )) || die "--threads $threads needs $((3 * threads)) cores, this machine has $cores"
if [[ -n "${OUT_DIR:-}" ]]; then
  mkdir -p "$OUT_DIR"
  kept=$OUT_DIR
else
  kept=$(mktemp -d)
  trap 'rm -rf "$kept"' EXIT
fi

paired=$script_dir/paired.sh
anchor_binary=${ANCHOR_ROUTER_BINARY:-}

# step NAME COMMAND...: runs COMMAND with its output shown and kept for the summary. A
# step that fails is reported and the next one runs: a lent machine's minutes are not
# spent twice.
step() {
  local name=$1
  shift
  log "step $name: $*"
  local status=0
  "$@" 2>&1 | tee "$kept/scaling-$name.txt" || status=$?
  (( status == 0 )) || log "step $name failed (exit $status); going on"
}

# summary: each paired step's ratio rows (connections, pairs, geometric mean and interval),
# then the verdict on step 1.
summary() {
  python3 - "$kept" <<'PY'
import glob, os, re, sys
row = re.compile(r"^\| (\d+) \| (\d+) \| ([0-9.]+) \(([0-9.]+) to ([0-9.]+)\)")
print("\nSummary (router / anchor: geometric mean of the pairs, 95 % interval)")
verdict = None
for path in sorted(glob.glob(os.path.join(sys.argv[1], "scaling-*.txt"))):
    step = os.path.basename(path)[len("scaling-"):-len(".txt")]
    rows = [row.match(line) for line in open(path, errors="replace")]
    rows = [m for m in rows if m]
    for m in rows:
        print(f"  {step:22} {m.group(1):>4} connections, {m.group(2):>3} pairs: "
              f"{m.group(3)} ({m.group(4)} to {m.group(5)})")
    if step == "1-nginx" and rows:
        means = [float(m.group(3)) for m in rows]
        lows = [float(m.group(4)) for m in rows]
        verdict = (all(x >= 1.0 for x in means), all(x >= 1.0 for x in lows))
if verdict is None:
    print("step 1 gave no ratios: no verdict")
else:
    yes = lambda b: "yes" if b else "no"
    print(f"router at or above nginx at every connection count of step 1: "
          f"{yes(verdict[0])} by the mean, {yes(verdict[1])} by the whole interval")
PY
}

# paired.sh against nginx: ANCHOR_ROUTER_BINARY cleared for the steps that want nginx.
against_nginx() { ANCHOR_ROUTER_BINARY='' ANCHOR_ROUTER_FLAGS='' "$paired" "$supercluster" "$@"; }
not_polling() {
  ANCHOR_ROUTER_BINARY='' ANCHOR_ROUTER_FLAGS='' \
    ROUTER_EXTRA_FLAGS="${ROUTER_EXTRA_FLAGS:-} --set router.busy_poll_us=0" \
    "$paired" "$supercluster" "$@"
}

step 1-nginx against_nginx --threads "$threads" --connections "16 64" --pairs "$pairs"
if (( 4 * threads <= cores )); then
  step 2-upstream-doubled against_nginx --threads "$threads" --upstream-workers $((2 * threads)) \
    --connections 64 --pairs "$pairs"
else
  log "step 2-upstream-doubled skipped: needs $((4 * threads)) cores, this machine has $cores"
fi
step 3-not-polling not_polling --threads "$threads" --connections 64 --pairs "$pairs"
if [[ -n "$anchor_binary" ]]; then
  step 4-anchor-build "$paired" "$supercluster" --threads "$threads" --connections 64 --pairs "$pairs"
else
  log "step 4-anchor-build skipped: ANCHOR_ROUTER_BINARY is not set"
fi
if command -v balancer_bench >/dev/null; then
  thread_counts=1
  for (( n = 2; n <= cores && n <= 4 * threads; n *= 2 )); do thread_counts+=",$n"; done
  step 5-balancer balancer_bench --threads "$thread_counts" --work 16000 --requests 100000
else
  log "step 5-balancer skipped: balancer_bench is not on PATH (bench/bundle.sh brings it)"
fi
summary
log "done"
