#!/usr/bin/env bash
# `supercluster up --netns`: each region's processes in its own network namespace (made by
# scripts/netns-regions), so regions reach each other only over the namespaces' links.
# A cluster of two regions comes up, answers a sealed prompt, loses a region and still
# answers from the other. Needs root and network namespaces: skips (77) without them, and
# when namespaces of scripts/netns-regions already exist (it must not disturb them).
# Usage: cluster_netns_test.sh path/to/supercluster
set -euo pipefail
binary=$1
source_dir=$(cd "$(dirname "$0")/.." && pwd)
netns="$source_dir/scripts/netns-regions"
regions="ntest-a ntest-b"
skip() { echo "cluster_netns_test: SKIP: $*"; exit 77; }
[[ $(id -u) == 0 ]] || skip "needs root"
command -v ip > /dev/null || skip "no ip command"
if compgen -G "/var/run/netns/sc-*" > /dev/null; then
  skip "network namespaces sc-* exist already (scripts/netns-regions down to remove them)"
fi
ip netns add sc-ntest-probe 2> /dev/null || skip "cannot create network namespaces here"
ip netns del sc-ntest-probe
data=$(mktemp -d)
cleanup() {
  "$binary" down --data-dir "$data" --kill > /dev/null 2>&1 || true
  "$netns" down --regions "$regions" > /dev/null 2>&1 || true
  rm -rf "$data"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

"$netns" up --regions "$regions" > "$data/netns.log" 2>&1 || { cat "$data/netns.log"; fail "netns-regions up"; }
"$binary" up --netns --data-dir "$data" --regions ntest-a,ntest-b --client-region ntest-a \
  --workers-per-region 1 --global-listen 127.0.0.1:0 > "$data/up.out" 2> "$data/up.err" \
  || { cat "$data/up.err"; fail "up --netns failed"; }
# The global endpoint listens on the client region's own address, not on loopback.
grep -q "global endpoint  http://10.78.0.1:" "$data/up.out" || { cat "$data/up.out"; fail "global endpoint not in ntest-a"; }
# Every region process really runs in its region's namespace.
python3 - "$data/cluster/cluster.json" <<'PY' || fail "a process is not in its region's namespace"
import json, os, sys
info = json.load(open(sys.argv[1]))
for p in info["processes"]:
    region = p["region"] or "ntest-a"   # the global endpoint stands in the client region
    want = os.stat("/var/run/netns/sc-" + region).st_ino
    got = os.stat("/proc/%d/ns/net" % p["pid"]).st_ino
    assert got == want, (p["name"], region)
PY
"$binary" status --data-dir "$data" > "$data/status.out"
[[ $(grep -c " worker .* ready " "$data/status.out") == 2 ]] || { cat "$data/status.out"; fail "workers not ready"; }
"$binary" infer --data-dir "$data" --prompt "And God said" --max-tokens 6 > /dev/null 2> "$data/infer.err" \
  || { cat "$data/infer.err"; fail "infer failed"; }
"$binary" down --data-dir "$data" --region ntest-a --kill > /dev/null 2>&1
sleep 1
"$binary" infer --data-dir "$data" --prompt "And God said" --max-tokens 6 > /dev/null 2> "$data/infer2.err" \
  || { cat "$data/infer2.err"; fail "infer failed after losing ntest-a"; }
grep -q "served by ntest-b/" "$data/infer2.err" || { cat "$data/infer2.err"; fail "not served by ntest-b"; }
"$binary" down --data-dir "$data" > /dev/null 2>&1 || fail "down failed"
echo "PASS"
