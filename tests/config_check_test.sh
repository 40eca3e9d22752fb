#!/usr/bin/env bash
# `supercluster config check` and `config show` as a user meets them: a bad file exits 1
# with one line naming file:line and the key, a good file exits 0 with "FILE: ok", usage
# mistakes exit 2, and the output of `config show` is itself a valid config file.
#
# usage: tests/config_check_test.sh PATH_TO_SUPERCLUSTER_BINARY
set -euo pipefail

binary=${1:?usage: config_check_test.sh PATH_TO_SUPERCLUSTER_BINARY}
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
failures=0

fail() {
  echo "config_check_test: FAIL: $*" >&2
  failures=$((failures + 1))
}

# expect_check FILE EXIT_STATUS EXPECTED_STDOUT EXPECTED_STDERR
expect_check() {
  local file=$1 want_status=$2 want_stdout=$3 want_stderr=$4 status=0
  "$binary" config check "$file" >"$scratch/stdout" 2>"$scratch/stderr" || status=$?
  [[ $status == "$want_status" ]] || fail "config check $file: exit $status, want $want_status"
  [[ $(cat "$scratch/stdout") == "$want_stdout" ]] ||
    fail "config check $file: stdout '$(cat "$scratch/stdout")', want '$want_stdout'"
  [[ $(cat "$scratch/stderr") == "$want_stderr" ]] ||
    fail "config check $file: stderr '$(cat "$scratch/stderr")', want '$want_stderr'"
}

cat >"$scratch/out_of_range.yaml" <<'YAML'
# limits for the edge servers
server:
  max_connections: 500
  max_body_bytes: 2GiB
YAML
expect_check "$scratch/out_of_range.yaml" 1 "" \
  "$scratch/out_of_range.yaml:4: key 'server.max_body_bytes': 2GiB is above the maximum 1GiB"

cat >"$scratch/misspelt.yaml" <<'YAML'
server:
  max_connections: 500
  max_bdy_bytes: 1MiB
YAML
expect_check "$scratch/misspelt.yaml" 1 "" \
  "$scratch/misspelt.yaml:3: unknown key 'server.max_bdy_bytes' (did you mean 'server.max_body_bytes'?)"

cat >"$scratch/good.yaml" <<'YAML'
log:
  format: json
server:
  max_body_bytes: 16MiB
  idle_timeout: 2m
YAML
expect_check "$scratch/good.yaml" 0 "$scratch/good.yaml: ok" ""

expect_check "$scratch/missing.yaml" 1 "" "$scratch/missing.yaml: no such file"

status=0
"$binary" config check >/dev/null 2>&1 || status=$?
[[ $status == 2 ]] || fail "config check without FILE: exit $status, want 2"
status=0
"$binary" config frobnicate >/dev/null 2>&1 || status=$?
[[ $status == 2 ]] || fail "config frobnicate: exit $status, want 2"

# `config show` applies the file, then --set; its output loads back to the same values.
"$binary" config show --config "$scratch/good.yaml" --set server.max_body_bytes=32MiB \
  --set 'serve.listen=[::1]:9000' >"$scratch/shown.yaml" || fail "config show failed"
grep -qxF 'server.max_body_bytes: 32MiB  # default 8MiB' "$scratch/shown.yaml" ||
  fail "config show did not apply --set over the file"
grep -qxF 'server.idle_timeout: 2m  # default 1m' "$scratch/shown.yaml" ||
  fail "config show did not apply the file"
expect_check "$scratch/shown.yaml" 0 "$scratch/shown.yaml: ok" ""
"$binary" config show --config "$scratch/shown.yaml" >"$scratch/shown_again.yaml" ||
  fail "config show --config of its own output failed"
diff -u "$scratch/shown.yaml" "$scratch/shown_again.yaml" >&2 ||
  fail "config show output does not load back to the same values"

status=0
"$binary" config show --set server.max_header_bytes=0 >/dev/null 2>"$scratch/stderr" || status=$?
[[ $status == 1 ]] || fail "config show with a bad --set: exit $status, want 1"
[[ $(cat "$scratch/stderr") == "--set: key 'server.max_header_bytes': 0 is below the minimum 1KiB" ]] ||
  fail "config show with a bad --set: stderr '$(cat "$scratch/stderr")'"

if ((failures > 0)); then
  echo "config_check_test: $failures check(s) failed" >&2
  exit 1
fi
echo "config_check_test: ok"
