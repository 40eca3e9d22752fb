// The llama.cpp anchor of bench/engine: the same measurements as engine_bench.cc, on the
// same GGUF file with the same thread count, run by llama.cpp's prebuilt CPU binaries through
// npm node-llama-cpp (installed into bench/anchors by `scripts/install-deps --bench`).
//
//   node bench/engine/llama_anchor.mjs --model FILE --threads N
//       [--prompt-tokens 128] [--decode-tokens 64] [--batch 8]
//
// Prints one JSON object on stdout (see engine_bench.cc for the fields, which are the same):
//   prefill: one sequence evaluates the whole prompt (one batch), logits of its last token
//   decode_batch1: one sequence, greedy, tokens/s over decode-tokens single-token steps
//   decode_batchN: N sequences, each prefilled with its own prompt, then all decode at once
//                  (node-llama-cpp puts the N sequences' tokens in one llama_decode batch);
//                  generated tokens/s over the steps after every sequence has its first token
//   memory: VmHWM and RssAnon of this process (llama.cpp runs inside node)
// The prompts are the same token ids engine_bench uses (PromptTokens below and in the C++).
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

function parseArguments(argv) {
  const options = { model: "", threads: 0, promptTokens: 128, decodeTokens: 64, batch: 8 };
  for (let i = 0; i < argv.length; i += 2) {
    const value = argv[i + 1];
    if (value === undefined) throw new Error(`${argv[i]} needs a value`);
    switch (argv[i]) {
      case "--model": options.model = value; break;
      case "--threads": options.threads = Number(value); break;
      case "--prompt-tokens": options.promptTokens = Number(value); break;
      case "--decode-tokens": options.decodeTokens = Number(value); break;
      case "--batch": options.batch = Number(value); break;
      default: throw new Error(`unknown argument ${argv[i]}`);
    }
  }
  if (!options.model) throw new Error("--model is required");
  if (!(options.threads >= 1)) throw new Error("--threads must be >= 1");
  return options;
}

// Prompt `index` of `length` tokens: BOS (1), then ids spread over the vocabulary without
// special or byte tokens (ids >= 259). Must match PromptTokens in engine_bench.cc.
function promptTokens(index, length, vocabSize) {
  const tokens = [1];
  for (let i = 1; i < length; ++i) {
    tokens.push(259 + ((i * 7919 + index * 104729) % (vocabSize - 259)));
  }
  return tokens;
}

// Fields of /proc/self/status in bytes (VmHWM, VmRSS, RssAnon, RssFile).
function processMemory() {
  const status = readFileSync("/proc/self/status", "utf8");
  const field = (name) => {
    const match = status.match(new RegExp(`^${name}:\\s+(\\d+) kB`, "m"));
    return match ? Number(match[1]) * 1024 : 0;
  };
  return { peak_rss_bytes: field("VmHWM"), rss_bytes: field("VmRSS"),
           rss_anon_bytes: field("RssAnon"), rss_file_bytes: field("RssFile") };
}

const seconds = (start) => Number(process.hrtime.bigint() - start) / 1e9;

// Decodes `count` tokens greedily on each of `sequences` at once, after each was prefilled
// with all but the last token of its prompt. Returns the seconds from the moment every
// sequence has yielded its first token to the moment all have yielded `count`, and the
// tokens generated in that time.
async function decodeTogether(sequences, prompts, count) {
  await Promise.all(sequences.map((sequence, i) =>
    sequence.evaluateWithoutGeneratingNewTokens(prompts[i].slice(0, -1))));
  let firstTokens = 0;
  let startAll = null;
  const yieldTimes = [];  // after startAll: when each token arrived, to count forward steps
  let resolveStart;
  const allStarted = new Promise((resolve) => { resolveStart = resolve; });
  const runs = sequences.map(async (sequence, i) => {
    let produced = 0;
    const generator = sequence.evaluate([prompts[i][prompts[i].length - 1]],
                                        { temperature: 0, yieldEogToken: true });
    for await (const token of generator) {
      void token;
      ++produced;
      if (startAll !== null) yieldTimes.push(process.hrtime.bigint());
      if (produced === 1 && ++firstTokens === sequences.length) {
        startAll = process.hrtime.bigint();
        resolveStart();
      }
      if (produced === count) break;
    }
  });
  await allStarted;
  await Promise.all(runs);
  // Tokens that arrive within 2 ms of each other came out of one llama_decode call: the
  // number of such groups says whether the sequences really were batched.
  yieldTimes.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  let steps = yieldTimes.length > 0 ? 1 : 0;
  for (let i = 1; i < yieldTimes.length; ++i) {
    if (yieldTimes[i] - yieldTimes[i - 1] > 2000000n) ++steps;
  }
  return { seconds: seconds(startAll), tokens: yieldTimes.length, steps };
}

async function main() {
  const options = parseArguments(process.argv.slice(2));
  const here = dirname(fileURLToPath(import.meta.url));
  const anchors = join(here, "..", "anchors", "node_modules", "node-llama-cpp");
  const packageJson = JSON.parse(readFileSync(join(anchors, "package.json"), "utf8"));
  const { getLlama, LlamaLogLevel } =
    await import(pathToFileURL(join(anchors, packageJson.exports["."].import)).href);

  const llama = await getLlama({ gpu: false, build: "never", logLevel: LlamaLogLevel.error,
                                 maxThreads: options.threads });
  const model = await llama.loadModel({ modelPath: options.model, gpuLayers: 0 });
  const vocabSize = model.fileInfo.tensorInfo.find((t) => t.name === "token_embd.weight")
    .dimensions[1];
  const contextSize = options.promptTokens + options.decodeTokens + 16;
  const context = await model.createContext({
    sequences: options.batch, contextSize,  // per sequence
    batchSize: Math.max(512, options.promptTokens * options.batch),
    threads: { ideal: options.threads, min: options.threads }, flashAttention: false,
  });
  const prompts = [];
  for (let i = 0; i < options.batch; ++i) {
    prompts.push(promptTokens(i, options.promptTokens, Number(vocabSize)));
  }
  const sequences = [];
  for (let i = 0; i < options.batch; ++i) sequences.push(context.getSequence());

  // Warm-up: page the weights in and let llama.cpp allocate its compute buffers.
  await sequences[0].evaluateWithoutGeneratingNewTokens(prompts[0].slice(0, 16));
  await sequences[0].clearHistory();

  let start = process.hrtime.bigint();
  await sequences[0].evaluateWithoutGeneratingNewTokens(prompts[0]);
  const prefillSeconds = seconds(start);
  await sequences[0].clearHistory();

  const single = await decodeTogether([sequences[0]], [prompts[0]], options.decodeTokens);
  await sequences[0].clearHistory();
  const batched = await decodeTogether(sequences, prompts, options.decodeTokens);
  const memory = processMemory();

  const result = {
    implementation: "llama.cpp (node-llama-cpp " + packageJson.version + ")",
    threads: options.threads,
    system_info: llama.systemInfo,
    prompt_tokens: options.promptTokens,
    decode_tokens: options.decodeTokens,
    batch: options.batch,
    prefill_tokens_per_second: options.promptTokens / prefillSeconds,
    decode_batch1_tokens_per_second: single.tokens / single.seconds,
    decode_batchN_tokens_per_second: batched.tokens / batched.seconds,
    decode_batchN_forward_steps: batched.steps,
    memory,
  };
  for (const sequence of sequences) sequence.dispose();
  await context.dispose();
  await model.dispose();
  await llama.dispose();
  process.stdout.write(JSON.stringify(result) + "\n");
}

main().catch((error) => {
  process.stderr.write(`llama_anchor: ${error.stack ?? error}\n`);
  process.exit(1);
});
