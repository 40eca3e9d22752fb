// `supercluster model info|synth`: look inside a model file (GGUF or safetensors) and write
// random-weight Llama-shaped GGUF files for tests and benchmarks.
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "base/flags.h"
#include "cli/command.h"
#include "cli/commands.h"
#include "engine/gguf_file.h"
#include "engine/model_file.h"
#include "engine/model_synth.h"

namespace supercluster::cli {
namespace {

int Fail(const std::string& verb, const base::Status& status) {
  std::cerr << "supercluster model " << verb << ": " << status.message() << "\n";
  return kExitFailure;
}

std::string HumanBytes(uint64_t bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double value = static_cast<double>(bytes);
  int unit = 0;
  while (value >= 1024 && unit < 4) {
    value /= 1024;
    ++unit;
  }
  char text[32];
  std::snprintf(text, sizeof(text), unit == 0 ? "%.0f %s" : "%.1f %s", value, units[unit]);
  return text;
}

std::string HumanCount(uint64_t count) {
  char text[32];
  if (count >= 1000000000) {
    std::snprintf(text, sizeof(text), "%.2fB", count / 1e9);
  } else if (count >= 1000000) {
    std::snprintf(text, sizeof(text), "%.2fM", count / 1e6);
  } else {
    std::snprintf(text, sizeof(text), "%.1fK", count / 1e3);
  }
  return text;
}

// The tokenizer as far as this command can tell: the GGUF metadata's model and token
// count, or for safetensors the model type and vocabulary size from tokenizer.json.
nlohmann::json TokenizerSummary(const engine::ModelFile& model) {
  nlohmann::json out = nlohmann::json::object();
  if (const engine::GgufFile* gguf = model.gguf()) {
    if (auto name = gguf->GetString("tokenizer.ggml.model"); name.ok()) out["model"] = *name;
    if (const engine::GgufValue* tokens = gguf->Find("tokenizer.ggml.tokens");
        tokens != nullptr && tokens->type() == engine::GgufValueType::kArray) {
      out["vocab_size"] = tokens->size();
    }
    return out;
  }
  std::string path = model.tokenizer_json_path();
  if (path.empty()) return out;
  out["json_path"] = path;
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  nlohmann::json tokenizer = nlohmann::json::parse(text.str(), nullptr, false);
  if (tokenizer.is_object() && tokenizer.contains("model") && tokenizer["model"].is_object()) {
    const nlohmann::json& inner = tokenizer["model"];
    if (inner.contains("type") && inner["type"].is_string()) out["model"] = inner["type"];
    if (inner.contains("vocab") && (inner["vocab"].is_object() || inner["vocab"].is_array())) {
      out["vocab_size"] = inner["vocab"].size();
    }
  }
  return out;
}

nlohmann::json InfoJson(const engine::ModelFile& model) {
  const engine::ModelHyperParameters& h = model.hyper_parameters();
  std::map<std::string, uint64_t> types;
  for (const engine::ModelTensor& tensor : model.tensors()) {
    ++types[std::string(engine::TensorTypeName(tensor.type))];
  }
  nlohmann::json info = {
      {"path", model.path()},
      {"format", model.format() == engine::ModelFile::Format::kGguf ? "gguf" : "safetensors"},
      {"file_bytes", model.file_bytes()},
      {"architecture", h.architecture},
      {"parameter_count", model.parameter_count()},
      {"tensor_count", model.tensors().size()},
      {"tensor_types", types},
      {"tokenizer", TokenizerSummary(model)},
      {"context_length", h.context_length},
      {"block_count", h.block_count},
      {"head_count", h.head_count},
      {"head_count_kv", h.head_count_kv},
      {"embedding_length", h.embedding_length},
      {"feed_forward_length", h.feed_forward_length},
      {"vocab_size", h.vocab_size},
      {"rope_freq_base", h.rope_freq_base},
      {"rope_dimension_count", h.rope_dimension_count},
      {"rms_norm_epsilon", h.rms_norm_epsilon},
      {"tie_word_embeddings", h.tie_word_embeddings},
  };
  if (const engine::GgufFile* gguf = model.gguf()) info["gguf_version"] = gguf->version();
  if (!h.rope_scaling_type.empty()) {
    info["rope_scaling"] = {{"type", h.rope_scaling_type},
                            {"factor", h.rope_scaling_factor},
                            {"original_context_length", h.rope_scaling_original_context_length}};
  }
  return info;
}

void PrintInfoText(const nlohmann::json& info) {
  auto line = [](const std::string& label, const std::string& value) {
    std::printf("%-17s %s\n", (label + ":").c_str(), value.c_str());
  };
  uint64_t bytes = info["file_bytes"];
  line("file", info["path"].get<std::string>() + " (" + std::to_string(bytes) + " bytes, " +
                   HumanBytes(bytes) + ")");
  std::string format = info["format"];
  if (info.contains("gguf_version")) format += " v" + std::to_string(info["gguf_version"].get<int>());
  line("format", format);
  line("architecture", info["architecture"]);
  uint64_t parameters = info["parameter_count"];
  line("parameters", std::to_string(parameters) + " (" + HumanCount(parameters) + ")");
  std::string types;
  for (const auto& [name, count] : info["tensor_types"].items()) {
    types += (types.empty() ? "" : ", ") + name + " x" + std::to_string(count.get<uint64_t>());
  }
  line("tensors", std::to_string(info["tensor_count"].get<uint64_t>()) + " (" + types + ")");
  const nlohmann::json& tokenizer = info["tokenizer"];
  std::string tokenizer_text = tokenizer.value("model", std::string("unknown"));
  if (tokenizer.contains("vocab_size")) {
    tokenizer_text += ", " + std::to_string(tokenizer["vocab_size"].get<uint64_t>()) + " tokens";
  }
  if (tokenizer.contains("json_path")) tokenizer_text += " (" + tokenizer["json_path"].get<std::string>() + ")";
  line("tokenizer", tokenizer_text);
  line("context length", std::to_string(info["context_length"].get<uint32_t>()));
  line("layers", std::to_string(info["block_count"].get<uint32_t>()));
  line("heads", std::to_string(info["head_count"].get<uint32_t>()));
  line("kv heads", std::to_string(info["head_count_kv"].get<uint32_t>()));
  line("embedding", std::to_string(info["embedding_length"].get<uint32_t>()));
  line("feed forward", std::to_string(info["feed_forward_length"].get<uint32_t>()));
  line("vocab size", std::to_string(info["vocab_size"].get<uint32_t>()));
  char number[64];
  std::snprintf(number, sizeof(number), "%g", info["rope_freq_base"].get<double>());
  line("rope theta", number);
  line("rope dimensions", std::to_string(info["rope_dimension_count"].get<uint32_t>()));
  if (info.contains("rope_scaling")) {
    std::snprintf(number, sizeof(number), "%g", info["rope_scaling"]["factor"].get<double>());
    line("rope scaling", info["rope_scaling"]["type"].get<std::string>() + " x" + number);
  }
  std::snprintf(number, sizeof(number), "%g", info["rms_norm_epsilon"].get<double>());
  line("rms epsilon", number);
}

int RunInfo(const std::vector<std::string>& args) {
  bool json = false;
  std::vector<std::string> positional;
  base::FlagSet flags("supercluster model info [--json] FILE|DIR");
  flags.AddBool("json", &json, "machine-readable output (one JSON object)");
  flags.AllowPositional(&positional, "FILE");
  if (base::Status parsed = flags.Parse(args); !parsed.ok()) {
    std::cerr << "supercluster model info: " << parsed.message() << "\n";
    return kExitUsage;
  }
  if (flags.help_requested()) {
    std::cout << flags.Help();
    return kExitOk;
  }
  if (positional.size() != 1) {
    std::cerr << flags.Help();
    return kExitUsage;
  }
  auto model = engine::ModelFile::Open(positional[0]);
  if (!model.ok()) return Fail("info", model.status());
  nlohmann::json info = InfoJson(**model);
  if (json) {
    std::cout << info.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
  } else {
    PrintInfoText(info);
  }
  return kExitOk;
}

int RunSynth(const std::vector<std::string>& args) {
  std::string shape_name = "tiny";
  std::string type_name = "f16";
  std::string out;
  int64_t seed = 1;
  std::string shapes;
  for (const std::string& name : engine::SynthShapeNames()) {
    shapes += (shapes.empty() ? "" : "|") + name;
  }
  base::FlagSet flags("supercluster model synth --shape " + shapes +
                      " --type f32|f16|bf16|q8_0|q4_0 [--seed N] --out FILE");
  flags.AddString("shape", &shape_name,
                  "model shape: tiny (tests), 1b (TinyLlama-1.1B's), or a test-* shape of the "
                  "forward-pass fixtures");
  flags.AddString("type", &type_name, "type of the weight matrices: f32, f16, bf16, q8_0, q4_0");
  flags.AddInt("seed", &seed, "random seed; the same seed writes the same file");
  flags.AddString("out", &out, "the GGUF file to write");
  if (base::Status parsed = flags.Parse(args); !parsed.ok()) {
    std::cerr << "supercluster model synth: " << parsed.message() << "\n";
    return kExitUsage;
  }
  if (flags.help_requested()) {
    std::cout << flags.Help();
    return kExitOk;
  }
  if (out.empty()) {
    std::cerr << "supercluster model synth: --out is required\n" << flags.Help();
    return kExitUsage;
  }
  auto shape = engine::FindSynthShape(shape_name);
  if (!shape.ok()) return Fail("synth", shape.status());
  auto type = engine::ParseTensorTypeName(type_name);
  if (!type.ok()) return Fail("synth", type.status());
  engine::SynthOptions options{*shape, *type, static_cast<uint64_t>(seed)};
  // A progress line for files that take a while (the 1b shape is gigabytes).
  auto progress = [&](uint64_t done, uint64_t total) {
    if (total < (64u << 20)) return;
    std::fprintf(stderr, "\rwriting %s: %3d%% (%s of %s)", out.c_str(),
                 static_cast<int>(done * 100 / total), HumanBytes(done).c_str(),
                 HumanBytes(total).c_str());
    if (done == total) std::fprintf(stderr, "\n");
  };
  if (base::Status written = engine::WriteSynthModel(options, out, progress); !written.ok()) {
    return Fail("synth", written);
  }
  std::cout << "wrote " << out << ": " << shape->architecture << " " << shape_name << ", "
            << type_name << ", "
            << engine::SynthParameterCount(*shape) << " parameters, seed " << seed << "\n";
  return kExitOk;
}

}  // namespace

int RunModel(const std::vector<std::string>& args) {
  static const char* kUsage =
      "usage: supercluster model <info|synth> [flags] ...\n"
      "  info FILE|DIR      architecture, sizes and tensor types of a GGUF or safetensors model\n"
      "  synth --out FILE   write a random-weight Llama-shaped GGUF (tests, benchmarks)\n"
      "Run 'supercluster model <verb> --help' for flags.\n";
  if (args.empty() || args[0] == "--help" || args[0] == "-h") {
    (args.empty() ? std::cerr : std::cout) << kUsage;
    return args.empty() ? kExitUsage : kExitOk;
  }
  std::vector<std::string> rest(args.begin() + 1, args.end());
  if (args[0] == "info") return RunInfo(rest);
  if (args[0] == "synth") return RunSynth(rest);
  std::cerr << "supercluster model: unknown verb '" << args[0] << "'\n" << kUsage;
  return kExitUsage;
}

}  // namespace supercluster::cli
