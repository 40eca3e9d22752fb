#!/usr/bin/python3
"""Greedy generation from a checkpoint train.py wrote: the PyTorch reference for what the
exported GGUF file must generate (in llama.cpp or Supercluster's engine).

Usage: /usr/bin/python3 generate.py [--checkpoint PT] [--max-new N] [--f16] [--ids] PROMPT...

The prompt is encoded as the engine encodes it for a GGUF file with add_bos_token=true:
<s> followed by sentencepiece's ids for the text (with its dummy-prefix space). Generation
stops at </s> or after --max-new tokens. --f16 rounds the weight matrices to float16 first,
as the exported file stores them. --ids also prints the generated token ids.
"""
import argparse
import os
import sys

import sentencepiece as spm
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from model import load_checkpoint  # noqa: E402

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


@torch.no_grad()
def greedy(model, prompt_ids, max_new, eos_id):
    ids = list(prompt_ids)
    out = []
    for _ in range(max_new):
        context = ids[-model.cfg.context_length:]
        logits = model(torch.tensor([context]))[0, -1]
        next_id = int(torch.argmax(logits))
        if next_id == eos_id:
            break
        ids.append(next_id)
        out.append(next_id)
    return out


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--checkpoint", default=os.path.join(REPO, "build/kjv-model/best.pt"))
    p.add_argument("--tokenizer", default=os.path.join(REPO, "models/kjv/tokenizer.model"))
    p.add_argument("--max-new", type=int, default=60)
    p.add_argument("--f16", action="store_true")
    p.add_argument("--ids", action="store_true")
    p.add_argument("prompts", nargs="+")
    args = p.parse_args()
    torch.set_num_threads(2)
    model, _ = load_checkpoint(args.checkpoint)
    if args.f16:
        for param in model.parameters():
            if param.dim() == 2:
                param.data = param.data.half().float()
    sp = spm.SentencePieceProcessor(model_file=args.tokenizer)
    for prompt in args.prompts:
        prompt_ids = [sp.bos_id()] + sp.encode(prompt)
        out = greedy(model, prompt_ids, args.max_new, sp.eos_id())
        print(f"{prompt!r} -> {sp.decode(sp.encode(prompt) + out)!r}")
        if args.ids:
            print(f"  prompt ids {prompt_ids}\n  generated ids {out}")


if __name__ == "__main__":
    main()
