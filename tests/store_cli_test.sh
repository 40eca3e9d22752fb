#!/usr/bin/env bash
# Integration test of `supercluster store get|put|delete|ls|watch` against both backends: an
# SQLite file, and a real etcd (Debian's etcd-server) started here on a free loopback port.
# Usage: tests/store_cli_test.sh path/to/supercluster
set -euo pipefail
binary=$(realpath "$1")
work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

# A free port below the kernel's ephemeral range, where outgoing connections (other tests
# run in parallel) cannot take it before etcd binds it (as net::FreeLoopbackPorts does).
free_port() {
  python3 - <<'PY'
import random, socket
low = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
for _ in range(200):
    port = random.randint(10000, max(10000, low - 1))
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port))
    except OSError:
        continue
    finally:
        s.close()
    print(port)
    break
else:
    s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()
PY
}

# Runs the same checks against one store URL.
check_backend() {
  local url=$1
  local sc=("$binary" store)
  "${sc[@]}" put --store "$url" /sc/v1/regions/us-east-1 '{"schema":1}' > "$work/put.out" \
    || fail "$url: put"
  grep -q '^revision [0-9]*$' "$work/put.out" || fail "$url: put did not print the revision"
  [[ "$("${sc[@]}" get --store "$url" /sc/v1/regions/us-east-1)" == '{"schema":1}' ]] \
    || fail "$url: get returned something else"
  "${sc[@]}" put --store "$url" /sc/v1/regions/us-west-2 'b' > /dev/null
  "${sc[@]}" put --store "$url" /elsewhere 'c' > /dev/null
  [[ "$("${sc[@]}" ls --store "$url" /sc/v1/regions/ | wc -l)" == 2 ]] || fail "$url: ls prefix"
  "${sc[@]}" ls --store "$url" --json /sc/v1/regions/ \
    | python3 -c 'import json,sys; rows=[json.loads(l) for l in sys.stdin]; assert [r["key"] for r in rows]==["/sc/v1/regions/us-east-1","/sc/v1/regions/us-west-2"], rows' \
    || fail "$url: ls --json"

  # watch prints changes made by another process while it runs.
  "${sc[@]}" watch --store "$url" /sc/v1/instances/ > "$work/watch.out" 2>&1 &
  local watcher=$!
  pids+=("$watcher")
  sleep 0.5
  "${sc[@]}" put --store "$url" /sc/v1/instances/us-east-1/i-1 serving > /dev/null
  for _ in $(seq 100); do
    grep -q 'PUT /sc/v1/instances/us-east-1/i-1 = serving' "$work/watch.out" && break
    sleep 0.05
  done
  grep -q 'PUT /sc/v1/instances/us-east-1/i-1 = serving' "$work/watch.out" \
    || fail "$url: watch did not show the put: $(cat "$work/watch.out")"
  kill -TERM "$watcher"
  wait "$watcher" || fail "$url: watch did not exit 0 on SIGTERM"

  set +e
  "${sc[@]}" get --store "$url" /missing 2> "$work/err"; local code=$?
  set -e
  [[ $code -eq 1 ]] || fail "$url: get of a missing key exited $code, want 1"
  grep -q "no key '/missing'" "$work/err" || fail "$url: missing key not named"

  # A value too long for the command line (over 128 KiB) comes from a file, or stdin,
  # byte for byte.
  head -c 200000 /dev/urandom | base64 -w 0 > "$work/big"
  "${sc[@]}" put --store "$url" /sc/v1/big --value-file "$work/big" > /dev/null \
    || fail "$url: put --value-file"
  "${sc[@]}" get --store "$url" /sc/v1/big > "$work/big.out"
  [[ "$(head -c -1 "$work/big.out" | sha256sum)" == "$(sha256sum < "$work/big")" ]] \
    || fail "$url: the value from --value-file came back changed"
  printf 'a\nb' | "${sc[@]}" put --store "$url" /sc/v1/stdin --value-file - > /dev/null
  [[ "$("${sc[@]}" get --store "$url" /sc/v1/stdin)" == $'a\nb' ]] \
    || fail "$url: put --value-file - did not take standard input"
  set +e
  "${sc[@]}" put --store "$url" /sc/v1/zero --value-file /dev/zero 2> "$work/err"; code=$?
  set -e
  [[ $code -eq 1 ]] || fail "$url: an endless --value-file exited $code, want 1"
  grep -q "larger than" "$work/err" || fail "$url: an endless --value-file: $(cat "$work/err")"

  # delete removes a key and says so; a key that is not there is an error.
  "${sc[@]}" delete --store "$url" /sc/v1/stdin > "$work/delete.out" || fail "$url: delete"
  grep -q "^deleted /sc/v1/stdin$" "$work/delete.out" || fail "$url: delete did not say so"
  set +e
  "${sc[@]}" get --store "$url" /sc/v1/stdin 2> /dev/null; code=$?
  [[ $code -eq 1 ]] || fail "$url: the deleted key is still there"
  "${sc[@]}" delete --store "$url" /sc/v1/stdin 2> "$work/err"; code=$?
  set -e
  [[ $code -eq 1 ]] || fail "$url: delete of a missing key exited $code, want 1"
  grep -q "no key '/sc/v1/stdin'" "$work/err" || fail "$url: delete of a missing key not named"
}

check_backend "sqlite://$work/state.db"

client_port=$(free_port)
peer_port=$(free_port)
etcd --name cli-test --data-dir "$work/etcd" \
  --listen-client-urls "http://127.0.0.1:$client_port" \
  --advertise-client-urls "http://127.0.0.1:$client_port" \
  --listen-peer-urls "http://127.0.0.1:$peer_port" \
  --initial-advertise-peer-urls "http://127.0.0.1:$peer_port" \
  --initial-cluster "cli-test=http://127.0.0.1:$peer_port" \
  --log-level error > "$work/etcd.log" 2>&1 &
pids+=("$!")
disown "$!"
for _ in $(seq 100); do
  curl -sf "http://127.0.0.1:$client_port/health" > /dev/null && break
  sleep 0.1
done
check_backend "etcd://127.0.0.1:$client_port"

# Commands that read name a store that should be there: a mistyped SQLite path fails
# instead of answering from a new, empty store (and leaves no file behind).
set +e
for verb in get ls delete; do
  "$binary" store "$verb" --store "sqlite://$work/typo.db" /sc/v1/x 2> "$work/err"; code=$?
  [[ $code -eq 1 ]] || fail "store $verb on a missing file exited $code, want 1"
  grep -q "no store at $work/typo.db" "$work/err" || fail "store $verb: $(cat "$work/err")"
  [[ ! -e "$work/typo.db" ]] || fail "store $verb created $work/typo.db"
done
# The same for the default store (no --store, no store.url), where an operator who meant
# `supercluster up`'s store most often lands.
mkdir -p "$work/home"
HOME="$work/home" "$binary" store ls 2> "$work/err"; code=$?
[[ $code -eq 1 ]] || fail "store ls on the default store, not there, exited $code, want 1"
grep -q "no store at $work/home/.local/share/supercluster/state.db" "$work/err" \
  || fail "store ls on the default store: $(cat "$work/err")"
[[ ! -e "$work/home/.local/share/supercluster/state.db" ]] || fail "store ls created the default store"
: > "$work/empty.db"
"$binary" store ls --store "sqlite://$work/empty.db" 2> "$work/err"; code=$?
[[ $code -eq 1 ]] || fail "store ls on an empty file exited $code, want 1"
[[ ! -s "$work/empty.db" ]] || fail "store ls wrote into an empty file"
set -e

set +e
"$binary" store get --store "ftp://x" key 2> "$work/err"; code=$?
[[ $code -eq 1 ]] || fail "bad store URL exited $code, want 1"
"$binary" store frobnicate 2> "$work/err"; code=$?
[[ $code -eq 2 ]] || fail "unknown verb exited $code, want 2"
"$binary" store get --store "sqlite://$work/state.db" 2> "$work/err"; code=$?
[[ $code -eq 2 ]] || fail "get without a key exited $code, want 2"
set -e
echo "store_cli_test: ok"
