#!/usr/bin/env bash
# `supercluster up`, `status`, `infer` and `down` from the command line, as the README's
# quick start uses them: a whole cluster comes up in a fresh data directory, answers a sealed
# prompt, loses a region, still answers, and stops leaving no process behind.
# Usage: cluster_cli_test.sh path/to/supercluster
set -euo pipefail
binary=$1
data=$(mktemp -d)
cleanup() {
  "$binary" down --data-dir "$data" --kill >/dev/null 2>&1 || true
  rm -rf "$data"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

# Options that cannot work are refused (exit 2) before anything starts.
for bad in "--regions a,a --client-region a" "--regions a,b?c --client-region a" \
           "--rtts us-east-1:nowhere=5ms" "--global-listen nonsense"; do
  rc=0
  # shellcheck disable=SC2086  # the words of $bad are separate flags
  "$binary" up --data-dir "$data" $bad > /dev/null 2> "$data/bad.err" || rc=$?
  [[ $rc == 2 ]] || fail "up $bad: exit $rc, $(cat "$data/bad.err")"
  [[ -z $(pgrep -f "$data/" || true) ]] || fail "up $bad started processes"
done

# Interrupted while starting (Ctrl-C), `up` stops what it had started; killed outright, it
# leaves a cluster.json naming every process it spawned, so that `down` stops them.
# Starts `up` in the background and waits until it has spawned a first process and named
# it in cluster.json (written right after each spawn).
start_up_in_background() {
  "$binary" up --data-dir "$data" --global-listen 127.0.0.1:0 > /dev/null 2> "$data/partial.err" &
  up_pid=$!
  for _ in $(seq 200); do
    [[ -n $(pgrep -f "$data/" || true) && -s "$data/cluster/cluster.json" ]] && return 0
    sleep 0.05
  done
  fail "up spawned nothing within 10 s"
}
start_up_in_background
kill -INT "$up_pid"
rc=0; wait "$up_pid" || rc=$?
[[ $rc != 0 ]] || fail "up finished before its interrupt: the test needs a slower start"
grep -q "interrupted" "$data/partial.err" || fail "up did not say it was interrupted: $(cat "$data/partial.err")"
sleep 0.3
[[ -z $(pgrep -f "$data/" || true) ]] || fail "an interrupted up left processes: $(pgrep -af "$data/")"
start_up_in_background
kill -9 "$up_pid" 2> /dev/null || true
wait "$up_pid" 2> /dev/null || true
started=$(pgrep -f "$data/" | wc -l)
[[ $started -lt 16 ]] || fail "up was killed only after starting all 16 processes: not mid-start"
"$binary" down --data-dir "$data" > /dev/null 2>&1 || fail "down after a killed up failed"
sleep 0.3
[[ -z $(pgrep -f "$data/" || true) ]] || fail "down left processes of a killed up: $(pgrep -af "$data/")"

# One region: no inter-region links, so no relay.
"$binary" up --data-dir "$data" --regions solo --client-region solo --workers-per-region 1 \
  --global-listen 127.0.0.1:0 > "$data/solo.out" 2> "$data/solo.err" \
  || { cat "$data/solo.err" >&2; fail "a one-region cluster did not start"; }
grep -q "supercluster down --data-dir $data" "$data/solo.out" || fail "up's hints lack --data-dir"
"$binary" infer --data-dir "$data" --prompt "And God said" --max-tokens 2 > /dev/null 2> "$data/solo-infer.err" \
  || { cat "$data/solo-infer.err"; fail "the one-region cluster did not answer"; }
"$binary" down --data-dir "$data" > /dev/null 2>&1 || fail "down of the one-region cluster failed"

# An empty --region (an unset variable in a drill script) is a usage error, not "all".
rc=0
"$binary" down --data-dir "$data" --region "" > /dev/null 2> "$data/empty-region.err" || rc=$?
[[ $rc == 2 ]] && grep -q "non-empty" "$data/empty-region.err" \
  || fail "down --region '': exit $rc, $(cat "$data/empty-region.err")"

# A bad count is a usage error (exit 2) before anything starts.
for bad in 0 65 two; do
  rc=0
  "$binary" up --data-dir "$data" --workers-per-region "$bad" > /dev/null 2> "$data/bad.err" || rc=$?
  [[ $rc == 2 ]] && grep -q "must be 1..64" "$data/bad.err" \
    || fail "up --workers-per-region $bad: exit $rc, $(cat "$data/bad.err")"
done

"$binary" up --data-dir "$data" --global-listen 127.0.0.1:0 --set cluster.stop_timeout=7s \
  > "$data/up.out" 2> "$data/up.err" || { cat "$data/up.err" >&2; fail "up failed"; }
# `down` reads the stop timeout `up` was given from cluster.json.
grep -q '"stop_timeout_ms": 7000' "$data/cluster/cluster.json" || fail "up did not record its stop timeout"
grep -q "global endpoint  http://127.0.0.1:" "$data/up.out" || fail "up did not print the endpoint"
grep -q "API key          sc-demo-" "$data/up.out" || fail "up did not print the demo API key"
[[ $(stat -c %a "$data/cluster/demo-api-key") == 600 ]] || fail "the API key file is not 0600"

# A second `up` on the same data directory refuses while the first runs.
if "$binary" up --data-dir "$data" --global-listen 127.0.0.1:0 > /dev/null 2> "$data/again.err"; then
  fail "a second up started over a running cluster"
fi
grep -q "still running" "$data/again.err" || fail "the second up did not say why: $(cat "$data/again.err")"

"$binary" status --data-dir "$data" > "$data/status.out"
for region in us-east-1 us-east-2 us-west-2; do
  [[ $(grep -c "^$region .* worker .* ready .*serving" "$data/status.out") == 2 ]] \
    || { cat "$data/status.out"; fail "status does not show two ready workers in $region"; }
done
"$binary" status --data-dir "$data" --json | python3 -c '
import json, sys
status = json.load(sys.stdin)
roles = sorted(p["role"] for p in status["processes"])
assert roles.count("worker") == 6 and roles.count("router") == 3 and roles.count("global") == 1, roles
assert all(p["alive"] for p in status["processes"]), status'

"$binary" infer --data-dir "$data" --prompt "And God said" --max-tokens 12 > "$data/answer" 2> "$data/infer.err" \
  || { cat "$data/infer.err"; fail "infer failed"; }
grep -q "served by us-east-1/" "$data/infer.err" || { cat "$data/infer.err"; fail "not served by the nearest region"; }
[[ $(wc -c < "$data/answer") -gt 14 ]] || fail "no answer text"
# infer's HTTP client follows the client.* keys: a body limit below an attestation
# document's size fails the request, saying so; an unknown key is refused.
if "$binary" infer --data-dir "$data" --prompt "And God said" --set client.max_response_body_bytes=16 \
    > /dev/null 2> "$data/limited.err"; then
  fail "infer ignored --set client.max_response_body_bytes"
fi
grep -q "body limit exceeded" "$data/limited.err" || { cat "$data/limited.err"; fail "infer did not say why"; }
if "$binary" infer --data-dir "$data" --prompt "x" --set client.no_such_key=1 2> "$data/unknown.err"; then
  fail "infer accepted an unknown config key"
fi
grep -q "unknown key 'client.no_such_key'" "$data/unknown.err" || fail "infer did not name the unknown key"

# An operator drains us-east-1 through its region record (docs/data-plane.md): new requests
# go to the next region until the record accepts traffic again.
store="sqlite://$data/cluster/state.db"
set_accepting() {  # set_accepting True|False
  "$binary" store get /sc/v1/regions/us-east-1 --store "$store" | python3 -c '
import json, sys
record = json.load(sys.stdin)
record["accepting"] = sys.argv[1] == "True"
print(json.dumps(record))' "$1" > "$data/region.json"
  "$binary" store put /sc/v1/regions/us-east-1 "$(cat "$data/region.json")" --store "$store" > /dev/null
}
served_by_within() {  # served_by_within REGION: an answer from REGION within about 5 s
  for _ in $(seq 15); do
    "$binary" infer --data-dir "$data" --prompt "And God said" --max-tokens 2 > /dev/null \
      2> "$data/drain.err" && grep -q "served by $1/" "$data/drain.err" && return 0
    sleep 0.3
  done
  cat "$data/drain.err"
  return 1
}
set_accepting False
served_by_within us-east-2 || fail "a drained us-east-1 still got new requests"
set_accepting True
served_by_within us-east-1 || fail "us-east-1 got no requests after accepting again"

"$binary" down --data-dir "$data" --region us-east-1 --kill > /dev/null 2>&1
sleep 2
# infer refuses documents older than --max-age (600 s unless told): the workers' documents
# are now at least 2 s old (they are refreshed once a minute).
if "$binary" infer --data-dir "$data" --prompt "x" --max-age 1 > /dev/null 2> "$data/old.err"; then
  fail "infer sealed to documents older than --max-age 1"
fi
grep -q "more than max_age 1000 ms" "$data/old.err" || { cat "$data/old.err"; fail "infer did not say the documents were too old"; }
"$binary" infer --data-dir "$data" --prompt "And God said" --max-tokens 4 > /dev/null 2> "$data/infer2.err" \
  || { cat "$data/infer2.err"; fail "infer failed after losing us-east-1"; }
grep -q "served by us-east-2/" "$data/infer2.err" || { cat "$data/infer2.err"; fail "not failed over to us-east-2"; }
# The killed workers' records outlive them until their leases run out (10 s): status must
# not show them as serving meanwhile, and must still show the live ones so.
"$binary" status --data-dir "$data" > "$data/status2.out"
[[ $(grep -c "^us-east-1 .* worker .* down .*\(stale\|unregistered\)" "$data/status2.out") == 2 ]] \
  || { cat "$data/status2.out"; fail "status does not show us-east-1's killed workers as stale"; }
[[ $(grep -c "^us-east-2 .* worker .* ready .*serving" "$data/status2.out") == 2 ]] \
  || { cat "$data/status2.out"; fail "status does not show us-east-2's workers serving"; }
"$binary" status --data-dir "$data" --json | python3 -c '
import json, sys
workers = [p for p in json.load(sys.stdin)["processes"] if p["role"] == "worker"]
for p in workers:
    dead = p["region"] == "us-east-1"
    assert p["alive"] != dead, p
    assert p["stale_registration"] == (dead and p["state"] != "unregistered"), p'

pids=$(python3 -c 'import json,sys; print(" ".join(str(p["pid"]) for p in json.load(open(sys.argv[1]))["processes"]))' "$data/cluster/cluster.json")
"$binary" down --data-dir "$data" > /dev/null 2>&1 || fail "down failed"
for pid in $pids; do
  if kill -0 "$pid" 2>/dev/null && [[ $(readlink "/proc/$pid/exe") == *supercluster* ]]; then
    fail "process $pid is still running after down"
  fi
done
[[ ! -e "$data/cluster/cluster.json" ]] || fail "down left cluster.json behind"
"$binary" status --data-dir "$data" > /dev/null 2>&1 && fail "status succeeded with no cluster"
echo "PASS"
