#include "router/requested_model.h"

#include <cstddef>
#include <cstdint>
#include <utility>

#include <nlohmann/json.hpp>

namespace supercluster::router {
namespace {

using json = nlohmann::json;

// A SAX handler that follows the nesting depth and keeps the value of the top-level
// "model" key. Every event returns true (go on) except a parse error.
class ModelFinder {
 public:
  bool null() { return OtherValue(); }
  bool boolean(bool) { return OtherValue(); }
  bool number_integer(json::number_integer_t) { return OtherValue(); }
  bool number_unsigned(json::number_unsigned_t) { return OtherValue(); }
  bool number_float(json::number_float_t, const json::string_t&) { return OtherValue(); }
  bool binary(json::binary_t&) { return OtherValue(); }
  bool string(json::string_t& value) {
    if (!NextIsModel()) return true;
    next_is_model_ = false;
    model_ = std::move(value);
    model_is_string_ = true;
    return true;
  }
  bool start_object(std::size_t) {
    if (depth_ == 0) top_is_object_ = true;
    OtherValue();
    ++depth_;
    return true;
  }
  bool end_object() {
    --depth_;
    return true;
  }
  bool start_array(std::size_t) {
    OtherValue();
    ++depth_;
    return true;
  }
  bool end_array() {
    --depth_;
    return true;
  }
  bool key(json::string_t& name) {
    if (depth_ == 1) next_is_model_ = name == "model";
    return true;
  }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) {
    return false;
  }

  RequestedModel Result() && {
    RequestedModel result;
    if (!top_is_object_) return result;  // kNotAnObject
    if (!model_is_string_ || model_.empty()) {
      result.problem = RequestedModel::Problem::kNoModel;
      return result;
    }
    result.problem = RequestedModel::Problem::kNone;
    result.model = std::move(model_);
    return result;
  }

 private:
  bool NextIsModel() const { return depth_ == 1 && next_is_model_; }

  // A value other than a string: if it is the model key's, the model is not a string (a
  // later "model" key may still give one).
  bool OtherValue() {
    if (NextIsModel()) {
      next_is_model_ = false;
      model_is_string_ = false;
      model_.clear();
    }
    return true;
  }

  int64_t depth_ = 0;
  bool top_is_object_ = false;
  bool next_is_model_ = false;  // the last top-level key was "model" and its value is next
  bool model_is_string_ = false;
  std::string model_;
};

}  // namespace

RequestedModel ReadRequestedModel(std::string_view body) {
  ModelFinder finder;
  if (!json::sax_parse(body, &finder)) return RequestedModel{};
  return std::move(finder).Result();
}

}  // namespace supercluster::router
