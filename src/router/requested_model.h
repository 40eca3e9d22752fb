// What the router reads from the JSON body of an OpenAI-style request (POST /v1/completions,
// /v1/chat/completions): the top-level "model" string, and nothing else. The router routes
// on it; the worker parses the whole request.
//
// The body is checked to be one well-formed JSON object, as a full parse would, but no
// document is built: with a full parse the router made 8 more memory allocations per
// proxied request (69 instead of 61, counted at 16 connections). When "model" appears
// more than once at the top level, the last one counts, as in a full nlohmann parse (which
// the worker does).
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
