#!/usr/bin/env bash
# Crypto benchmark: single-shot HPKE seal and open of a 4 KiB request (X25519 + HKDF-SHA256
# with AES-128-GCM and with ChaCha20-Poly1305) next to the OpenSSL EVP primitives under it
# (X25519 keygen, X25519 derive, AEAD seal/open of 4 KiB); and Supercluster's sealed request
# envelope and a 100-chunk streamed answer next to the raw AEAD work under them; all in the
# same run. Prints the tables with the machine line and the ratios (see
# bench/crypto/crypto_bench.cc) and writes the results as JSON to build/bench/crypto-<time>.json.
#
# Builds nothing: BUILD_DIR must hold bench/crypto/crypto_bench (`make build`).
#
# Usage: bench/crypto/run.sh BUILD_DIR [--duration SECONDS] [--rounds N]
#   --duration is per measurement (default 2; ten measurements, so about 20 s in all).
#   Environment: OUT_DIR (default build/bench).
set -euo pipefail

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
bench_name=bench/crypto  # the prefix of its messages
# shellcheck source=../lib.sh
source "$script_dir/../lib.sh"
repo_root=$(cd "$script_dir/../.." && pwd)

[[ $# -ge 1 ]] || usage
case "$1" in -h|--help) usage ;; esac
build_dir=$1
shift
duration=2
rounds=7
while [[ $# -gt 0 ]]; do
  case "$1" in
    --duration) duration=${2:?--duration needs a value}; shift 2 ;;
    --rounds) rounds=${2:?--rounds needs a value}; shift 2 ;;
    -h|--help) usage ;;
    *) echo "run.sh: unknown argument: $1" >&2; usage ;;
  esac
done

bench=$build_dir/bench/crypto/crypto_bench
[[ -x "$bench" ]] || die "not an executable: $bench (build it first: make build)"
[[ "$duration" =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "--duration must be a number of seconds"
[[ "$rounds" =~ ^[1-9][0-9]*$ ]] || die "--rounds must be a positive integer"

# --- machine description ---------------------------------------------------------------
cpu_model=$(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -n 1)
cores=$(nproc)
kernel=$(uname -sr)
run_date=$(date -u +%Y-%m-%dT%H:%M:%SZ)
git_revision=$(git_revision_of "$repo_root")
machine="${cpu_model:-unknown CPU}, $cores cores, $kernel, $run_date, git $git_revision"

# --- measure ---------------------------------------------------------------------------
out_dir=${OUT_DIR:-$repo_root/build/bench}
mkdir -p "$out_dir"
json_file="$out_dir/crypto-$(date -u +%Y%m%dT%H%M%SZ).json"
log "crypto_bench, $duration s per measurement in $rounds rounds"
# Busy CPU ticks of the whole machine before and after say whether it was quiet.
clock_ticks=$(getconf CLK_TCK)
busy_before=$(machine_busy_ticks)
start_ns=$(date +%s%N)
"$bench" --duration "$duration" --rounds "$rounds" --machine "$machine" --json "$json_file" ||
  die "crypto_bench failed"
end_ns=$(date +%s%N)
busy_after=$(machine_busy_ticks)
# crypto_bench is one thread: what is busy beyond one core is other work.
other=$(awk -v t=$((busy_after - busy_before)) -v h="$clock_ticks" -v a="$start_ns" -v b="$end_ns" \
  'BEGIN {w = (b - a) / 1e9; o = t / h / w - 1; if (o < 0) o = 0; printf "%.2f", o}')
echo "other work on the machine during the run: $other cores"
if awk -v o="$other" 'BEGIN {exit !(o > 0.10)}'; then
  echo "WARNING: other work used more than 0.10 core during the run; rerun on a quiet machine."
fi
log "results written to $json_file"
