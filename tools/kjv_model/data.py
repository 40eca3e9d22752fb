"""Turns the King James Bible into token ids for train.py.

Text: `bible -f Gen1:1-Rev22:21` (Debian's bible-kjv) prints one verse a line,
"Ge1:1 In the beginning ..."; the reference before the first space is dropped. Each verse is
encoded on its own with models/kjv/tokenizer.model (which adds the dummy-prefix space, as
Llama's tokenizer does) and framed as <s> verse </s>, so a prompt encoded with a leading
<s> (add_bos_token=true) looks like the start of a verse and the model learns to end a verse
with </s>. Every 40th verse (index % 40 == 39, 2.5%) is held out for validation.
"""
import subprocess

import numpy as np
import sentencepiece as spm

HOLDOUT_EVERY = 40


def read_verses(verses_file=None):
    if verses_file:
        with open(verses_file, encoding="utf-8") as f:
            lines = f.read().splitlines()
    else:
        out = subprocess.run(["bible", "-f", "Gen1:1-Rev22:21"], check=True,
                             capture_output=True, text=True).stdout
        lines = out.splitlines()
    verses = [line.split(" ", 1)[1].strip() for line in lines if " " in line]
    if len(verses) < 30000:
        raise SystemExit(f"data.py: only {len(verses)} verses; expected 31102")
    return verses


def encode_corpus(tokenizer_path, verses_file=None):
    """Returns (train ids, validation ids) as uint16 numpy arrays."""
    sp = spm.SentencePieceProcessor(model_file=tokenizer_path)
    bos, eos = sp.bos_id(), sp.eos_id()
    train, val = [], []
    for i, ids in enumerate(sp.encode(read_verses(verses_file))):
        (val if i % HOLDOUT_EVERY == HOLDOUT_EVERY - 1 else train).extend([bos] + ids + [eos])
    return np.array(train, dtype=np.uint16), np.array(val, dtype=np.uint16)
