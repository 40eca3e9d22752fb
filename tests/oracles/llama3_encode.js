// Test oracle: npm llama3-tokenizer-js (an independent JavaScript Llama 3 tokenizer with
// Meta's vocabulary and merges baked in). Prints, as one JSON object, its vocabulary
// (id -> byte-level piece), its merges in rank order ("left right"), and its encode() of
// every string in a JSON array file, without BOS/EOS.
// Usage: node tests/oracles/llama3_encode.js CORPUS.json
// Called by src/engine/tokenizer_conformance_test.cc.
'use strict';
const fs = require('fs');
const { llama3Tokenizer } = require(
    'llama3-tokenizer-js/bundle/commonjs-llama3-tokenizer-with-baked-data.cjs');

const corpus = JSON.parse(fs.readFileSync(process.argv[2], 'utf-8'));
// The package keeps merges as a Map from "left right" to 2 * rank + 1.
const merges = [];
for (const [pair, priority] of llama3Tokenizer.merges) merges[(priority - 1) / 2] = pair;
process.stdout.write(JSON.stringify({
  tokens: llama3Tokenizer.vocabById,
  first_special_id: 128000,
  merges: merges,
  ids: corpus.map((text) => llama3Tokenizer.encode(text, { bos: false, eos: false })),
}));
