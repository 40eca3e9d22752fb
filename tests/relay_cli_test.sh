#!/usr/bin/env bash
# Integration test of `supercluster relay` as `supercluster up` and fault-injection scripts
# use it: a relay in front of a real `supercluster serve` adds the round-trip time it was
# given; its control API cuts, blackholes, drops, restores and re-delays a running relay;
# several named routes live in one process and are controlled one at a time; bad flags exit
# 2 and bad control requests get 4xx; SIGTERM stops it with exit 0.
# Usage: tests/relay_cli_test.sh path/to/supercluster
set -euo pipefail
binary=$(realpath "$1")
work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -9 "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; for f in "$work"/*.log; do echo "--- $f" >&2; cat "$f" >&2; done; exit 1; }

# wait_for_line FILE REGEX: prints the first match once it appears (5 s at most).
wait_for_line() {
  local match=""
  for _ in $(seq 100); do
    match=$(grep -o -m 1 -E "$2" "$1" || true)
    [[ -n "$match" ]] && { echo "$match"; return 0; }
    sleep 0.05
  done
  return 1
}

"$binary" serve --listen 127.0.0.1:0 2> "$work/serve.log" &
pids+=($!)
target=$(wait_for_line "$work/serve.log" 'serving on tcp://127.0.0.1:[0-9]+' | grep -o '[0-9]*$') \
  || fail "serve did not start"

# --- one route: --listen/--target/--delay ----------------------------------------------
"$binary" relay --listen 127.0.0.1:0 --target "127.0.0.1:$target" --delay 100ms \
  --control 127.0.0.1:0 2> "$work/relay.log" &
relay_pid=$!
pids+=($relay_pid)
line=$(wait_for_line "$work/relay.log" 'relay serving on tcp://127.0.0.1:[0-9]+') \
  || fail "relay did not report its address"
port=${line##*:}
line=$(wait_for_line "$work/relay.log" 'relay control on tcp://127.0.0.1:[0-9]+') \
  || fail "relay did not report its control address"
control="http://127.0.0.1:${line##*:}"
grep -q 'rtt 100ms' "$work/relay.log" || fail "the ready line does not show the rtt"

# seconds_for URL: total seconds of one GET through a fresh connection.
seconds_for() { curl -sf -o /dev/null -w '%{time_total}' --max-time 5 "$1"; }
# at_least / below: float comparisons.
at_least() { python3 -c "import sys; sys.exit(0 if float('$1') >= float('$2') else 1)"; }
below() { python3 -c "import sys; sys.exit(0 if float('$1') < float('$2') else 1)"; }

# A fresh connection costs the handshake's round trip plus the request's: >= 2 x 100 ms.
t=$(seconds_for "http://127.0.0.1:$port/v1/echo") || fail "GET through the relay failed"
at_least "$t" 0.2 || fail "request through a 100ms relay took only ${t}s"
below "$t" 1.5 || fail "request through a 100ms relay took ${t}s"
[[ "$(curl -sf "http://127.0.0.1:$port/v1/echo")" == "hello from supercluster" ]] \
  || fail "wrong body through the relay"

status=$(curl -sf "$control/status") || fail "GET /status"
python3 - "$status" <<'EOF' || fail "bad /status: $status"
import json, sys
route = json.loads(sys.argv[1])["routes"][0]
assert route["rtt"] == "100ms" and route["rtt_ms"] == 100, route
assert route["mode"] == "forward", route
assert route["connections"]["accepted"] >= 2, route
assert route["bytes"]["to_target"] > 0 and route["bytes"]["to_client"] > 0, route
EOF

# Changing the delay of the running relay.
curl -sf -X POST "$control/delay?rtt=20ms" > /dev/null || fail "POST /delay"
t=$(seconds_for "http://127.0.0.1:$port/v1/echo") || fail "GET after /delay failed"
at_least "$t" 0.04 || fail "request through a 20ms relay took only ${t}s"
below "$t" 0.2 || fail "the new delay did not apply: ${t}s"

# Cut: refused at once; restore: back.
curl -sf -X POST "$control/cut" | grep -q '"mode":"cut"' || fail "POST /cut"
start=$(date +%s.%N)
if curl -sf -o /dev/null --max-time 3 "http://127.0.0.1:$port/v1/echo"; then fail "a cut relay answered"; fi
below "$(python3 -c "print($(date +%s.%N) - $start)")" 1 || fail "a cut relay was slow to refuse"
curl -sf -X POST "$control/restore" | grep -q '"mode":"forward"' || fail "POST /restore"
curl -sf -o /dev/null "http://127.0.0.1:$port/v1/echo" || fail "no answer after restore"

# Blackhole: the client times out (curl exit 28), rather than being refused.
curl -sf -X POST "$control/blackhole" > /dev/null || fail "POST /blackhole"
set +e
curl -sf -o /dev/null --max-time 1 "http://127.0.0.1:$port/v1/echo"; code=$?
set -e
[[ $code -eq 28 ]] || fail "through a blackhole curl exited $code, want 28 (timeout)"
curl -sf -X POST "$control/restore" > /dev/null || fail "POST /restore"
curl -sf -o /dev/null "http://127.0.0.1:$port/v1/echo" || fail "no answer after the blackhole"

# Drop every new connection, then none.
curl -sf -X POST "$control/drop?p=1" > /dev/null || fail "POST /drop"
if curl -sf -o /dev/null --max-time 3 "http://127.0.0.1:$port/v1/echo"; then fail "p=1 let a connection through"; fi
curl -sf -X POST "$control/drop?p=0" > /dev/null || fail "POST /drop?p=0"
curl -sf -o /dev/null "http://127.0.0.1:$port/v1/echo" || fail "no answer after drop p=0"

# Bad control requests.
code_of() { curl -s -o /dev/null -w '%{http_code}' "$@"; }
[[ $(code_of -X POST "$control/delay?rtt=fast") == 400 ]] || fail "bad rtt not 400"
[[ $(code_of -X POST "$control/delay") == 400 ]] || fail "missing rtt not 400"
[[ $(code_of -X POST "$control/delay?rtt=10ms&jitter=-1ms") == 400 ]] || fail "bad jitter not 400"
[[ $(code_of -X POST "$control/drop?p=1.5") == 400 ]] || fail "p=1.5 not 400"
[[ $(code_of -X POST "$control/drop?p=nan") == 400 ]] || fail "p=nan not 400"
[[ $(code_of -X POST "$control/cut?route=nope") == 404 ]] || fail "unknown route not 404"
[[ $(code_of "$control/cut") == 405 ]] || fail "GET /cut not 405"
curl -sf "$control/healthz" > /dev/null || fail "/healthz"
# A rejected request changed nothing.
curl -sf "$control/status" | grep -q '"rtt":"20ms"' || fail "a bad /delay changed the delay"

kill -TERM "$relay_pid"
wait "$relay_pid" || fail "relay exited non-zero after SIGTERM"
grep -q 'stopped' "$work/relay.log" || fail "no stop log line"

# --- several named routes in one process ------------------------------------------------
"$binary" relay --route "east=127.0.0.1:0=127.0.0.1:$target@10ms" \
  --route "west=127.0.0.1:0=127.0.0.1:$target@60ms" --jitter 1ms \
  --control 127.0.0.1:0 2> "$work/routes.log" &
routes_pid=$!
pids+=($routes_pid)
wait_for_line "$work/routes.log" 'relay control on tcp://127.0.0.1:[0-9]+' > "$work/control" \
  || fail "multi-route relay did not start"
control="http://127.0.0.1:$(grep -o '[0-9]*$' "$work/control")"
east=$(grep -o 'relay serving on tcp://127.0.0.1:[0-9]* -> [^ ]* (route east' "$work/routes.log" \
  | sed 's/.*127.0.0.1:\([0-9]*\) ->.*/\1/')
west=$(grep -o 'relay serving on tcp://127.0.0.1:[0-9]* -> [^ ]* (route west' "$work/routes.log" \
  | sed 's/.*127.0.0.1:\([0-9]*\) ->.*/\1/')
[[ -n "$east" && -n "$west" ]] || fail "routes not reported: $(cat "$work/routes.log")"
t=$(seconds_for "http://127.0.0.1:$west/v1/echo") || fail "west route"
at_least "$t" 0.12 || fail "west (60ms) took only ${t}s"
t=$(seconds_for "http://127.0.0.1:$east/v1/echo") || fail "east route"
below "$t" 0.12 || fail "east (10ms) took ${t}s"
curl -sf -X POST "$control/cut?route=west" > /dev/null || fail "cut west"
if curl -sf -o /dev/null --max-time 3 "http://127.0.0.1:$west/v1/echo"; then fail "cut west answered"; fi
curl -sf -o /dev/null "http://127.0.0.1:$east/v1/echo" || fail "cutting west cut east"
curl -sf -X POST "$control/delay?rtt=1ms&route=east" > /dev/null || fail "delay east"
# `?route=` naming nothing (a script's empty variable) is refused, not taken as every route.
[[ $(code_of -X POST "$control/cut?route=") == 400 ]] || fail "cut?route= (empty) not 400"
python3 - "$(curl -sf "$control/status")" <<'EOF' || fail "bad multi-route /status"
import json, sys
routes = {r["name"]: r for r in json.loads(sys.argv[1])["routes"]}
assert routes["west"]["mode"] == "cut" and routes["east"]["mode"] == "forward", routes
assert routes["east"]["rtt"] == "1ms" and routes["west"]["rtt"] == "60ms", routes
assert routes["east"]["jitter"] == "1ms", routes
EOF
kill -TERM "$routes_pid"
wait "$routes_pid" || fail "multi-route relay exited non-zero after SIGTERM"

# --- bad usage exits 2, bad configuration 1 ----------------------------------------------
expect_exit() {  # expect_exit CODE WORD ARGS...: exit status and a word of the message
  local want=$1 word=$2 code
  shift 2
  set +e
  "$binary" relay "$@" 2> "$work/err"; code=$?
  set -e
  [[ $code -eq $want ]] || fail "relay $* exited $code, want $want"
  grep -q -- "$word" "$work/err" || fail "relay $*: message lacks '$word': $(cat "$work/err")"
}
expect_exit 2 'no route'
expect_exit 2 'go together' --listen 127.0.0.1:0
expect_exit 2 'delay' --listen 127.0.0.1:0 --target 127.0.0.1:1 --delay fast
expect_exit 2 'jitter' --listen 127.0.0.1:0 --target 127.0.0.1:1 --jitter -1ms
expect_exit 2 'LISTEN=TARGET@RTT' --route 127.0.0.1:0
expect_exit 2 'two routes' --route a=127.0.0.1:0=127.0.0.1:1@1ms --route a=127.0.0.1:0=127.0.0.1:1@1ms
expect_exit 2 'control' --route 127.0.0.1:0=127.0.0.1:1@1ms --control nonsense
expect_exit 2 'no-such-flag' --no-such-flag
expect_exit 1 'relay.max_buffered_bytes' --route 127.0.0.1:0=127.0.0.1:1@1ms --set relay.max_buffered_bytes=1
expect_exit 1 "$target" --route "127.0.0.1:$target=127.0.0.1:1@1ms"
echo "relay_cli_test: ok"
