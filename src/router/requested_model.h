// What the router reads from the JSON body of an OpenAI-style request (POST /v1/completions,
// /v1/chat/completions): the top-level "model" string, and nothing else. The router routes
// on it; the worker parses the whole request.
//
// The body is checked to be one well-formed JSON object exactly as nlohmann's parser (the
// worker's) would check it, but nothing else is kept: a scanner of its own walks the text
// once. It replaced a full parse (8 more memory allocations per proxied request), then
// nlohmann's SAX parser (7 % of the router's instructions per request). Its tests use a
// full nlohmann parse as the oracle. When "model" appears more than once at the top level,
// the last one counts, as in a full parse.
#pragma once

#include <string>
#include <string_view>

namespace supercluster::router {

struct RequestedModel {
  enum class Problem {
    kNone,         // `model` holds a non-empty string
    kNotAnObject,  // not JSON, truncated, trailing bytes, or not an object at the top
    kNoModel,      // an object, but its "model" is missing, not a string, or empty
  };
  Problem problem = Problem::kNotAnObject;
  std::string model;
};

RequestedModel ReadRequestedModel(std::string_view body);

}  // namespace supercluster::router
