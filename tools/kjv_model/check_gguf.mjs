// Independent checks of models/kjv/kjv.gguf with readers this project did not write:
//  1. npm's @huggingface/gguf parses the header, metadata and tensor infos;
//  2. npm's node-llama-cpp (prebuilt llama.cpp, CPU) loads the file, tokenizes the prompts and
//     greedy-generates, printing ids and text to compare with tools/kjv_model/generate.py.
// Usage: node tools/kjv_model/check_gguf.mjs NODE_MODULES_DIR GGUF PROMPT...
//   NODE_MODULES_DIR: where `npm install @huggingface/gguf node-llama-cpp@3.22.1` was run
//   (outside the repository; these are test oracles, not dependencies).
import path from "node:path";
import { pathToFileURL } from "node:url";

const [modulesDir, ggufPath, ...prompts] = process.argv.slice(2);
if (!modulesDir || !ggufPath) {
  console.error("usage: node check_gguf.mjs NODE_MODULES_DIR GGUF PROMPT...");
  process.exit(2);
}
const load = (name, file) => import(pathToFileURL(path.join(modulesDir, "node_modules", name, file)).href);

const { gguf } = await load("@huggingface/gguf", "dist/index.mjs");
const parsed = await gguf(path.resolve(ggufPath), { allowLocalFile: true, computeParametersCount: true });
const shown = {};
for (const [key, value] of Object.entries(parsed.metadata)) {
  shown[key] = Array.isArray(value) ? `[${value.length} items: ${value.slice(0, 4).join(", ")}, ...]` : value;
}
console.log("@huggingface/gguf metadata:", shown);
console.log(`@huggingface/gguf: ${parsed.tensorInfos.length} tensors, ${parsed.parameterCount} parameters, data at ${parsed.tensorDataOffset}`);
for (const t of parsed.tensorInfos.slice(0, 12)) {
  console.log(`  ${t.name} ne=[${t.shape.join(", ")}] type=${t.dtype} offset=${t.offset}`);
}

const { getLlama, LlamaLogLevel } = await load("node-llama-cpp", "dist/index.js");
const llama = await getLlama({ gpu: false, build: "never", logLevel: LlamaLogLevel.warn });
const model = await llama.loadModel({ modelPath: path.resolve(ggufPath) });
for (const prompt of prompts) {
  const context = await model.createContext({ contextSize: 256, threads: 2 });
  const sequence = context.getSequence();
  const promptIds = [model.tokens.bos, ...model.tokenize(prompt)];
  const out = [];
  for await (const token of sequence.evaluate(promptIds, { temperature: 0 })) {
    if (token === model.tokens.eos || out.length >= 60) break;
    out.push(token);
  }
  console.log(`${JSON.stringify(prompt)} -> ${JSON.stringify(model.detokenize([...model.tokenize(prompt), ...out]))}`);
  console.log(`  prompt ids [${promptIds.join(", ")}]\n  generated ids [${out.join(", ")}]`);
  await context.dispose();
}
await model.dispose();
