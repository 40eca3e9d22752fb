// libFuzzer target for the router's reader of OpenAI-style request bodies
// (router/requested_model.h), which sees every plaintext request body a client sends.
// Built by tests/fuzz/CMakeLists.txt (SUPERCLUSTER_FUZZ=ON), run by tests/fuzz/run.sh.
//
// Input: the body. Checks besides "no crash, no leak, no UB": the reader agrees with a full
// nlohmann parse of the same bytes (the oracle; what the router did before and what the
// worker does) on whether the body is a JSON object, whether it has a non-empty top-level
// "model" string, and which string that is.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "router/requested_model.h"

namespace {

using supercluster::router::ReadRequestedModel;
using supercluster::router::RequestedModel;

RequestedModel FullParse(std::string_view body) {
  const nlohmann::json parsed = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded() || !parsed.is_object()) {
    return {RequestedModel::Problem::kNotAnObject, ""};
  }
  auto model = parsed.find("model");
  if (model == parsed.end() || !model->is_string() || model->get<std::string>().empty()) {
    return {RequestedModel::Problem::kNoModel, ""};
  }
  return {RequestedModel::Problem::kNone, model->get<std::string>()};
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  const RequestedModel actual = ReadRequestedModel(body);
  const RequestedModel expected = FullParse(body);
  if (actual.problem != expected.problem || actual.model != expected.model) {
    std::fprintf(stderr, "requested_model_fuzz: reader and full parse disagree (%d '%s' vs %d '%s')\n",
                 static_cast<int>(actual.problem), actual.model.c_str(),
                 static_cast<int>(expected.problem), expected.model.c_str());
    std::abort();
  }
  return 0;
}
