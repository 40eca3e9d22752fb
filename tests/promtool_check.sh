#!/usr/bin/env bash
# Checks a file of Prometheus text exposition (what GET /metrics returns) with
# `promtool check metrics`: exits 0 only when promtool finds neither a format error nor a
# lint problem (counter without _total, missing HELP, non-base units, ...), otherwise
# prints promtool's findings and exits 1. Exits 77 (the usual "skipped" status) when
# promtool is not installed, 2 on bad usage.
#
# Usage: tests/promtool_check.sh FILE
set -euo pipefail

if [[ $# -ne 1 ]]; then
  echo "usage: $0 FILE" >&2
  exit 2
fi
file=$1
if [[ ! -r $file ]]; then
  echo "$0: cannot read '$file'" >&2
  exit 2
fi
if ! command -v promtool >/dev/null 2>&1; then
  echo "$0: promtool not found (Debian package 'prometheus')" >&2
  exit 77
fi

# promtool exits non-zero on problems, but lint findings are also printed; any output at
# all counts as a failure so that no warning slips through.
status=0
findings=$(promtool check metrics <"$file" 2>&1) || status=$?
if [[ $status -ne 0 || -n $findings ]]; then
  echo "promtool check metrics failed on '$file' (exit status $status):" >&2
  echo "$findings" >&2
  exit 1
fi
