#!/usr/bin/env bash
# The confidential request path from the command line, against a real supercluster-enclave
# with a dev CA: attest with a nonce, seal a message to the verified enclave, let the enclave
# open it and seal a 3-chunk answer, open the answer. Then the refusals, each with its
# reason: a replayed request, a truncated answer, a tampered answer, a policy the enclave's
# measurements do not meet, a tampered wipe receipt, and any request after the wipe.
# Usage: tests/sealed_cli_test.sh path/to/supercluster path/to/supercluster-enclave
set -euo pipefail
binary=$(realpath "$1")
enclave_binary=$(realpath "$2")
work=$(mktemp -d)
enclave_pid=""
cleanup() {
  [[ -n "$enclave_pid" ]] && kill -9 "$enclave_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
# Runs a command that must fail with exit status 1 and a stderr line matching $1.
expect_refusal() {
  local pattern=$1
  shift
  set +e
  "$@" > "$work/out" 2> "$work/err"
  local code=$?
  set -e
  [[ $code -eq 1 ]] || fail "$* exited $code, want 1: $(cat "$work/err")"
  grep -q -- "$pattern" "$work/err" || fail "$*: stderr lacks '$pattern': $(cat "$work/err")"
}

data="$work/data"
"$binary" dev-ca init --data-dir "$data" > /dev/null
socket="$work/enclave.sock"
"$enclave_binary" --data-dir "$data" --listen "unix://$socket" --log-format json \
  2> "$work/enclave.log" &
enclave_pid=$!
for _ in $(seq 200); do [[ -S "$socket" ]] && break; sleep 0.05; done
[[ -S "$socket" ]] || { cat "$work/enclave.log" >&2; fail "the enclave did not start"; }
enclave=(--enclave "unix://$socket")
root=(--root "$data/dev-ca/root.pem")

# Attest with a fresh nonce; the document must verify with that nonce and no other.
nonce=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
"$binary" enclave attest "${enclave[@]}" --nonce "$nonce" --out "$work/doc.cbor"
"$binary" attest verify "$work/doc.cbor" "${root[@]}" --nonce "$nonce" > /dev/null \
  || fail "the enclave's document did not verify"
expect_refusal nonce_mismatch "$binary" attest verify "$work/doc.cbor" "${root[@]}" --nonce 00ff

# The enclave measures its own binary into PCR0: pinning it passes, pinning another fails.
pcr0=$(sha384sum "$enclave_binary" | cut -d' ' -f1)
"$binary" seal --attestation "$work/doc.cbor" "${root[@]}" --pcr "0=$pcr0" \
  --message "Who was the father of Methuselah?" --out "$work/request" --keep "$work/keep"
[[ "$(stat -c %a "$work/keep")" == 600 ]] || fail "the response secrets file is not mode 0600"
grep -q Methuselah "$work/request" && fail "the sealed request contains the plaintext"
expect_refusal "no candidate enclave was accepted" "$binary" seal --attestation "$work/doc.cbor" \
  "${root[@]}" --pcr "0=$(printf '0%.0s' $(seq 96))" --message x --out "$work/r2" --keep "$work/k2"
grep -q pcr_mismatch "$work/err" || fail "the PCR refusal does not say pcr_mismatch"

# --out and --keep naming one file (the same path, another path to it, a hard link, or
# standard output sent to it) are refused before anything is written: the envelope written
# over the secrets would leave an answer nothing opens.
expect_same_file_refused() {
  set +e
  "$@" > "$work/out" 2> "$work/err"
  local code=$?
  set -e
  [[ $code -eq 2 ]] || fail "$* exited $code, want 2: $(cat "$work/err")"
  grep -q -- "--out and --keep name the same file" "$work/err" \
    || fail "$*: stderr does not say why: $(cat "$work/err")"
}
seal_hi=("$binary" seal --attestation "$work/doc.cbor" "${root[@]}" --message hi)
expect_same_file_refused "${seal_hi[@]}" --out "$work/both" --keep "$work/both"
[[ -e "$work/both" ]] && fail "the refused seal wrote $work/both"
expect_same_file_refused "${seal_hi[@]}" --out "$work/both" --keep "$work/data/../both"
ln -s both "$work/link-to-both"
expect_same_file_refused "${seal_hi[@]}" --out "$work/link-to-both" --keep "$work/both"
cp "$work/keep" "$work/keep-copy"
ln "$work/keep-copy" "$work/hard-link"
expect_same_file_refused "${seal_hi[@]}" --out "$work/hard-link" --keep "$work/keep-copy"
cmp -s "$work/keep" "$work/keep-copy" || fail "a refused seal changed the secrets"
expect_same_file_refused sh -c '"$@" --out - --keep "$0" > "$0"' "$work/keep-copy" "${seal_hi[@]}"

# Inputs are read only so far (a path to /dev/zero must not fill memory): the plaintext and a
# sealed request up to --max-in-bytes (default 4MiB), an attestation document up to 64KiB; a
# directory is a directory. (The big file is sparse: it takes no disk.)
truncate -s 5M "$work/five-mib"
expect_refusal "$work/five-mib: larger than 4MiB, the limit --max-in-bytes sets" \
  "$binary" seal --attestation "$work/doc.cbor" "${root[@]}" --in "$work/five-mib" \
  --out "$work/r3" --keep "$work/k3"
"$binary" seal --attestation "$work/doc.cbor" "${root[@]}" --in "$work/five-mib" \
  --max-in-bytes 6MiB --out "$work/r3" --keep "$work/k3" 2> /dev/null \
  || fail "seal --max-in-bytes 6MiB refused a 5MiB plaintext"
expect_refusal "$work/five-mib: larger than 64KiB, which is no attestation document" \
  "$binary" seal --attestation "$work/five-mib" "${root[@]}" --message x --out "$work/r3" \
  --keep "$work/k3"
expect_refusal "$work/data: is a directory" "$binary" seal --attestation "$work/data" \
  "${root[@]}" --message x --out "$work/r3" --keep "$work/k3"
expect_refusal "$work/five-mib: larger than 4MiB, the limit --max-in-bytes sets" \
  "$binary" enclave open "${enclave[@]}" --in "$work/five-mib" --reply x --out "$work/a3"

# The enclave opens it (acting as the worker) and seals a 3-chunk answer; the client opens it.
"$binary" enclave open "${enclave[@]}" --in "$work/request" \
  --reply "And Enoch lived sixty and five years, and begat Methuselah." --chunks 3 \
  --out "$work/answer" 2> "$work/opened"
grep -q "Who was the father of Methuselah?" "$work/opened" || fail "the enclave did not open it"
[[ "$("$binary" open --keep "$work/keep" --in "$work/answer")" == \
   "And Enoch lived sixty and five years, and begat Methuselah." ]] || fail "answer changed"
# Through a pipe too.
[[ "$(cat "$work/answer" | "$binary" open --keep "$work/keep")" == *Methuselah. ]] \
  || fail "open from stdin"

# Refusals.
expect_refusal replayed "$binary" enclave open "${enclave[@]}" --in "$work/request" \
  --reply x --out "$work/again"
size=$(stat -c %s "$work/answer")
head -c $((size - 5)) "$work/answer" > "$work/truncated"
expect_refusal "failed to open\\|truncated" "$binary" open --keep "$work/keep" --in "$work/truncated"
head -c 30 "$work/answer" > "$work/cut"
expect_refusal truncated "$binary" open --keep "$work/keep" --in "$work/cut"
# A stream that cannot be read is an error, not an empty (truncated) stream; the secrets
# file is read only so far.
expect_refusal "$work/data: is a directory" "$binary" open --keep "$work/keep" --in "$work/data"
expect_refusal "$work/data: is a directory" "$binary" open --keep "$work/data" --in "$work/answer"
expect_refusal "standard input: cannot read: Is a directory" \
  sh -c '"$0" open --keep "$1" < "$2"' "$binary" "$work/keep" "$work/data"
expect_refusal "$work/five-mib: larger than 1MiB, which is no response-secrets file" \
  "$binary" open --keep "$work/five-mib" --in "$work/answer"
# Flip bits of byte 40 (writing a fixed value would change nothing when the byte already
# held it: one run in 256).
python3 -c 'import sys; b = bytearray(open(sys.argv[1], "rb").read()); b[40] ^= 0x55; open(sys.argv[2], "wb").write(b)' \
  "$work/answer" "$work/tampered"
expect_refusal "failed to open" "$binary" open --keep "$work/keep" --in "$work/tampered"

# The wipe: the receipt verifies against the key in the attestation; a tampered one does
# not; nothing is served after it.
"$binary" seal --attestation "$work/doc.cbor" "${root[@]}" --message late \
  --out "$work/late" --keep "$work/late-keep" 2> /dev/null
"$binary" enclave wipe "${enclave[@]}" --out "$work/receipt"
"$binary" enclave verify-receipt --receipt "$work/receipt" --attestation "$work/doc.cbor" \
  "${root[@]}" | grep -q "wipe receipt verified" || fail "the receipt did not verify"
python3 -c 'import sys; b = bytearray(open(sys.argv[1], "rb").read()); b[60] ^= 0x01; open(sys.argv[2], "wb").write(b)' \
  "$work/receipt" "$work/forged"
expect_refusal "wipe receipt" "$binary" enclave verify-receipt --receipt "$work/forged" \
  --attestation "$work/doc.cbor" "${root[@]}"
expect_refusal "$work/five-mib: larger than 64KiB, which is no wipe receipt" \
  "$binary" enclave verify-receipt --receipt "$work/five-mib" --attestation "$work/doc.cbor" \
  "${root[@]}"
expect_refusal wiped "$binary" enclave open "${enclave[@]}" --in "$work/late" --reply x \
  --out "$work/never"
expect_refusal wiped "$binary" enclave attest "${enclave[@]}" --out "$work/never"

# Bad usage exits 2.
set +e
"$binary" seal --message x > /dev/null 2>&1; code=$?
[[ $code -eq 2 ]] || fail "seal without --attestation exited $code, want 2"
"$binary" enclave open --in x --reply y --out z --chunks 0 > /dev/null 2>&1; code=$?
[[ $code -eq 2 ]] || fail "enclave open --chunks 0 exited $code, want 2"
"$binary" seal --attestation x --root y --message x --out z --keep k --max-in-bytes 1GiB \
  > /dev/null 2>&1; code=$?
[[ $code -eq 2 ]] || fail "seal --max-in-bytes 1GiB exited $code, want 2"
set -e

kill -TERM "$enclave_pid"
wait "$enclave_pid" || fail "the enclave exited non-zero on SIGTERM"
enclave_pid=""
echo "sealed_cli_test: ok"
