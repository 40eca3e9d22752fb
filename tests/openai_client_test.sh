#!/usr/bin/env bash
# The official OpenAI client (npm `openai`, tests/oracles) unchanged against the
# OpenAI-compatible API: first `supercluster worker`'s, with a real enclave process, the
# bundled KJV model and a SQLite store holding one tenant allowed plaintext; then a whole
# local cluster's global endpoint (`supercluster up`) with the demo tenant's API key. Skips (exit 77) only when node or the npm
# package is absent; scripts/install-deps installs both.
# Usage: tests/openai_client_test.sh path/to/supercluster path/to/supercluster-enclave
set -euo pipefail
binary=$(realpath "$1")
enclave_binary=$(realpath "$2")
source_dir=$(cd "$(dirname "$0")/.." && pwd)
oracles="$source_dir/tests/oracles"
source "$source_dir/tests/lib/worker_process.sh"
if ! command -v node > /dev/null || [[ ! -f "$oracles/node_modules/openai/package.json" ]]; then
  echo "openai_client_test: SKIP: node or the npm openai package is missing (run scripts/install-deps)"
  exit 77
fi
work=$(mktemp -d)
enclave_pid=""
worker_pid=""
cleanup() {
  [[ -n "$worker_pid" ]] && kill -9 "$worker_pid" 2>/dev/null || true
  [[ -n "$enclave_pid" ]] && kill -9 "$enclave_pid" 2>/dev/null || true
  "$binary" down --data-dir "$work/cluster" --kill > /dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
fail() {
  echo "FAIL: $*" >&2
  [[ -f "$work/worker.log" ]] && tail -20 "$work/worker.log" >&2
  exit 1
}

start_enclave_and_worker "$work" "$binary" "$enclave_binary" "$source_dir/models/kjv/kjv.gguf"
url=$(sed -n 's/^worker w1 serving on //p' "$work/worker.out")
[[ -n "$url" ]] || fail "the worker did not say where it serves"

node "$oracles/openai_client.mjs" "$url/v1" || fail "the OpenAI client's checks failed"

kill -TERM "$worker_pid"
wait "$worker_pid" || fail "the worker exited non-zero after SIGTERM"
worker_pid=""
kill -TERM "$enclave_pid"
wait "$enclave_pid" || true
enclave_pid=""

"$binary" up --data-dir "$work/cluster" --workers-per-region 1 --global-listen 127.0.0.1:0 \
  > "$work/up.out" 2> "$work/up.err" || fail "supercluster up failed: $(tail -5 "$work/up.err")"
endpoint=$(sed -n 's/^  global endpoint  //p' "$work/up.out")
node "$oracles/openai_client.mjs" "$endpoint/v1" "$(cat "$work/cluster/cluster/demo-api-key")" \
  || fail "the OpenAI client's checks through the global endpoint failed"
"$binary" down --data-dir "$work/cluster" > /dev/null 2>&1 || fail "supercluster down failed"
echo "openai_client_test: ok"
