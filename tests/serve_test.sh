#!/usr/bin/env bash
# Integration test of `supercluster serve`, the process as a user runs it: it starts on a
# free loopback port, answers /healthz, /readyz, /v1/echo and /metrics (which must pass
# `promtool check metrics`), drains on SIGTERM with a request in flight, and refuses bad
# flags (exit 2) and bad configuration (exit 1).
# Usage: tests/serve_test.sh path/to/supercluster
set -euo pipefail
binary=$(realpath "$1")
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
server_pid=""
cleanup() {
  [[ -n "$server_pid" ]] && kill -9 "$server_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

# Starts serve with the given extra flags; sets server_pid and url.
start_server() {
  "$binary" serve --listen 127.0.0.1:0 --log-format json "$@" 2> "$work/log" &
  server_pid=$!
  for _ in $(seq 100); do
    port=$(grep -o 'serving on tcp://127.0.0.1:[0-9]*' "$work/log" | grep -o '[0-9]*$' || true)
    [[ -n "$port" ]] && break
    sleep 0.05
  done
  [[ -n "$port" ]] || { cat "$work/log" >&2; fail "server did not report its port"; }
  url="http://127.0.0.1:$port"
}

start_server
[[ "$(curl -sf "$url/healthz")" == "ok" ]] || fail "/healthz"
[[ "$(curl -sf "$url/readyz")" == "ready" ]] || fail "/readyz"
[[ "$(curl -sf "$url/v1/echo")" == "hello from supercluster" ]] || fail "GET /v1/echo"
[[ "$(curl -sf --data-binary 'round trip' "$url/v1/echo")" == "round trip" ]] || fail "POST /v1/echo"
[[ "$(curl -s -o /dev/null -w '%{http_code}' "$url/nope")" == "404" ]] || fail "404 for unknown path"
# The server counts a request when its last write completes, which can be a moment after
# curl has read the answer; so poll briefly rather than expect it on the first scrape.
counted=""
for _ in $(seq 40); do
  curl -sf "$url/metrics" > "$work/metrics.txt" || fail "/metrics"
  if grep -q 'supercluster_http_requests_total{code="200",method="GET",route="/v1/echo"} 1' \
    "$work/metrics.txt"; then counted=yes; break; fi
  sleep 0.05
done
[[ -n "$counted" ]] || { grep requests_total "$work/metrics.txt" >&2; fail "request counter missing from /metrics"; }
grep -q '^process_resident_memory_bytes ' "$work/metrics.txt" || fail "process metrics missing"
"$here/promtool_check.sh" "$work/metrics.txt" || fail "promtool check metrics"
# Every log line is JSON.
python3 -c 'import json,sys; [json.loads(l) for l in open(sys.argv[1]) if l.strip()]' "$work/log" \
  || fail "log lines are not JSON"

# SIGTERM while a large upload is in flight: the upload still completes, then exit 0.
head -c 4000000 /dev/zero > "$work/upload"
curl -s --limit-rate 2M --data-binary @"$work/upload" -o "$work/echoed" -w '%{http_code}' \
  "$url/v1/echo" > "$work/code" &
curl_pid=$!
sleep 0.5
kill -TERM "$server_pid"
wait "$curl_pid" || true
[[ "$(cat "$work/code")" == "200" ]] || fail "in-flight request during drain got $(cat "$work/code")"
cmp -s "$work/upload" "$work/echoed" || fail "in-flight request body changed during drain"
wait "$server_pid" || fail "serve exited non-zero after SIGTERM"
server_pid=""
grep -q 'draining' "$work/log" || fail "no drain log line"

# Bad usage exits 2, bad configuration exits 1, each with a reason on stderr.
set +e
"$binary" serve --no-such-flag 2> "$work/err"; code=$?
[[ $code -eq 2 ]] || fail "unknown flag exited $code, want 2"
grep -q 'no-such-flag' "$work/err" || fail "unknown flag not named"
"$binary" serve --listen nonsense 2> "$work/err"; code=$?
[[ $code -eq 2 ]] || fail "bad --listen exited $code, want 2"
"$binary" serve --set server.max_body_bytes=-1 2> "$work/err"; code=$?
[[ $code -eq 1 ]] || fail "bad --set exited $code, want 1"
grep -q 'server.max_body_bytes' "$work/err" || fail "bad --set did not name the key"
printf 'server:\n  max_conections: 5\n' > "$work/bad.yaml"
"$binary" serve --config "$work/bad.yaml" 2> "$work/err"; code=$?
[[ $code -eq 1 ]] || fail "bad config exited $code, want 1"
grep -q 'bad.yaml:2' "$work/err" || fail "bad config error lacks file:line: $(cat "$work/err")"
"$binary" serve --listen "unix://$work/no-such-dir/s.sock" 2> "$work/err"; code=$?
[[ $code -eq 1 ]] || fail "unbindable address exited $code, want 1"
set -e
echo "serve_test: ok"
