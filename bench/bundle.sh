#!/usr/bin/env bash
# Packs the router benchmarks' programs into one folder that runs on another x86-64 Linux
# machine which has none of them installed (the GPU machine some sessions are lent has 16
# cores but no nginx, HAProxy or wrk, and no way to install them): the supercluster binary,
# nginx, HAProxy, wrk and curl as built here, every library they load except glibc's own
# (the other machine's glibc must be this one's version or newer), and in bin/ one wrapper
# per program that runs it with those libraries (LD_LIBRARY_PATH set for that program
# alone, so the other machine's own tools keep their libraries).
#
# Usage: bench/bundle.sh OUT_DIR [path/to/supercluster]
#   (default build/release/apps/supercluster/supercluster; the copy is stripped, the
#   bundle is about 36 MiB; .bench-bundle in the repository root is git-ignored, for a
#   bundle that travels with the working tree). Then, on the other machine, from the
#   repository root:
#     source OUT_DIR/env.sh
#     bench/router/paired.sh "$SUPERCLUSTER" --pairs 40
#     bench/router/run.sh "$SUPERCLUSTER" --rounds 3 --duration 5
#   env.sh puts the wrappers first on PATH and sets NGINX_BINARY, HAPROXY_BINARY,
#   WRK_BINARY and SUPERCLUSTER. Both scripts also need python3, taskset and lscpu there.
#   With ANCHOR_SUPERCLUSTER=path/to/another/supercluster (another build, e.g. of the
#   parent commit) it comes along as supercluster-anchor, and env.sh sets
#   ANCHOR_ROUTER_BINARY to it, so that paired.sh there compares the two builds.
#   The micro-benchmarks built beside that supercluster (its build folder's
#   bench/router/balancer_bench and bench/metrics/histogram_bench) come along when they
#   exist, on PATH by those names: e.g. `balancer_bench --threads 1,2,4,8,16 --work 16000
#   --requests 100000`.
set -euo pipefail

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
bench_name=bench/bundle  # the prefix of its messages
# shellcheck source=lib.sh
source "$script_dir/lib.sh"
[[ $# -ge 1 && $# -le 2 ]] || usage
case "$1" in -h|--help) usage ;; esac
out=$1
supercluster=${2:-$script_dir/../build/release/apps/supercluster/supercluster}

[[ -x "$supercluster" ]] || die "not an executable: $supercluster (build it first: make build)"
programs=("$supercluster" /usr/sbin/nginx /usr/sbin/haproxy "$(command -v wrk || true)"
          "$(command -v curl || true)")
for program in "${programs[@]}"; do
  [[ -n "$program" && -x "$program" ]] ||
    die "a program is missing (scripts/install-deps installs nginx-light, haproxy, wrk, curl)"
done
command -v ldd >/dev/null || die "ldd not found"
anchor_supercluster=${ANCHOR_SUPERCLUSTER:-}
if [[ -n "$anchor_supercluster" ]]; then
  [[ -x "$anchor_supercluster" ]] || die "ANCHOR_SUPERCLUSTER is not an executable: $anchor_supercluster"
fi
build_dir=$(cd "$(dirname "$supercluster")/../.." && pwd)
for bench in "$build_dir/bench/router/balancer_bench" "$build_dir/bench/metrics/histogram_bench"; do
  [[ -x "$bench" ]] && programs+=("$bench")
done

rm -rf "$out"
mkdir -p "$out/real" "$out/lib" "$out/bin"
out=$(cd "$out" && pwd)
# bundle_program PATH NAME: PATH as real/NAME, the libraries it loads in lib/, and bin/NAME.
bundle_program() {
  local program=$1 name=$2
  cp "$program" "$out/real/$name"
  # Every library the dynamic loader found ("name => /path (address)"), glibc's excepted.
  ldd "$program" | awk '$2 == "=>" && $3 ~ /^\// {print $3}' |
    grep -vE '/(libc|libm|libpthread|libdl|librt|libresolv|libutil|libanl)\.so' |
    while read -r library; do cp -L "$library" "$out/lib/"; done
  cat >"$out/bin/$name" <<EOF
#!/bin/sh
# $name from $(uname -n), with the libraries it was built against (bench/bundle.sh).
d=\$(cd "\$(dirname "\$0")/.." && pwd)
LD_LIBRARY_PATH="\$d/lib" exec "\$d/real/$name" "\$@"
EOF
  chmod +x "$out/bin/$name"
}
for program in "${programs[@]}"; do bundle_program "$program" "$(basename "$program")"; done
if [[ -n "$anchor_supercluster" ]]; then
  bundle_program "$anchor_supercluster" supercluster-anchor
  if command -v strip >/dev/null; then strip "$out/real/supercluster-anchor"; fi
fi
if command -v strip >/dev/null; then strip "$out/real/$(basename "$supercluster")"; fi

cat >"$out/env.sh" <<EOF
# Sourced on the machine that runs the benchmarks (bench/bundle.sh).
bundle=\$(cd "\$(dirname "\${BASH_SOURCE[0]}")" && pwd)
export PATH="\$bundle/bin:\$PATH"
export NGINX_BINARY="\$bundle/bin/nginx" HAPROXY_BINARY="\$bundle/bin/haproxy"
export WRK_BINARY="\$bundle/bin/wrk" SUPERCLUSTER="\$bundle/bin/$(basename "$supercluster")"
EOF
if [[ -n "$anchor_supercluster" ]]; then
  echo "export ANCHOR_ROUTER_BINARY=\"\$bundle/bin/supercluster-anchor\"" >>"$out/env.sh"
fi
# Each program must run from the bundle here already (a library ldd did not list would
# show up on the other machine only).
for name in "$out"/bin/*; do
  case "$(basename "$name")" in
    nginx|haproxy) "$name" -v >/dev/null 2>&1 ;;
    wrk) [[ "$("$name" -v 2>&1 || true)" == wrk* ]] ;;  # prints its version, exits 1
    curl) "$name" --version >/dev/null ;;
    balancer_bench) "$name" --threads 1 --requests 10 --rounds 1 >/dev/null ;;
    histogram_bench) "$name" --observations 10 --threads 1 >/dev/null ;;
    *) "$name" version >/dev/null ;;
  esac || die "$(basename "$name") does not run from the bundle"
done
log "$(du -sh "$out" | cut -f1) in $out; on the other machine: source $out/env.sh"
