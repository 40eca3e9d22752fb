#include "engine/forward_fixture.h"

#include <openssl/evp.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <memory>
#include <sstream>

#include <nlohmann/json.hpp>

#include "base/base64.h"
#include "engine/model_synth.h"

namespace supercluster::engine {
namespace {

constexpr const char* kFormat = "supercluster-forward-fixture/1";

using Json = nlohmann::json;

class FieldReader {
 public:
  FieldReader(const std::string& path, const Json& json) : path_(path), json_(json) {}

  base::Status Error(const std::string& field, const std::string& what) const {
    return base::InvalidArgument(path_ + ": field '" + field + "' " + what);
  }

  base::Result<const Json*> Get(const std::string& field) const {
    auto found = json_.find(field);
    if (found == json_.end()) return Error(field, "is missing");
    return &*found;
  }

  base::Result<std::string> String(const std::string& field) const {
    SC_ASSIGN_OR_RETURN(const Json* value, Get(field));
    if (!value->is_string()) return Error(field, "is not a string");
    return value->get<std::string>();
  }

  base::Result<uint64_t> Unsigned(const std::string& field) const {
    SC_ASSIGN_OR_RETURN(const Json* value, Get(field));
    if (!value->is_number_unsigned()) return Error(field, "is not a non-negative integer");
    return value->get<uint64_t>();
  }

  base::Result<double> Number(const std::string& field) const {
    SC_ASSIGN_OR_RETURN(const Json* value, Get(field));
    if (!value->is_number()) return Error(field, "is not a number");
    return value->get<double>();
  }

  // An array of token ids, each in [0, vocab).
  base::Result<std::vector<int32_t>> Tokens(const std::string& field, uint32_t vocab) const {
    SC_ASSIGN_OR_RETURN(const Json* value, Get(field));
    if (!value->is_array() || value->empty()) return Error(field, "is not a non-empty array");
    std::vector<int32_t> tokens;
    for (const Json& element : *value) {
      if (!element.is_number_unsigned() || element.get<uint64_t>() >= vocab) {
        return Error(field, "holds " + element.dump() + ", not a token id below the vocabulary size " +
                                std::to_string(vocab));
      }
      tokens.push_back(static_cast<int32_t>(element.get<uint64_t>()));
    }
    return tokens;
  }

 private:
  const std::string& path_;
  const Json& json_;
};

bool IsLowerHex(const std::string& text) {
  return std::all_of(text.begin(), text.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

}  // namespace

base::Result<ForwardFixture> LoadForwardFixture(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return base::NotFound(path + ": cannot open the forward-pass fixture");
  std::stringstream text;
  text << in.rdbuf();
  Json json = Json::parse(text.str(), nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded() || !json.is_object()) {
    return base::InvalidArgument(path + ": not a JSON object");
  }
  FieldReader read(path, json);
  ForwardFixture f;
  f.path = path;
  SC_ASSIGN_OR_RETURN(std::string format, read.String("format"));
  if (format != kFormat) return read.Error("format", "is '" + format + "', expected '" + kFormat + "'");
  SC_ASSIGN_OR_RETURN(f.shape, read.String("shape"));
  SC_ASSIGN_OR_RETURN(std::string type_name, read.String("type"));
  auto type = ParseTensorTypeName(type_name);
  if (!type.ok() || ForwardTolerance(*type) == 0) {
    return read.Error("type", "is '" + type_name + "', not one of f32, f16, bf16, q8_0, q4_0");
  }
  f.type = *type;
  SC_ASSIGN_OR_RETURN(f.seed, read.Unsigned("seed"));
  SC_ASSIGN_OR_RETURN(f.gguf_sha256, read.String("gguf_sha256"));
  if (f.gguf_sha256.size() != 64 || !IsLowerHex(f.gguf_sha256)) {
    return read.Error("gguf_sha256", "is not 64 lower-case hex digits");
  }
  SC_ASSIGN_OR_RETURN(f.gguf_bytes, read.Unsigned("gguf_bytes"));
  SC_ASSIGN_OR_RETURN(f.architecture, read.String("architecture"));
  SC_ASSIGN_OR_RETURN(uint64_t vocab, read.Unsigned("vocab_size"));
  if (vocab == 0 || vocab > (1u << 20)) return read.Error("vocab_size", "is not in 1..1048576");
  f.vocab_size = static_cast<uint32_t>(vocab);
  SC_ASSIGN_OR_RETURN(f.tokens, read.Tokens("tokens", f.vocab_size));
  SC_ASSIGN_OR_RETURN(f.greedy_tokens, read.Tokens("greedy_tokens", f.vocab_size));

  SC_ASSIGN_OR_RETURN(const Json* margins, read.Get("greedy_margins"));
  if (!margins->is_array() || margins->size() != f.greedy_tokens.size()) {
    return read.Error("greedy_margins", "is not an array as long as greedy_tokens");
  }
  for (const Json& margin : *margins) {
    if (!margin.is_number() || !(margin.get<double>() >= 0)) {
      return read.Error("greedy_margins", "holds " + margin.dump() + ", not a non-negative number");
    }
    f.greedy_margins.push_back(margin.get<double>());
  }
  SC_ASSIGN_OR_RETURN(f.tolerance, read.Number("tolerance"));
  if (!(f.tolerance > 0 && f.tolerance < 1)) return read.Error("tolerance", "is not in (0, 1)");

  SC_ASSIGN_OR_RETURN(std::string encoded, read.String("logits"));
  std::string bytes;
  auto decoded = base::Base64Decode(encoded);
  if (!decoded.ok()) return read.Error("logits", "is not valid base64");
  bytes = std::move(*decoded);
  const uint64_t expected_bytes = uint64_t{4} * f.tokens.size() * f.vocab_size;
  if (bytes.size() != expected_bytes) {
    return read.Error("logits", "holds " + std::to_string(bytes.size()) + " bytes, expected " +
                                    std::to_string(expected_bytes) + " (tokens x vocab_size float32)");
  }
  f.logits.assign(f.tokens.size(), std::vector<float>(f.vocab_size));
  for (size_t p = 0; p < f.tokens.size(); ++p) {
    for (uint32_t v = 0; v < f.vocab_size; ++v) {
      const unsigned char* b =
          reinterpret_cast<const unsigned char*>(bytes.data()) + 4 * (p * f.vocab_size + v);
      uint32_t bits = uint32_t{b[0]} | uint32_t{b[1]} << 8 | uint32_t{b[2]} << 16 | uint32_t{b[3]} << 24;
      float value = std::bit_cast<float>(bits);
      if (!std::isfinite(value)) {
        return read.Error("logits", "holds a non-finite value at position " + std::to_string(p) +
                                        ", token " + std::to_string(v));
      }
      f.logits[p][v] = value;
    }
  }
  return f;
}

base::Result<std::vector<std::string>> ListForwardFixtures(const std::string& directory) {
  std::error_code error;
  std::vector<std::string> paths;
  for (std::filesystem::directory_iterator it(directory, error), end; !error && it != end;
       it.increment(error)) {
    if (it->path().extension() == ".json") paths.push_back(it->path().string());
  }
  if (error) return base::NotFound(directory + ": cannot list the fixtures: " + error.message());
  std::sort(paths.begin(), paths.end());
  return paths;
}

double ForwardTolerance(TensorType type) {
  switch (type) {
    case TensorType::kF32: return 1e-4;
    case TensorType::kF16: return 4e-3;
    case TensorType::kBF16: return 2e-2;
    case TensorType::kQ8_0: return 6e-2;
    case TensorType::kQ4_0: return 6e-2;
    default: return 0;
  }
}

double MaxErrorRelativeToRowMax(std::span<const float> expected, std::span<const float> actual) {
  double max_expected = 0, max_error = 0;
  for (size_t i = 0; i < expected.size(); ++i) {
    max_expected = std::max(max_expected, std::fabs(static_cast<double>(expected[i])));
    double error = std::fabs(static_cast<double>(actual[i]) - expected[i]);
    if (std::isnan(error)) return std::numeric_limits<double>::infinity();
    max_error = std::max(max_error, error);
  }
  return max_error / max_expected;
}

size_t ComparableGreedyTokens(const ForwardFixture& fixture, double tolerance) {
  double largest = 0;
  for (const std::vector<float>& row : fixture.logits) {
    for (float value : row) largest = std::max(largest, std::fabs(static_cast<double>(value)));
  }
  size_t count = 0;
  while (count < fixture.greedy_tokens.size() && count < fixture.greedy_margins.size() &&
         fixture.greedy_margins[count] >= 2 * tolerance * largest) {
    ++count;
  }
  return count;
}

base::Result<std::string> Sha256OfFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return base::NotFound(path + ": cannot open");
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> context(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  if (!context || EVP_DigestInit_ex(context.get(), EVP_sha256(), nullptr) != 1) {
    return base::Internal("sha256: OpenSSL digest initialisation failed");
  }
  char buffer[1 << 16];
  while (in) {
    in.read(buffer, sizeof(buffer));
    if (in.gcount() > 0 && EVP_DigestUpdate(context.get(), buffer, static_cast<size_t>(in.gcount())) != 1) {
      return base::Internal("sha256: OpenSSL digest update failed");
    }
  }
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (EVP_DigestFinal_ex(context.get(), digest, &length) != 1) {
    return base::Internal("sha256: OpenSSL digest finalisation failed");
  }
  static const char kHex[] = "0123456789abcdef";
  std::string hex;
  for (unsigned int i = 0; i < length; ++i) {
    hex.push_back(kHex[digest[i] >> 4]);
    hex.push_back(kHex[digest[i] & 15]);
  }
  return hex;
}

base::Result<std::string> SynthesizeFixtureModel(const ForwardFixture& fixture,
                                                 const std::string& directory) {
  SC_ASSIGN_OR_RETURN(SynthShape shape, FindSynthShape(fixture.shape));
  SynthOptions options{shape, fixture.type, fixture.seed};
  std::string path = directory + "/" + fixture.shape + "-" + std::string(TensorTypeName(fixture.type)) +
                     "-" + std::to_string(fixture.seed) + ".gguf";
  SC_RETURN_IF_ERROR(WriteSynthModel(options, path));
  SC_ASSIGN_OR_RETURN(std::string sha256, Sha256OfFile(path));
  std::error_code error;
  uint64_t size = std::filesystem::file_size(path, error);
  if (sha256 != fixture.gguf_sha256 || error || size != fixture.gguf_bytes) {
    return base::FailedPrecondition(
        fixture.path + ": the model synth writes today (" + path + ", sha256 " + sha256 + ", " +
        std::to_string(size) + " bytes) is not the file the fixture was made from (sha256 " +
        fixture.gguf_sha256 + ", " + std::to_string(fixture.gguf_bytes) +
        " bytes); if the synth change is intended, regenerate the fixtures with "
        "tools/reference/make_fixtures.py");
  }
  return path;
}

}  // namespace supercluster::engine
