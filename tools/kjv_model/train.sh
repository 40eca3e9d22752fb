#!/usr/bin/env bash
# Retrains the bundled demonstration model and exports it (`make model`): trains with
# train.py on the King James Bible, writes models/kjv/training.log, exports the checkpoint
# with the best validation loss to models/kjv/kjv.gguf and prints sample generations.
# Needs `scripts/install-deps --train` (Debian's python3-torch with libopenblas0-pthread,
# python3-sentencepiece, bible-kjv); Debian's Python modules are visible only to
# /usr/bin/python3, not to a pyenv python3 earlier on PATH.
# Usage: tools/kjv_model/train.sh [train.py options], e.g. --max-minutes 52 (the default 55)
# Runs under `nice -n 19` with 2 threads so that builds on the same machine come first.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=build/kjv-model
mkdir -p "$out"
command -v bible >/dev/null || { echo "train.sh: 'bible' not found (scripts/install-deps --train)" >&2; exit 1; }
# -f: one verse per line ("Ge1:1 In the beginning ..."), Genesis 1:1 to Revelation 22:21.
bible -f Gen1:1-Rev22:21 > "$out/kjv-verses.txt"
nice -n 19 /usr/bin/python3 tools/kjv_model/train.py --verses "$out/kjv-verses.txt" --out "$out" "$@"
/usr/bin/python3 tools/kjv_model/export_gguf.py --checkpoint "$out/best.pt" --out models/kjv/kjv.gguf
/usr/bin/python3 tools/kjv_model/generate.py --checkpoint "$out/best.pt" \
  "In the beginning" "And the LORD said unto Moses" "Blessed are"
