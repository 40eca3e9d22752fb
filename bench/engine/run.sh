#!/usr/bin/env bash
# Inference engine benchmark: prefill and decode tokens/s (batch 1 and batch N) and memory
# of Supercluster's engine (bench/engine/engine_bench.cc) next to llama.cpp on the same GGUF
# file with the same thread count, in the same run (bench/engine/llama_anchor.mjs: npm
# node-llama-cpp's prebuilt CPU binaries). The models are the synthesized TinyLlama-shaped
# 1.1B random-weight GGUF files in F16 and Q8_0 (`supercluster model synth --shape 1b`),
# written to MODELS_DIR when missing (about 2.2 GB + 1.2 GB of disk, a minute or so).
#
# Each round runs, per model type, engine_bench and the anchor one after the other (the
# order alternating between rounds), each as a fresh process; the table shows the median
# of the rounds and the ratio engine / llama.cpp. Prints the machine line and warns when
# other work used the CPU during the run; writes the results as JSON to
# OUT_DIR/engine-<time>.json.
#
# Builds nothing and downloads nothing: BUILD_DIR must hold bench/engine/engine_bench and
# apps/supercluster/supercluster (`make build`), and bench/anchors/node_modules must hold
# node-llama-cpp (`scripts/install-deps --bench`).
#
# Usage: bench/engine/run.sh BUILD_DIR [--threads N] [--rounds N] [--types "f16 q8_0"]
#          [--prompt-tokens 128] [--decode-tokens 64] [--batch 8]
#   --threads defaults to the machine's core count. Environment: OUT_DIR (default
#   build/bench), MODELS_DIR (default build/bench/models).
set -euo pipefail

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
bench_name=bench/engine  # the prefix of its messages
# shellcheck source=../lib.sh
source "$script_dir/../lib.sh"
repo_root=$(cd "$script_dir/../.." && pwd)

[[ $# -ge 1 ]] || usage
case "$1" in -h|--help) usage ;; esac
build_dir=$1
shift
threads=$(nproc)
rounds=3
types="f16 q8_0"
prompt_tokens=128
decode_tokens=64
batch=8
while [[ $# -gt 0 ]]; do
  case "$1" in
    --threads) threads=${2:?--threads needs a value}; shift 2 ;;
    --rounds) rounds=${2:?--rounds needs a value}; shift 2 ;;
    --types) types=${2:?--types needs a value}; shift 2 ;;
    --prompt-tokens) prompt_tokens=${2:?--prompt-tokens needs a value}; shift 2 ;;
    --decode-tokens) decode_tokens=${2:?--decode-tokens needs a value}; shift 2 ;;
    --batch) batch=${2:?--batch needs a value}; shift 2 ;;
    -h|--help) usage ;;
    *) echo "run.sh: unknown argument: $1" >&2; usage ;;
  esac
done

bench=$build_dir/bench/engine/engine_bench
cli=$build_dir/apps/supercluster/supercluster
anchor=$script_dir/llama_anchor.mjs
[[ -x "$bench" ]] || die "not an executable: $bench (build it first: make build)"
[[ -x "$cli" ]] || die "not an executable: $cli (build it first: make build)"
command -v node >/dev/null || die "node not found (scripts/install-deps installs nodejs)"
command -v python3 >/dev/null || die "python3 not found (scripts/install-deps installs it)"
[[ -f "$repo_root/bench/anchors/node_modules/node-llama-cpp/package.json" ]] ||
  die "the llama.cpp anchor is not installed: run scripts/install-deps --bench" \
      "(npm ci --prefix bench/anchors)"
for n in "$threads" "$rounds" "$prompt_tokens" "$decode_tokens" "$batch"; do
  [[ "$n" =~ ^[1-9][0-9]*$ ]] || die "--threads, --rounds, --prompt-tokens, --decode-tokens" \
    "and --batch take positive integers (got '$n')"
done
for type in $types; do
  case "$type" in f16|q8_0|f32|bf16|q4_0) ;; *) die "unknown model type '$type'" ;; esac
done

# --- models ----------------------------------------------------------------------------
models_dir=${MODELS_DIR:-$repo_root/build/bench/models}
mkdir -p "$models_dir"
for type in $types; do
  model=$models_dir/synth-1b-$type.gguf
  [[ -f "$model" ]] && continue
  log "synthesizing $model (1b shape, $type; written once, reused by later runs)"
  "$cli" model synth --shape 1b --type "$type" --out "$model.tmp" ||
    { rm -f "$model.tmp"; die "supercluster model synth failed for $type"; }
  mv "$model.tmp" "$model"
done

# --- machine description ---------------------------------------------------------------
cpu_model=$(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -n 1)
cores=$(nproc)
kernel=$(uname -sr)
memory=$(awk '/^MemTotal:/ {printf "%.0f GiB RAM", $2 / 1048576}' /proc/meminfo)
run_date=$(date -u +%Y-%m-%dT%H:%M:%SZ)
git_revision=$(git_revision_of "$repo_root")
node_version=$(node --version)
machine="${cpu_model:-unknown CPU}, $cores cores, $memory, $kernel, node $node_version, $run_date, git $git_revision"

# --- measure and report ----------------------------------------------------------------
out_dir=${OUT_DIR:-$repo_root/build/bench}
mkdir -p "$out_dir"
json_file="$out_dir/engine-$(date -u +%Y%m%dT%H%M%SZ).json"
log "$rounds rounds of engine_bench and llama.cpp, types: $types, $threads threads," \
  "prompt $prompt_tokens, decode $decode_tokens, batch $batch"
export bench anchor models_dir types threads rounds prompt_tokens decode_tokens batch machine \
  json_file
python3 - <<'EOF'
import json, os, statistics, subprocess, sys, time

env = os.environ
types = env["types"].split()
threads, rounds = int(env["threads"]), int(env["rounds"])
batch = int(env["batch"])
common = ["--threads", str(threads), "--prompt-tokens", env["prompt_tokens"],
          "--decode-tokens", env["decode_tokens"], "--batch", str(batch)]
clock_ticks = os.sysconf("SC_CLK_TCK")

def machine_busy_seconds():
    with open("/proc/stat") as f:
        fields = f.readline().split()
    # user nice system idle iowait irq softirq steal
    return sum(int(fields[i]) for i in (1, 2, 3, 6, 7, 8)) / clock_ticks

def run(name, command):
    """Runs one measurement process; returns its JSON and how busy the rest of the machine was."""
    busy_before, start = machine_busy_seconds(), time.monotonic()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    stdout, stderr = process.stdout.read(), process.stderr.read()
    wall = time.monotonic() - start
    other = max(0.0, machine_busy_seconds() - busy_before - usage.ru_utime - usage.ru_stime) / wall
    if os.waitstatus_to_exitcode(status) != 0:
        sys.stderr.write(stderr.decode(errors="replace"))
        sys.exit(f"bench/engine: FAIL: {name} exited with status {os.waitstatus_to_exitcode(status)}")
    result = json.loads(stdout.decode().strip().splitlines()[-1])
    result["wall_seconds"] = wall
    result["own_cpu_cores"] = (usage.ru_utime + usage.ru_stime) / wall
    result["other_cpu_cores"] = other
    print(f"bench/engine: {name}: {wall:.0f} s, prefill {result['prefill_tokens_per_second']:.2f}, "
          f"decode b1 {result['decode_batch1_tokens_per_second']:.2f}, "
          f"b{batch} {result['decode_batchN_tokens_per_second']:.2f} tokens/s; "
          f"other work {other:.2f} cores", file=sys.stderr, flush=True)
    return result

runs = {t: {"engine": [], "llama.cpp": []} for t in types}
for round_index in range(rounds):
    for t in types:
        model = os.path.join(env["models_dir"], f"synth-1b-{t}.gguf")
        order = ["engine", "llama.cpp"] if round_index % 2 == 0 else ["llama.cpp", "engine"]
        for side in order:
            command = ([env["bench"], "--model", model] + common if side == "engine"
                       else ["node", env["anchor"], "--model", model] + common)
            runs[t][side].append(run(f"round {round_index + 1} {t} {side}", command))

measures = (("prefill_tokens_per_second", f"prefill {env['prompt_tokens']} tokens"),
            ("decode_batch1_tokens_per_second", "decode, batch 1"),
            ("decode_batchN_tokens_per_second", f"decode, batch {batch} (total)"))
summary = {}
engine_path = runs[types[0]]["engine"][0]["kernel_path"]
llama_info = runs[types[0]]["llama.cpp"][0]["system_info"].strip().rstrip("|").strip()
print()
print("Inference engine vs llama.cpp (node-llama-cpp 3.22.1), same GGUF, same threads")
print(f"machine:  {env['machine']}")
print(f"setup:    {threads} threads; synthesized 1.1B TinyLlama-shape model; greedy; "
      f"median of {rounds} rounds, engine and llama.cpp alternating; engine kernels: "
      f"{engine_path}; llama.cpp: {llama_info}")
print()
header = ("type", "measure", "engine tokens/s", "llama.cpp tokens/s", "ratio")
print("| " + " | ".join(header) + " |")
print("|" + "|".join("-" * (len(h) + 2) for h in header) + "|")
for t in types:
    summary[t] = {}
    for key, label in measures:
        e = statistics.median(r[key] for r in runs[t]["engine"])
        a = statistics.median(r[key] for r in runs[t]["llama.cpp"])
        summary[t][key] = {"engine": e, "llama.cpp": a, "ratio": e / a}
        print(f"| {t} | {label} | {e:.2f} | {a:.2f} | {e / a:.2f} |")
# On a shared machine a round can be disturbed on one side only. The ratios of the rounds
# in which neither side saw other work (< 0.15 core) are the like-for-like ones.
quiet_limit = 0.15
quiet_rows = []
for t in types:
    quiet = [i for i in range(rounds)
             if max(runs[t]["engine"][i]["other_cpu_cores"],
                    runs[t]["llama.cpp"][i]["other_cpu_cores"]) < quiet_limit]
    summary[t]["quiet_rounds"] = [i + 1 for i in quiet]
    for key, label in measures:
        if not quiet:
            continue
        e = statistics.median(runs[t]["engine"][i][key] for i in quiet)
        a = statistics.median(runs[t]["llama.cpp"][i][key] for i in quiet)
        ratio = statistics.median(runs[t]["engine"][i][key] / runs[t]["llama.cpp"][i][key]
                                  for i in quiet)
        summary[t][key]["quiet"] = {"engine": e, "llama.cpp": a, "ratio": ratio}
        quiet_rows.append(f"| {t} | {label} | {len(quiet)} | {e:.2f} | {a:.2f} | {ratio:.2f} |")
if any(r["other_cpu_cores"] >= quiet_limit for t in types for side in runs[t].values()
       for r in side):
    print()
    print(f"Only the rounds in which other work used < {quiet_limit} core during both runs "
          "(ratio: median of those rounds' ratios):")
    print()
    print("| type | measure | quiet rounds | engine tokens/s | llama.cpp tokens/s | ratio |")
    print("|------|---------|--------------|-----------------|--------------------|-------|")
    for row in quiet_rows:
        print(row)
    if not quiet_rows:
        print("| (none) | | 0 | | | |")
print()
mib = lambda b: f"{b / 2**20:.0f} MiB"
header = ("type", "model file", "engine peak RSS", "llama.cpp peak RSS", "engine anon RSS",
          "llama.cpp anon RSS", "engine KV written", "engine overhead", "overhead / model")
print("| " + " | ".join(header) + " |")
print("|" + "|".join("-" * (len(h) + 2) for h in header) + "|")
for t in types:
    em = [r["memory"] for r in runs[t]["engine"]]
    am = [r["memory"] for r in runs[t]["llama.cpp"]]
    med = lambda rows, k: statistics.median(m[k] for m in rows)
    overhead = med(em, "overhead_bytes")
    fraction = overhead / em[0]["model_file_bytes"]
    summary[t]["memory"] = {"engine_peak_rss_bytes": med(em, "peak_rss_bytes"),
                            "llama_cpp_peak_rss_bytes": med(am, "peak_rss_bytes"),
                            "engine_overhead_bytes": overhead,
                            "engine_overhead_fraction_of_model": fraction}
    print(f"| {t} | {mib(em[0]['model_file_bytes'])} | {mib(med(em, 'peak_rss_bytes'))} | "
          f"{mib(med(am, 'peak_rss_bytes'))} | {mib(med(em, 'rss_anon_bytes'))} | "
          f"{mib(med(am, 'rss_anon_bytes'))} | {mib(med(em, 'kv_cache_written_bytes'))} | "
          f"{mib(overhead)} | {100 * fraction:.1f}% |")
print()
print("ratio = engine / llama.cpp. Peak RSS (VmHWM) counts the mapped weights (file pages) of")
print("each process; llama.cpp's includes node (~50 MiB). engine overhead = anonymous RSS while")
print(f"{batch} requests run minus the KV cache positions written (F32), goal < 10% of the model.")

for t in types:
    steps = [r.get("decode_batchN_forward_steps") for r in runs[t]["llama.cpp"]]
    if steps and steps[0] is not None:
        print(f"llama.cpp {t} batch {batch}: the generated tokens arrived in "
              f"{statistics.median(steps):.0f} groups (one per llama_decode call; "
              f"{int(env['decode_tokens']) - 1} means all {batch} sequences shared each step)")
all_runs = [r for t in types for side in runs[t].values() for r in side]
other = max(r["other_cpu_cores"] for r in all_runs)
own = statistics.median(r["own_cpu_cores"] for r in all_runs)
print(f"CPU: the measured processes used a median {own:.2f} cores; other work on the machine "
      f"used up to {other:.2f} cores during a run")
noisy = other > 0.10
if noisy:
    print("WARNING: other work used more than 0.10 core during a run; rerun on a quiet machine.")

document = {
    "benchmark": "engine",
    "machine": env["machine"],
    "setup": {"threads": threads, "rounds": rounds, "types": types, "batch": batch,
              "prompt_tokens": int(env["prompt_tokens"]),
              "decode_tokens": int(env["decode_tokens"]),
              "engine_kernel_path": engine_path, "llama_cpp_system_info": llama_info},
    "interference_warning": noisy,
    "max_other_cpu_cores": other,
    "summary": summary,
    "runs": runs,
}
with open(env["json_file"], "w") as f:
    json.dump(document, f, indent=2)
    f.write("\n")
EOF
log "results written to $json_file"
