#!/usr/bin/env bash
# Integration test of `supercluster version`: the commit it names is the one the source tree
# is at, with "-dirty" exactly when tracked files differ from it (git itself is the oracle).
# A stale name (the header written once at configure time and never again) fails here
# after the next commit or edit. Outside a git checkout it must say "unknown".
# Usage: tests/version_test.sh path/to/supercluster SOURCE_DIR
set -euo pipefail
binary=$1
source_dir=$2
fail() { echo "FAIL: $*" >&2; exit 1; }

if revision=$(git -C "$source_dir" rev-parse --short HEAD 2>/dev/null); then
  if [[ -n "$(git -C "$source_dir" status --porcelain --untracked-files=no)" ]]; then
    revision+="-dirty"
  fi
else
  revision=unknown
fi
got=$("$binary" version --json | python3 -c 'import json, sys; print(json.load(sys.stdin)["git"])')
[[ "$got" == "$revision" ]] ||
  fail "supercluster version says $got, the tree is at $revision (rebuild; or the header is stale)"
"$binary" version | grep -q "^supercluster [0-9.]* ($revision), allocator " ||
  fail "text form: $("$binary" version)"
echo "version_test: OK ($revision)"
