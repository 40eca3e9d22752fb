#!/usr/bin/env bash
# Keeps docs/configuration.md in step with the built-in config schema: fails, showing a
# diff, unless the key table between the GENERATED markers is exactly what
# `supercluster config schema --markdown` prints.
#
# usage: tests/config_docs_test.sh PATH_TO_SUPERCLUSTER_BINARY
set -euo pipefail

binary=${1:?usage: config_docs_test.sh PATH_TO_SUPERCLUSTER_BINARY}
docs="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/docs/configuration.md"
begin='<!-- BEGIN GENERATED: supercluster config schema --markdown -->'
end='<!-- END GENERATED -->'

fail() {
  echo "config_docs_test: $*" >&2
  exit 1
}

[[ -f $docs ]] || fail "$docs does not exist"
[[ $(grep -cxF -- "$begin" "$docs") == 1 ]] || fail "$docs must hold the line '$begin' once"
[[ $(grep -cxF -- "$end" "$docs") == 1 ]] || fail "$docs must hold the line '$end' once"
begin_line=$(grep -nxF -- "$begin" "$docs" | cut -d: -f1)
end_line=$(grep -nxF -- "$end" "$docs" | cut -d: -f1)
((begin_line < end_line)) || fail "in $docs the END marker comes before the BEGIN marker"

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
sed -n "$((begin_line + 1)),$((end_line - 1))p" "$docs" >"$scratch/documented.md"
"$binary" config schema --markdown >"$scratch/generated.md" ||
  fail "'$binary config schema --markdown' failed"

if ! diff -u --label "docs/configuration.md (between the markers)" \
    --label "supercluster config schema --markdown" \
    "$scratch/documented.md" "$scratch/generated.md"; then
  fail "docs/configuration.md is out of date: replace the lines between the markers with" \
    "the output of 'supercluster config schema --markdown'"
fi
echo "config_docs_test: ok"
