#!/usr/bin/python3
"""Regenerates the forward-pass fixtures in tests/data/forward (see SOURCE.md there).

For each test shape and weight type: `supercluster model synth` writes the GGUF file, the
reference (llama_reference.py) computes the float64 logits of every position of a fixed token
sequence and 8 greedy continuation tokens, and the fixture JSON records them with the file's
sha256. The same run measures how far float32 arithmetic with llama.cpp-style activation
rounding lands from the float64 logits, and fails if that exceeds half the tolerance the
fixture states (so the tolerances keep at least a 2x margin over an engine that computes what
llama.cpp's CPU backend computes).

  /usr/bin/python3 tools/reference/make_fixtures.py --binary build/release/apps/supercluster/supercluster
  /usr/bin/python3 tools/reference/make_fixtures.py --binary ... --check   (compare, write nothing)
"""

import argparse
import base64
import hashlib
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import llama_reference as reference  # noqa: E402

SHAPES = ["test-llama3", "test-qwen2", "test-tied"]
TYPES = ["f32", "f16", "bf16", "q8_0", "q4_0"]
SEED = 1
POSITIONS = 16
GREEDY = 8
FORMAT = "supercluster-forward-fixture/1"
# Max |engine - reference| over a row, divided by max |reference| of that row, max over rows.
# F32: what issue 3 asks (float32 arithmetic measures ~5e-7; an f16 KV cache alone measures
# ~5e-4, so an engine must keep K and V in f32 for F32 models to pass). The others: at least
# 2x the largest error measured, over all shapes, for float32 arithmetic with llama.cpp's
# activation rounding (f16 / bf16 / Q8_0 blocks as the input of each weight matmul) with and
# without an f16 KV cache (the "measured" field of each fixture; measured maxima when these
# were chosen: f16 1.6e-3, bf16 7.6e-3, q8_0 2.5e-2, q4_0 2.5e-2).
TOLERANCE = {"f32": 1e-4, "f16": 4e-3, "bf16": 2e-2, "q8_0": 6e-2, "q4_0": 6e-2}


def fixture_tokens(vocab):
    """BOS, then 15 ids in [3, vocab) (byte tokens and made-up words), fixed per vocab size."""
    rng = np.random.RandomState(20261126 + vocab)
    return [1] + [int(t) for t in rng.randint(3, vocab, POSITIONS - 1)]


def encode_logits(logits):
    return base64.b64encode(np.asarray(logits, dtype="<f4").tobytes()).decode("ascii")


def measure(model, tokens, expected):
    def error(**options):
        return reference.max_error_relative_to_row_max(expected, reference.forward(model, tokens, **options).numpy())
    return {
        "float32_arithmetic": error(dtype=torch.float32),
        "float32_llama_cpp_activation_rounding": error(dtype=torch.float32, act="auto"),
        "float32_llama_cpp_activation_rounding_f16_kv_cache": error(dtype=torch.float32, act="auto", kv_f16=True),
    }


def make_fixture(binary, shape, type_name, directory):
    path = os.path.join(directory, f"{shape}-{type_name}.gguf")
    command = [binary, "model", "synth", "--shape", shape, "--type", type_name, "--seed", str(SEED), "--out", path]
    subprocess.run(command, check=True, capture_output=True)
    with open(path, "rb") as f:
        data = f.read()
    model = reference.Model(path)
    tokens = fixture_tokens(model.vocab)
    logits = reference.forward(model, tokens).numpy()
    greedy, margins = reference.greedy(model, tokens, GREEDY)
    measured = measure(model, tokens, logits)
    # F32 fixtures: only float32 arithmetic counts (an f16 KV cache is not allowed there).
    worst = measured["float32_arithmetic"] if type_name == "f32" else max(measured.values())
    if worst * 2 > TOLERANCE[type_name]:
        raise SystemExit(f"{shape} {type_name}: measured error {worst:.3e} leaves less than a 2x margin "
                         f"under the tolerance {TOLERANCE[type_name]}; revisit TOLERANCE")
    hp = model.hp
    return {
        "format": FORMAT,
        "shape": shape,
        "type": type_name,
        "seed": SEED,
        "synth_command": f"supercluster model synth --shape {shape} --type {type_name} --seed {SEED} --out FILE",
        "gguf_sha256": hashlib.sha256(data).hexdigest(),
        "gguf_bytes": len(data),
        "architecture": hp.arch,
        "rope_ordering": hp.rope_ordering,
        "vocab_size": model.vocab,
        "tokens": tokens,
        "logits_encoding": "base64 of little-endian float32, row-major [position][vocab]",
        "logits": encode_logits(logits),
        "greedy_tokens": greedy,
        "greedy_margins": [round(m, 6) for m in margins],
        "tolerance": TOLERANCE[type_name],
        "tolerance_metric": "max over positions of max_i |engine_i - reference_i| / max_i |reference_i|",
        "measured": {k: float(f"{v:.3e}") for k, v in measured.items()},
        "reference": f"tools/reference/llama_reference.py, float64, PyTorch {torch.__version__}, NumPy {np.__version__}",
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--binary", required=True, help="the supercluster binary built from this tree")
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "..", "tests", "data", "forward"))
    parser.add_argument("--check", action="store_true", help="compare with the committed fixtures")
    args = parser.parse_args()
    differences = 0
    with tempfile.TemporaryDirectory() as directory:
        for shape in SHAPES:
            for type_name in TYPES:
                fixture = make_fixture(args.binary, shape, type_name, directory)
                target = os.path.join(args.out, f"{shape}-{type_name}.json")
                text = json.dumps(fixture, indent=1) + "\n"
                if args.check:
                    with open(target) as f:
                        same = f.read() == text
                    differences += not same
                    print(f"{target}: {'same' if same else 'DIFFERS'}")
                else:
                    with open(target, "w") as f:
                        f.write(text)
                    print(f"{target}: sha256 {fixture['gguf_sha256'][:16]}..., greedy {fixture['greedy_tokens']}, "
                          f"measured {fixture['measured']} (tolerance {fixture['tolerance']})")
    return 1 if differences else 0


if __name__ == "__main__":
    sys.exit(main())
