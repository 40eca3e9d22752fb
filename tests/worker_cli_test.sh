#!/usr/bin/env bash
# `supercluster worker` as a process: a real supercluster-enclave (dev CA), the bundled KJV
# model and a SQLite store in a temp dir. The worker must print its serving line, answer
# /readyz, /v1/attestation, /v1/models (for a tenant allowed plaintext) and a completion,
# register itself in the store with its attestation, and on SIGTERM drain, deregister and
# exit 0.
# Usage: tests/worker_cli_test.sh path/to/supercluster path/to/supercluster-enclave
set -euo pipefail
binary=$(realpath "$1")
enclave_binary=$(realpath "$2")
source_dir=$(cd "$(dirname "$0")/.." && pwd)
source "$source_dir/tests/lib/worker_process.sh"
model="$source_dir/models/kjv/kjv.gguf"
work=$(mktemp -d)
enclave_pid=""
worker_pid=""
cleanup() {
  [[ -n "$worker_pid" ]] && kill -9 "$worker_pid" 2>/dev/null || true
  [[ -n "$enclave_pid" ]] && kill -9 "$enclave_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
fail() {
  echo "FAIL: $*" >&2
  [[ -f "$work/worker.log" ]] && tail -20 "$work/worker.log" >&2
  exit 1
}

# Bad usage exits 2; an enclave that is not there exits 1 and says where it looked.
set +e
"$binary" worker --model "$model" > /dev/null 2>&1; code=$?
[[ $code -eq 2 ]] || fail "worker without --enclave exited $code, want 2"
"$binary" worker --model "$model" --enclave tcp://x > /dev/null 2>&1; code=$?
[[ $code -eq 2 ]] || fail "worker --enclave tcp://x exited $code, want 2"
"$binary" worker --model "$model" --enclave "unix://$work/absent.sock" > /dev/null 2> "$work/err"
code=$?
set -e
[[ $code -eq 1 ]] || fail "worker with no enclave exited $code, want 1"
grep -q "absent.sock" "$work/err" || fail "the refusal does not name the enclave: $(cat "$work/err")"

# No queue (engine.max_queued=0): the engine still runs engine.max_running requests at once.
start_enclave_and_worker "$work" "$binary" "$enclave_binary" "$model" --region test-1 \
  --log-format json --set engine.max_queued=0 --set engine.max_running=4
line=$serving_line
[[ "$line" =~ ^worker\ w1\ serving\ on\ (http://127\.0\.0\.1:[0-9]+)$ ]] || fail "serving line: $line"
url=${BASH_REMATCH[1]}
grep -q "loaded in" "$work/worker.log" || fail "the model load time is not logged"

[[ "$(curl -sf "$url/readyz")" == "ready" ]] || fail "/readyz"
curl -sf "$url/v1/attestation" > "$work/attestation.json" || fail "/v1/attestation"
python3 - "$work/attestation.json" <<'PY' || fail "/v1/attestation body"
import base64, json, sys
body = json.load(open(sys.argv[1]))
assert body["instance"] == "w1" and body["region"] == "test-1" and body["model"] == "kjv", body
assert len(base64.b64decode(body["document"])) > 100
PY
models=$(curl -sf -H "X-Supercluster-Tenant: open" "$url/v1/models") || fail "/v1/models"
[[ "$models" == *'"id":"kjv"'* ]] || fail "/v1/models: $models"
code=$(curl -s -o /dev/null -w '%{http_code}' "$url/v1/models")
[[ "$code" == 403 ]] || fail "/v1/models without a tenant answered $code, want 403"
answer=$(curl -sf -H "X-Supercluster-Tenant: open" -H "Content-Type: application/json" \
  -d '{"model":"kjv","prompt":"And God said","max_tokens":5,"temperature":0}' \
  "$url/v1/completions") || fail "/v1/completions"
[[ "$answer" == *'"completion_tokens":5'* ]] || fail "/v1/completions: $answer"
curl -sf "$url/metrics" > "$work/metrics.txt" || fail "/metrics"
grep -q '^gpu_cluster_model_load_time_seconds_count 1' "$work/metrics.txt" \
  || fail "/metrics lacks the model load time"
grep -q '^gpu_cluster_inference_latency_seconds_count 1' "$work/metrics.txt" \
  || fail "/metrics lacks the completion's latency"
# A burst of as many requests as there are batch slots: none may be refused for want of a
# queue place (each was counted against the queue on its way to a free slot).
burst=()
for i in 1 2 3 4; do
  curl -s -o /dev/null -w '%{http_code}\n' -H "X-Supercluster-Tenant: open" \
    -d '{"model":"kjv","prompt":"And God said","max_tokens":20}' "$url/v1/completions" \
    > "$work/burst.$i" &
  burst+=($!)
done
wait "${burst[@]}"
codes=$(cat "$work"/burst.* | sort | uniq -c | tr -s ' ')
[[ "$(cat "$work"/burst.* | sort -u)" == 200 ]] || fail "a burst of 4 to 4 free slots: $codes"
promtool check metrics < "$work/metrics.txt" || fail "promtool rejects the worker's /metrics"

record=$("$binary" store get --store "$store" /sc/v1/instances/test-1/w1) || fail "no registration"
[[ "$record" == *'"state":"serving"'* && "$record" == *"\"address\":\"$url\""* ]] \
  || fail "registration: $record"
[[ "$record" =~ \"attestation_b64\":\"[A-Za-z0-9+/=]{100,}\" ]] || fail "no attestation: $record"

kill -TERM "$worker_pid"
wait "$worker_pid" || fail "the worker exited non-zero after SIGTERM"
worker_pid=""
if "$binary" store get --store "$store" /sc/v1/instances/test-1/w1 > /dev/null 2>&1; then
  fail "the registration outlived the drain"
fi
grep -q "draining" "$work/worker.log" || fail "the worker did not say it drained"

kill -TERM "$enclave_pid"
wait "$enclave_pid" || true
enclave_pid=""
echo "worker_cli_test: ok"
