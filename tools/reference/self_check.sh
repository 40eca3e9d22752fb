#!/bin/sh
# Checks the forward-pass reference against itself: for every synth shape but 1b, the
# vectorized float64 PyTorch forward pass and a second formulation (numpy loops, complex
# RoPE, hand-written softmax) give the same logits to 1e-12. Run it when the reference or
# the fixtures change (`make reference-check`); it needs Debian's python3-torch, which only
# `scripts/install-deps --train` installs (CI has the committed fixtures and needs no torch).
# Exits 77 when torch is missing.
# Usage: self_check.sh SUPERCLUSTER_BINARY
set -eu
binary=$1
here=$(dirname "$0")
python=/usr/bin/python3
if ! "$python" -c 'import torch, numpy' 2>/dev/null; then
  echo "python3-torch or python3-numpy is not installed: skipping" >&2
  exit 77
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for shape in tiny test-llama3 test-qwen2 test-tied; do
  for type in f32 q4_0; do
    "$binary" model synth --shape "$shape" --type "$type" --seed 3 --out "$work/$shape-$type.gguf" >/dev/null
    "$python" "$here/llama_reference.py" "$work/$shape-$type.gguf" --self-check \
      --tokens 1,40,7,281,3,259,17,200,2,99,260,5
  done
done
