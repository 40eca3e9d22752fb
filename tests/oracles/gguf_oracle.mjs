// Independent GGUF oracle for engine_formats_test: Hugging Face's @huggingface/gguf parser
// (npm, installed by scripts/install-deps into tests/oracles/node_modules).
//   node gguf_oracle.mjs dump FILE   prints the parse as JSON (64-bit values as strings)
//   node gguf_oracle.mjs write FILE  writes a metadata-only GGUF of known content with the
//                                     package's own serializer, for our reader to parse
import { gguf, serializeGgufMetadata, GGUFValueType } from "@huggingface/gguf";
import { writeFileSync } from "node:fs";
import { resolve } from "node:path";

const [mode, file] = process.argv.slice(2);
const plain = (value) =>
  typeof value === "bigint" ? value.toString()
  : Array.isArray(value) ? value.map(plain)
  : value;

if (mode === "dump") {
  const parsed = await gguf(resolve(file), { allowLocalFile: true });
  const metadata = {};
  for (const [key, value] of Object.entries(parsed.metadata)) metadata[key] = plain(value);
  console.log(JSON.stringify({
    metadata,
    tensors: parsed.tensorInfos.map((t) => ({
      name: t.name, shape: t.shape.map(String), type: t.dtype, offset: t.offset.toString(),
    })),
    data_offset: parsed.tensorDataOffset.toString(),
  }));
} else if (mode === "write") {
  const typed = {
    version: { value: 3, type: GGUFValueType.UINT32 },
    tensor_count: { value: 0n, type: GGUFValueType.UINT64 },
    kv_count: { value: 6n, type: GGUFValueType.UINT64 },
    "general.architecture": { value: "llama", type: GGUFValueType.STRING },
    "llama.context_length": { value: 4096, type: GGUFValueType.UINT32 },
    "llama.rope.freq_base": { value: 0.5, type: GGUFValueType.FLOAT32 },
    "oracle.flag": { value: true, type: GGUFValueType.BOOL },
    "oracle.tokens": { value: ["<s>", "h\u00e9"], type: GGUFValueType.ARRAY, subType: GGUFValueType.STRING },
    "oracle.ids": { value: [-1, 7], type: GGUFValueType.ARRAY, subType: GGUFValueType.INT32 },
  };
  writeFileSync(file, serializeGgufMetadata(typed));
} else {
  console.error("usage: node gguf_oracle.mjs dump|write FILE");
  process.exit(2);
}
