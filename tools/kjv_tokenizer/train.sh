#!/usr/bin/env bash
# Trains the bundled model's tokenizer: a SentencePiece BPE model on the King James Bible.
# Writes models/kjv/tokenizer.model (see models/kjv/README.md). Needs Debian's bible-kjv
# (the `bible` program) and python3-sentencepiece; Debian's Python modules are visible only
# to /usr/bin/python3, not to a pyenv python3 earlier on PATH.
# Usage: tools/kjv_tokenizer/train.sh [output.model]
set -euo pipefail
cd "$(dirname "$0")/../.."
output=${1:-models/kjv/tokenizer.model}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

command -v bible >/dev/null || { echo "train.sh: 'bible' not found (apt-get install bible-kjv)" >&2; exit 1; }
# -f: one verse per line ("Ge1:1 In the beginning ..."), Genesis 1:1 to Revelation 22:21.
bible -f Gen1:1-Rev22:21 > "$work/kjv-verses.txt"
/usr/bin/python3 tools/kjv_tokenizer/train.py "$work/kjv-verses.txt" "$output"
sha256sum "$output"
