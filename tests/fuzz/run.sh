#!/usr/bin/env bash
# Runs every libFuzzer target built in BUILD_DIR for SECONDS each (default 60), one after
# the other, and fails if any finds a crash, leak, timeout, sanitizer report or
# out-of-memory.
#
# Each target <name>_fuzz starts from a copy of its seed corpus tests/fuzz/corpus/<name>/
# in BUILD_DIR/fuzz-corpus/<name>/ (kept between runs, so what a run discovers is reused;
# the seeds in the tree are never written) and uses tests/fuzz/<name>.dict when present.
# A failing input is written to BUILD_DIR/fuzz-artifacts/<name>/; the script prints the
# command that reproduces it.
#
# Usage: tests/fuzz/run.sh BUILD_DIR [SECONDS]   (or `make fuzz FUZZ_SECONDS=N`, which
#        builds BUILD_DIR=build/fuzz first)
set -euo pipefail

if [[ $# -lt 1 || $# -gt 2 || "$1" == -h || "$1" == --help ]]; then
  sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
  exit 2
fi
build_dir=$(cd "$1" && pwd)
seconds=${2:-60}
[[ "$seconds" =~ ^[1-9][0-9]*$ ]] || { echo "fuzz: SECONDS must be a positive integer" >&2; exit 2; }
source_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

targets=(http_request http_response sse_parser attestation sealed_message gguf safetensors requested_model)

log() { echo "fuzz: $*" >&2; }

# Sanitizer reports must end the run (libFuzzer then saves the input as an artifact).
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1:symbolize=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:abort_on_error=1:print_stacktrace=1}

failed=()
for name in "${targets[@]}"; do
  binary="$build_dir/tests/fuzz/${name}_fuzz"
  [[ -x "$binary" ]] || { log "missing $binary (configure with -DSUPERCLUSTER_FUZZ=ON and build)"; exit 1; }
  corpus="$build_dir/fuzz-corpus/$name"
  artifacts="$build_dir/fuzz-artifacts/$name"
  mkdir -p "$corpus" "$artifacts"
  cp -n "$source_dir/corpus/$name"/* "$corpus"/ 2>/dev/null || true
  dict_args=()
  [[ -f "$source_dir/$name.dict" ]] && dict_args=("-dict=$source_dir/$name.dict")
  log_file="$build_dir/fuzz-$name.log"

  log "$name: ${seconds} s, corpus $corpus ($(find "$corpus" -type f | wc -l) inputs), log $log_file"
  status=0
  "$binary" "$corpus" "${dict_args[@]}" -max_total_time="$seconds" -timeout=5 \
    -rss_limit_mb=2048 -artifact_prefix="$artifacts/" -print_final_stats=1 \
    >"$log_file" 2>&1 || status=$?
  # The last status line: "#N DONE cov: ... ft: ... corp: ..." (or the last progress line).
  summary=$(grep -E '^#[0-9]+' "$log_file" | tail -n 1 || true)
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log_file")
  if [[ $status -eq 0 ]]; then
    log "$name: ok, ${runs:-?} runs; $summary"
  else
    failed+=("$name")
    log "$name: FAILED (exit $status); last lines of $log_file:"
    grep -E 'ERROR|SUMMARY|runtime error|Test unit written|_fuzz:' \
      "$log_file" | tail -n 15 >&2 || tail -n 30 "$log_file" >&2
    sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log_file" | while read -r artifact; do
      log "$name: reproduce with: $binary $artifact"
    done
  fi
done

if [[ ${#failed[@]} -gt 0 ]]; then
  log "FAIL: ${failed[*]}"
  exit 1
fi
log "all ${#targets[@]} targets ran ${seconds} s each without a finding"
