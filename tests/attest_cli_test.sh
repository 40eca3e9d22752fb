#!/usr/bin/env bash
# Integration test of `supercluster dev-ca init` and `supercluster attest verify`: creates a
# dev CA (and refuses to overwrite it), verifies a real AWS Nitro document from the shared
# test data as of its own timestamp (skipped when that data is absent), and checks that
# rejections exit 1 with the reason.
# Usage: tests/attest_cli_test.sh path/to/supercluster
set -euo pipefail
binary=$(realpath "$1")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

# dev-ca init writes the root and a private key only the owner can read.
"$binary" dev-ca init --data-dir "$work/data" > "$work/init.out" || fail "dev-ca init"
grep -Eq 'SHA-256 fingerprint: ([0-9A-F]{2}:){31}[0-9A-F]{2}$' "$work/init.out" \
  || fail "dev-ca init did not print the fingerprint: $(cat "$work/init.out")"
[[ -f "$work/data/dev-ca/root.pem" ]] || fail "no root.pem"
[[ "$(stat -c %a "$work/data/dev-ca/root.key")" == 600 ]] || fail "root.key is not mode 0600"
fingerprint=$(openssl x509 -in "$work/data/dev-ca/root.pem" -noout -fingerprint -sha256 | cut -d= -f2)
grep -q "$fingerprint" "$work/init.out" || fail "printed fingerprint differs from openssl's $fingerprint"

# A second init refuses to replace it; --force replaces it.
cp "$work/data/dev-ca/root.pem" "$work/first-root.pem"
set +e
"$binary" dev-ca init --data-dir "$work/data" > /dev/null 2> "$work/err"; code=$?
set -e
[[ $code -eq 1 ]] || fail "second dev-ca init exited $code, want 1"
grep -q 'already exists' "$work/err" || fail "refusal does not say why: $(cat "$work/err")"
cmp -s "$work/first-root.pem" "$work/data/dev-ca/root.pem" || fail "refused init changed the root"
"$binary" dev-ca init --data-dir "$work/data" --force > /dev/null || fail "dev-ca init --force"
cmp -s "$work/first-root.pem" "$work/data/dev-ca/root.pem" && fail "--force kept the old root"
# A dev CA with a file missing or empty is refused as incomplete, not as a CA that exists.
mkdir -p "$work/half/dev-ca"
: > "$work/half/dev-ca/root.pem"
set +e
"$binary" dev-ca init --data-dir "$work/half" > /dev/null 2> "$work/err"; code=$?
set -e
[[ $code -eq 1 ]] || fail "dev-ca init over an empty root.pem exited $code, want 1"
grep -q 'incomplete dev CA .*(root.key is missing, root.pem is empty); pass --force' "$work/err" \
  || fail "dev-ca init over an empty root.pem: $(cat "$work/err")"

# Bad usage exits 2.
echo "not cbor" > "$work/garbage"
set +e
"$binary" attest verify > /dev/null 2>&1; code=$?
set -e
[[ $code -eq 2 ]] || fail "attest verify without arguments exited $code, want 2"
# --at and --max-age past the system clock's range (2262) would overflow as milliseconds
# (--at 9223372036854775807 was checked as "unix time -1"); each is refused, naming the flag.
for flag in "--at 9223372036854775807" "--at 18446745869587516" "--at 9223372037" "--at -1" \
            "--max-age 18446744073709552" "--max-age 9223372037" "--max-age -1"; do
  set +e
  # shellcheck disable=SC2086  # $flag is a flag and its value
  "$binary" attest verify "$work/garbage" --root "$work/data/dev-ca/root.pem" $flag \
    > /dev/null 2> "$work/err"; code=$?
  set -e
  [[ $code -eq 2 ]] || fail "attest verify $flag exited $code, want 2: $(cat "$work/err")"
  grep -q -- "^supercluster attest verify: $flag: expected .* to 9223372036" \
    "$work/err" || fail "attest verify $flag: $(cat "$work/err")"
done

# A file that is not an attestation document is rejected as malformed.
set +e
"$binary" attest verify "$work/garbage" --root "$work/data/dev-ca/root.pem" > /dev/null 2> "$work/err"; code=$?
set -e
[[ $code -eq 1 ]] || fail "garbage exited $code, want 1"
grep -q 'attestation rejected (malformed)' "$work/err" || fail "garbage: $(cat "$work/err")"

# Runs a command that must fail with exit status 1 and a stderr line matching $1.
expect_failure() {
  local pattern=$1
  shift
  set +e
  "$@" > /dev/null 2> "$work/err"
  local code=$?
  set -e
  [[ $code -eq 1 ]] || fail "$* exited $code, want 1: $(cat "$work/err")"
  grep -q -- "$pattern" "$work/err" || fail "$*: stderr lacks '$pattern': $(cat "$work/err")"
}
# Files are read only so far (a path to /dev/zero must not fill memory): a document or a
# root past 64KiB is refused, naming the file; a directory is a directory, not an empty
# document. (The big file is sparse: it takes no disk.)
truncate -s 100M "$work/big"
expect_failure "$work/big: larger than 64KiB, which is no attestation document" \
  "$binary" attest verify "$work/big" --root "$work/data/dev-ca/root.pem"
expect_failure "$work/big: larger than 64KiB, which is no certificate" \
  "$binary" attest verify "$work/garbage" --root "$work/big"
expect_failure "$work/data: is a directory" \
  "$binary" attest verify "$work/data" --root "$work/data/dev-ca/root.pem"
expect_failure "$work/data: is a directory" \
  "$binary" attest verify "$work/garbage" --root "$work/data"
# The dev CA's private key given for its root is named as what it is.
expect_failure "root.key: a PEM private key, not a certificate" \
  "$binary" attest verify "$work/garbage" --root "$work/data/dev-ca/root.key"

testdata=${SUPERCLUSTER_TESTDATA:-$(dirname "$(realpath "$0")")/../../shared/testdata}
if [[ ! -f "$testdata/nitro/doc-2.cbor" ]]; then
  echo "SKIP: real Nitro documents: $testdata/nitro is absent (set SUPERCLUSTER_TESTDATA)"
  echo "PASS (partly skipped)"
  exit 0
fi
aws_root="$testdata/nitro/AWS_NitroEnclaves_Root-G1.pem"
doc="$testdata/nitro/doc-2.cbor"   # timestamp 1684358511808 ms, a debug-mode enclave

"$binary" attest verify "$doc" --root "$aws_root" --at 1684358512 --allow-debug > "$work/ok.out" \
  || fail "doc-2 as of its timestamp: $(cat "$work/ok.out")"
grep -q '^verdict:     accepted$' "$work/ok.out" || fail "no accepted verdict: $(cat "$work/ok.out")"
grep -q '^module_id:   i-09b153b9b6859a1de-enc01882b95cd0e8a90$' "$work/ok.out" || fail "module_id"
"$binary" attest verify "$doc" --root "$aws_root" --at 1684358512 --allow-debug --json \
  | python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["verdict"]=="accepted" and d["timestamp_ms"]==1684358511808 and not d["dev"] and len(d["pcrs"])==16, d' \
  || fail "--json output"

# Rejections: now (its certificates expired long ago), debug mode, the dev root.
check_rejected() {
  local want=$1; shift
  set +e
  "$binary" attest verify "$doc" "$@" > "$work/out" 2> "$work/err"; local code=$?
  set -e
  [[ $code -eq 1 ]] || fail "$*: exited $code, want 1"
  grep -q "attestation rejected ($want)" "$work/err" || fail "$*: want $want, got $(cat "$work/err")"
  grep -q '^verdict:     rejected$' "$work/out" || fail "$*: no rejected verdict"
}
check_rejected certificate_expired --root "$aws_root" --allow-debug
check_rejected debug_mode --root "$aws_root" --at 1684358512
check_rejected untrusted_root --root "$work/data/dev-ca/root.pem" --at 1684358512 --allow-debug
check_rejected nonce_mismatch --root "$aws_root" --at 1684358512 --allow-debug --nonce 00ff
# The latest --at is checked as itself, not as a wrapped-around time.
check_rejected certificate_expired --root "$aws_root" --allow-debug --at 9223372036
grep -q "checked at unix time 9223372036)" "$work/err" || fail "--at 9223372036: $(cat "$work/err")"
echo PASS
