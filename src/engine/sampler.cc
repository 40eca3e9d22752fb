#include "engine/sampler.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <unordered_set>

namespace supercluster::engine {

base::Status SamplingParams::Validate() const {
  auto bad = [](const std::string& what) { return base::InvalidArgument("sampling: " + what); };
  if (!std::isfinite(temperature) || temperature < 0) return bad("temperature must be >= 0");
  if (top_k < 0) return bad("top_k must be >= 0");
  if (!std::isfinite(top_p) || top_p <= 0 || top_p > 1) return bad("top_p must be in (0, 1]");
  if (!std::isfinite(min_p) || min_p < 0 || min_p >= 1) return bad("min_p must be in [0, 1)");
  if (!std::isfinite(repetition_penalty) || repetition_penalty <= 0) {
    return bad("repetition_penalty must be > 0");
  }
  if (repetition_window < 0) return bad("repetition_window must be >= 0");
  return base::Status::Ok();
}

Sampler::Sampler(const SamplingParams& params) : params_(params), state_(params.seed) {}

double Sampler::NextUniform() {
  // SplitMix64: a fixed, well-mixed stream; the top 53 bits make a double in [0, 1).
  state_ += 0x9E3779B97F4A7C15ULL;
  uint64_t z = state_;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  z ^= z >> 31;
  return static_cast<double>(z >> 11) * 0x1.0p-53;
}

int32_t Sampler::Sample(std::span<const float> logits, std::span<const int32_t> recent) {
  candidates_.clear();
  candidates_.reserve(logits.size());
  for (size_t id = 0; id < logits.size(); ++id) {
    candidates_.emplace_back(logits[id], static_cast<int32_t>(id));
  }

  // Repetition penalty (as in CTRL and llama.cpp): divide positive logits, multiply
  // negative ones, once per distinct recent token.
  if (params_.repetition_penalty != 1.0f && params_.repetition_window > 0) {
    size_t window = std::min(recent.size(), static_cast<size_t>(params_.repetition_window));
    std::unordered_set<int32_t> seen(recent.end() - static_cast<ptrdiff_t>(window), recent.end());
    for (int32_t id : seen) {
      if (id < 0 || static_cast<size_t>(id) >= candidates_.size()) continue;
      float& logit = candidates_[static_cast<size_t>(id)].first;
      logit = logit > 0 ? logit / params_.repetition_penalty : logit * params_.repetition_penalty;
    }
  }

  // Highest logit first; ties by lower id, so greedy is deterministic.
  auto better = [](const std::pair<float, int32_t>& a, const std::pair<float, int32_t>& b) {
    return a.first != b.first ? a.first > b.first : a.second < b.second;
  };
  if (params_.temperature == 0.0f) {
    return std::min_element(candidates_.begin(), candidates_.end(), better)->second;
  }

  size_t keep = candidates_.size();
  if (params_.top_k > 0 && static_cast<size_t>(params_.top_k) < keep) {
    keep = static_cast<size_t>(params_.top_k);
    std::partial_sort(candidates_.begin(), candidates_.begin() + static_cast<ptrdiff_t>(keep),
                      candidates_.end(), better);
  } else {
    std::sort(candidates_.begin(), candidates_.end(), better);
  }
  candidates_.resize(keep);

  // Softmax at the temperature, in double for a stable sum.
  std::vector<double> probabilities(keep);
  double max_logit = candidates_.front().first;
  double total = 0;
  for (size_t i = 0; i < keep; ++i) {
    probabilities[i] = std::exp((candidates_[i].first - max_logit) / params_.temperature);
    total += probabilities[i];
  }
  for (double& p : probabilities) p /= total;

  // min-p: drop tokens less likely than min_p times the most likely one.
  if (params_.min_p > 0) {
    double floor = params_.min_p * probabilities.front();
    while (keep > 1 && probabilities[keep - 1] < floor) --keep;
  }
  // top-p: the smallest prefix whose mass reaches top_p.
  if (params_.top_p < 1.0f) {
    double mass = 0;
    size_t prefix = 0;
    while (prefix < keep) {
      mass += probabilities[prefix++];
      if (mass >= params_.top_p) break;
    }
    keep = prefix;
  }

  double kept_mass = 0;
  for (size_t i = 0; i < keep; ++i) kept_mass += probabilities[i];
  double target = NextUniform() * kept_mass;
  for (size_t i = 0; i < keep; ++i) {
    target -= probabilities[i];
    if (target < 0) return candidates_[i].second;
  }
  return candidates_[keep - 1].second;  // rounding left a sliver at the end
}

}  // namespace supercluster::engine
