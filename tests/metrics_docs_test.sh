#!/usr/bin/env bash
# Keeps the metrics table of docs/data-plane.md in step with src/metrics/names.h: every
# metric name defined there must be documented, and every name the table documents must
# still be defined.
#
# usage: tests/metrics_docs_test.sh
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
names_file="$root/src/metrics/names.h"
docs="$root/docs/data-plane.md"
fail() {
  echo "metrics_docs_test: $*" >&2
  exit 1
}

# The metric names: the string constants of names.h, less the label names (k...Label).
defined=$(grep -E '^inline constexpr char k[A-Za-z]+\[\] = *"' "$names_file" | grep -v 'Label\[\]' \
  | sed -E 's/.*= *"([^"]+)".*/\1/' | sort -u)
# Some constants are split over two lines: `kName[] =` then the string on the next line.
continued=$(grep -A1 -E '^inline constexpr char k[A-Za-z]+\[\] =$' "$names_file" \
  | grep -oE '"[a-z_:]+"' | tr -d '"' | sort -u)
defined=$(printf '%s\n%s\n' "$defined" "$continued" | grep -v '^$' | sort -u)
[[ $(wc -l <<< "$defined") -ge 20 ]] || fail "found only $(wc -l <<< "$defined") names in $names_file"

# The documented names: the backquoted names in the first column of the table's rows.
table=$(sed -n '/^## Metrics$/,/^## /p' "$docs" | grep -E '^\| `')
[[ -n $table ]] || fail "$docs has no metrics table under '## Metrics'"
documented=$(cut -d'|' -f2 <<< "$table" | grep -oE '`[a-z_:]+`' | tr -d '`' | sort -u)

missing=$(comm -23 <(echo "$defined") <(echo "$documented"))
[[ -z $missing ]] || fail "defined in names.h but not in the table of $docs: $missing"
stale=$(comm -13 <(echo "$defined") <(echo "$documented"))
[[ -z $stale ]] || fail "documented in $docs but not defined in names.h: $stale"
echo "metrics_docs_test: ok ($(wc -l <<< "$defined") names)"
