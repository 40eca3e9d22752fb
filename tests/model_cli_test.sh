#!/usr/bin/env bash
# Integration test of `supercluster model synth|info`: synthesizes the tiny Llama shape in
# each weight type, checks what `info` reports (text and --json), that synthesis is
# deterministic in --seed, and that a truncated or foreign file fails with exit 1 naming it.
# Usage: tests/model_cli_test.sh path/to/supercluster
set -euo pipefail
binary=$(realpath "$1")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

# The tiny shape: 64-dim, 2 layers, 4 heads, 2 kv heads, ffn 192, vocab 512, context 256.
# Parameters: 2*64*512 (embeddings, output) + 64 (output norm)
#   + 2 layers * (2*64 norms + 2*64*64 (q, o) + 2*64*32 (k, v) + 3*64*192 (ffn)) = 164160.
for type in f32 f16 q8_0 q4_0; do
  file="$work/tiny-$type.gguf"
  "$binary" model synth --shape tiny --type "$type" --seed 5 --out "$file" > "$work/synth.out" \
    || fail "synth $type"
  grep -q "164160 parameters" "$work/synth.out" || fail "synth $type: $(cat "$work/synth.out")"
  "$binary" model info "$file" > "$work/info.txt" || fail "info $type"
  grep -q '^architecture: *llama$' "$work/info.txt" || fail "info $type: architecture"
  grep -q '^parameters: *164160 ' "$work/info.txt" || fail "info $type: parameters"
  grep -q '^kv heads: *2$' "$work/info.txt" || fail "info $type: kv heads"
  grep -q '^tokenizer: *llama, 512 tokens$' "$work/info.txt" || fail "info $type: tokenizer"
  "$binary" model info --json "$file" | TYPE=$type SIZE=$(stat -c %s "$file") python3 -c '
import json, os, sys
info = json.load(sys.stdin)
want_type = os.environ["TYPE"]
expect = {"format": "gguf", "gguf_version": 3, "architecture": "llama", "parameter_count": 164160,
          "context_length": 256, "block_count": 2, "head_count": 4, "head_count_kv": 2,
          "embedding_length": 64, "feed_forward_length": 192, "vocab_size": 512,
          "rope_freq_base": 10000.0, "rope_dimension_count": 16, "tensor_count": 21,
          "file_bytes": int(os.environ["SIZE"]),
          "tokenizer": {"model": "llama", "vocab_size": 512}}
for key, value in expect.items():
    assert info[key] == value, (key, info[key], value)
# 5 norms stay f32; the 16 matrices have the requested type.
types = {"f32": 5} if want_type != "f32" else {}
types[want_type] = types.get(want_type, 0) + 16
if want_type == "f32": types = {"f32": 21}
assert info["tensor_types"] == types, info["tensor_types"]
assert abs(info["rms_norm_epsilon"] - 1e-5) < 1e-9
' || fail "info --json $type"
done

# Same seed, same bytes; another seed, other bytes.
"$binary" model synth --shape tiny --type q8_0 --seed 5 --out "$work/again.gguf" > /dev/null
cmp -s "$work/tiny-q8_0.gguf" "$work/again.gguf" || fail "synth is not deterministic"
"$binary" model synth --shape tiny --type q8_0 --seed 6 --out "$work/other.gguf" > /dev/null
cmp -s "$work/tiny-q8_0.gguf" "$work/other.gguf" && fail "another seed wrote the same file"

# Sizes follow the type: q4_0 < q8_0 < f16 < f32.
size() { stat -c %s "$work/tiny-$1.gguf"; }
(( $(size q4_0) < $(size q8_0) && $(size q8_0) < $(size f16) && $(size f16) < $(size f32) )) \
  || fail "file sizes do not follow the types"

# A Hugging Face layout: model.safetensors (bytes laid out here per the format's README),
# config.json and tokenizer.json in one directory.
mkdir "$work/hf"
python3 - "$work/hf" <<'PY'
import json, struct, sys
d = sys.argv[1]
header = json.dumps({
    "model.embed_tokens.weight": {"dtype": "BF16", "shape": [10, 8], "data_offsets": [0, 160]},
    "model.norm.weight": {"dtype": "F32", "shape": [8], "data_offsets": [160, 192]},
    "__metadata__": {"format": "pt"}}).encode()
open(d + "/model.safetensors", "wb").write(struct.pack("<Q", len(header)) + header + bytes(192))
json.dump({"model_type": "llama", "hidden_size": 8, "num_hidden_layers": 1,
           "num_attention_heads": 2, "num_key_value_heads": 1, "intermediate_size": 16,
           "rms_norm_eps": 1e-6, "rope_theta": 500000.0, "vocab_size": 10,
           "max_position_embeddings": 64, "tie_word_embeddings": True},
          open(d + "/config.json", "w"))
json.dump({"model": {"type": "BPE", "vocab": {chr(97 + i): i for i in range(10)}}},
          open(d + "/tokenizer.json", "w"))
PY
"$binary" model info --json "$work/hf" | python3 -c '
import json, sys
info = json.load(sys.stdin)
expect = {"format": "safetensors", "architecture": "llama", "parameter_count": 88,
          "tensor_types": {"bf16": 1, "f32": 1}, "head_count": 2, "head_count_kv": 1,
          "embedding_length": 8, "vocab_size": 10, "context_length": 64,
          "rope_freq_base": 500000.0, "tie_word_embeddings": True}
for key, value in expect.items():
    assert info[key] == value, (key, info[key], value)
assert info["tokenizer"]["model"] == "BPE" and info["tokenizer"]["vocab_size"] == 10, info["tokenizer"]
' || fail "info --json on a safetensors directory"
rm "$work/hf/config.json"

expect_failure() {
  local what=$1 pattern=$2
  shift 2
  set +e
  "$binary" model "$@" > "$work/out" 2> "$work/err"
  local code=$?
  set -e
  [[ $code -eq 1 ]] || fail "$what: exit $code, want 1 ($(cat "$work/err"))"
  grep -q -- "$pattern" "$work/err" || fail "$what: stderr lacks '$pattern': $(cat "$work/err")"
}

head -c 20000 "$work/tiny-f16.gguf" > "$work/truncated.gguf"
expect_failure "truncated" "$work/truncated.gguf: tensor '[a-z_.0-9]*': data \[[0-9]*, [0-9]*) extends past the end of the file (20000 bytes)" \
  info "$work/truncated.gguf"
head -c 300 "$work/tiny-f16.gguf" > "$work/short.gguf"
expect_failure "header cut" "$work/short.gguf: " info "$work/short.gguf"
echo "hello" > "$work/notes.txt"
expect_failure "not a model" "$work/notes.txt: neither a GGUF file" info "$work/notes.txt"
expect_failure "missing" "$work/absent.gguf" info "$work/absent.gguf"
expect_failure "no config.json" "no config.json beside the safetensors weights" info "$work/hf"
expect_failure "unknown shape" "unknown model shape '7b'" synth --shape 7b --out "$work/x.gguf"
expect_failure "unsupported type" "not q6_K" synth --type q6_K --out "$work/x.gguf"

set +e
"$binary" model synth --shape tiny > /dev/null 2>&1; code=$?
set -e
[[ $code -eq 2 ]] || fail "synth without --out: exit $code, want 2"
# generate: greedy is deterministic; sampling is deterministic per seed; max-tokens holds.
gen() { "$binary" generate --model "$work/tiny-q8_0.gguf" --prompt "In the beginning" --json "$@"; }
"$binary" model synth --shape tiny --type q8_0 --out "$work/tiny-q8_0.gguf" > /dev/null
gen --max-tokens 12 > "$work/g1.json"
gen --max-tokens 12 > "$work/g2.json"
python3 - "$work/g1.json" "$work/g2.json" <<'PY' || fail "greedy generate"
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:])
assert a["completion_tokens"] == 12 and a["finish_reason"] == "length", a
assert a["prompt_tokens"] > 1, a
assert a["text"] == b["text"], (a["text"], b["text"])
PY
gen --max-tokens 12 --temperature 1 --seed 7 > "$work/s1.json"
gen --max-tokens 12 --temperature 1 --seed 7 > "$work/s2.json"
gen --max-tokens 12 --temperature 1 --seed 8 > "$work/s3.json"
python3 - "$work/s1.json" "$work/s2.json" "$work/s3.json" <<'PY' || fail "seeded sampling"
import json, sys
a, b, c = (json.load(open(p))["text"] for p in sys.argv[1:])
assert a == b, "same seed, different text"
assert a != c, "different seeds, same text"
PY
set +e
"$binary" generate --model "$work/absent.gguf" --prompt x > /dev/null 2> "$work/err"; code=$?
[[ $code -eq 1 ]] || fail "generate on a missing model: exit $code, want 1"
"$binary" generate --model "$work/tiny-q8_0.gguf" --prompt x --max-tokens 100000 > /dev/null 2> "$work/err"; code=$?
[[ $code -eq 1 ]] && grep -q context "$work/err" || fail "generate past the context: exit $code: $(cat "$work/err")"
"$binary" generate --prompt x > /dev/null 2>&1; code=$?
[[ $code -eq 2 ]] || fail "generate without --model: exit $code, want 2"
set -e
# The bundled model (models/kjv) speaks King James English: greedy continuations of a few
# prompts use the KJV's own words. A broken forward pass, tokenizer or RoPE ordering gives
# noise that contains none of them.
kjv="$(cd "$(dirname "$0")/.." && pwd)/models/kjv/kjv.gguf"
for prompt in "And the LORD said unto Moses" "In the beginning" "For God so loved"; do
  "$binary" generate --model "$kjv" --prompt "$prompt" --max-tokens 40 --json > "$work/kjv.json"
  python3 - "$work/kjv.json" "$prompt" <<'PY' || fail "the bundled model on '$prompt'"
import json, re, sys
out = json.load(open(sys.argv[1]))
text = out["text"]
words = re.findall(r"[A-Za-z]+", text)
kjv = {"the", "and", "of", "unto", "LORD", "God", "thee", "thou", "shall", "Israel", "hath",
       "said", "him", "his", "man", "people", "land", "a", "be", "will", "that", "in"}
known = sum(1 for w in words if w in kjv)
assert len(words) >= 5, (sys.argv[2], text)
assert known >= len(words) // 3, (sys.argv[2], text)
assert all(ord(c) < 128 for c in text), (sys.argv[2], text)
print(f"{sys.argv[2]!r} -> {text!r}")
PY
done
# Exactly what llama.cpp (npm node-llama-cpp 3.22.1) and the PyTorch reference
# (tools/kjv_model/generate.py) produce greedily from this prompt: models/kjv/MODEL_CARD.md.
"$binary" generate --model "$kjv" --prompt "For God so loved" --max-tokens 60 --json > "$work/kjv.json"
python3 - "$work/kjv.json" <<'PY' || fail "greedy KJV continuation differs from llama.cpp's"
import json, sys
out = json.load(open(sys.argv[1]))
want = " the LORD, and said, I will not be a great man, and that he may be a man of God."
assert out["text"] == want and out["finish_reason"] == "stop", out
PY
echo "model_cli_test: all checks passed"
