#!/usr/bin/python3
"""Compares the forward-pass fixtures with llama.cpp (an independent check of the reference).

For each fixture in tests/data/forward: synthesizes its GGUF file, runs llama.cpp on the same
tokens through node-llama-cpp (llama_cpp_logits.mjs) and prints the error of llama.cpp's
logits against the fixture's (the fixtures' metric) and whether its greedy continuation
matches. F32 fixtures run llama.cpp with an F32 KV cache and must agree within the fixture's
tolerance; the others run it with its default F16 KV cache, i.e. as llama.cpp normally runs,
which is what the quantized tolerances are meant to cover. Exits 1 if any fixture's error
exceeds its tolerance.

node-llama-cpp is not a dependency of the project; install it outside the repository:
  mkdir /tmp/nlc && cd /tmp/nlc && npm install node-llama-cpp@3.22.1
  /usr/bin/python3 tools/reference/check_against_llama_cpp.py --binary build/release/apps/supercluster/supercluster \\
      --node-llama-cpp /tmp/nlc/node_modules/node-llama-cpp
"""

import argparse
import base64
import glob
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import llama_reference as reference  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--binary", required=True)
    parser.add_argument("--node-llama-cpp", required=True, help="the installed package's directory")
    parser.add_argument("--fixtures", default=os.path.join(HERE, "..", "..", "tests", "data", "forward"))
    args = parser.parse_args()
    environment = dict(os.environ, NODE_LLAMA_CPP=os.path.join(os.path.abspath(args.node_llama_cpp), "dist", "index.js"))
    failures = 0
    with tempfile.TemporaryDirectory() as directory:
        for path in sorted(glob.glob(os.path.join(args.fixtures, "*.json"))):
            with open(path) as f:
                fixture = json.load(f)
            model = os.path.join(directory, os.path.basename(path)[:-5] + ".gguf")
            subprocess.run([args.binary, "model", "synth", "--shape", fixture["shape"], "--type", fixture["type"],
                            "--seed", str(fixture["seed"]), "--out", model], check=True, capture_output=True)
            kv = "F32" if fixture["type"] == "f32" else "F16"
            run = subprocess.run(["node", os.path.join(HERE, "llama_cpp_logits.mjs"), model,
                                  ",".join(map(str, fixture["tokens"])), str(len(fixture["greedy_tokens"])), kv],
                                 env=environment, capture_output=True, text=True, check=True)
            result = json.loads(run.stdout)
            expected = np.frombuffer(base64.b64decode(fixture["logits"]), dtype="<f4").reshape(len(fixture["tokens"]), -1)
            error = reference.max_error_relative_to_row_max(expected, np.array(result["logits"]))
            # Greedy steps whose margin is at least 2 x tolerance x max |logit| must agree
            # (ComparableGreedyTokens in src/engine/forward_fixture.h).
            threshold = 2 * fixture["tolerance"] * float(np.abs(expected).max())
            comparable = 0
            while comparable < len(fixture["greedy_margins"]) and fixture["greedy_margins"][comparable] >= threshold:
                comparable += 1
            same = 0
            while same < len(fixture["greedy_tokens"]) and result["greedy"][same] == fixture["greedy_tokens"][same]:
                same += 1
            ok = error <= fixture["tolerance"] and same >= comparable
            failures += not ok
            print(f"{os.path.basename(path)}: llama.cpp (KV {kv}) error {error:.2e} (tolerance {fixture['tolerance']}); "
                  f"greedy tokens equal {same}/{len(fixture['greedy_tokens'])}, comparable {comparable}: "
                  f"{'ok' if ok else 'FAILS'}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
