# Sourced by the shell tests that run `supercluster worker` as a process. Defines
#   start_enclave_and_worker WORK BINARY ENCLAVE_BINARY MODEL [WORKER FLAGS...]
# which creates a dev CA in WORK/data, starts supercluster-enclave on WORK/enclave.sock,
# writes a SQLite store WORK/state.db holding tenant "open" (allowed plaintext), and starts
# the worker (instance id w1, a free loopback port, stdout WORK/worker.out, stderr
# WORK/worker.log) until it prints its serving line. It sets enclave_pid, worker_pid, socket,
# store and serving_line, and calls the caller's `fail` on any failure.
start_enclave_and_worker() {
  local work=$1 binary=$2 enclave_binary=$3 model=$4
  shift 4
  "$binary" dev-ca init --data-dir "$work/data" > /dev/null
  socket="$work/enclave.sock"
  "$enclave_binary" --data-dir "$work/data" --listen "unix://$socket" 2> "$work/enclave.log" &
  enclave_pid=$!
  for _ in $(seq 200); do [[ -S "$socket" ]] && break; sleep 0.05; done
  [[ -S "$socket" ]] || fail "the enclave did not start: $(cat "$work/enclave.log")"

  store="sqlite://$work/state.db"
  local tenant='{"schema":1,"kind":"Tenant","id":"open","display_name":"","api_key_hashes":[],"policy_id":"","requests_per_second":0,"max_concurrent_requests":0,"allowed_regions":[],"allow_plaintext":true}'
  "$binary" store put --store "$store" /sc/v1/tenants/open "$tenant" > /dev/null

  "$binary" worker --model "$model" --enclave "unix://$socket" --store "$store" \
    --listen 127.0.0.1:0 --instance-id w1 "$@" > "$work/worker.out" 2> "$work/worker.log" &
  worker_pid=$!
  for _ in $(seq 600); do
    grep -q "serving on" "$work/worker.out" 2>/dev/null && break
    kill -0 "$worker_pid" 2>/dev/null || fail "the worker exited"
    sleep 0.05
  done
  serving_line=$(grep "serving on" "$work/worker.out") || fail "no serving line"
}
