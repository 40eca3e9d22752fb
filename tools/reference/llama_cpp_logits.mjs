// Prints llama.cpp's logits for every position of a token sequence, and its greedy
// continuation, as JSON: {"logits": [[...vocab] per position], "greedy": [...]}.
// An independent check of the reference (check_against_llama_cpp.py runs it); needs the npm
// package node-llama-cpp (3.22.1, prebuilt llama.cpp binaries) installed OUTSIDE the
// repository; it is not a dependency of Supercluster.
//
//   NODE_LLAMA_CPP=/tmp/nlc/node_modules/node-llama-cpp/dist/index.js \
//     node llama_cpp_logits.mjs MODEL.gguf 1,15,300 8 F32
// The last argument is llama.cpp's KV cache type (F32 or F16, its default).
import {pathToFileURL} from "node:url";

const [modelPath, tokenText, greedyText, kvType] = process.argv.slice(2);
const {getLlama} = await import(pathToFileURL(process.env.NODE_LLAMA_CPP).href);
const tokens = tokenText.split(",").map(Number);
const llama = await getLlama({gpu: false, build: "never", logLevel: "error"});
const model = await llama.loadModel({modelPath});
const context = await model.createContext({
  contextSize: 256, batchSize: 256, threads: 1, flashAttention: false,
  experimentalKvCacheKeyType: kvType, experimentalKvCacheValueType: kvType,
});
const sequence = context.getSequence();
const greedyOptions = {token: true, options: {temperature: 0}};
const evaluated = await sequence.controlledEvaluate(
    tokens.map((token) => [token, {generateNext: {logits: true, ...greedyOptions}}]));
const logits = evaluated.map((item) => {
  const row = [];
  for (const [token, value] of item.next.logits) row[token] = value;
  return row;
});
const greedy = [];
let next = evaluated[evaluated.length - 1].next.token;
for (let i = 0; i < Number(greedyText); ++i) {
  greedy.push(next);
  const step = await sequence.controlledEvaluate([[next, {generateNext: greedyOptions}]]);
  next = step[0].next.token;
}
process.stdout.write(JSON.stringify({logits, greedy}) + "\n", () => process.exit(0));
