// Shared pieces of the kernel tests: the parameterisation over kernel paths (AVX2 tests skip
// with a message on a CPU without AVX2/FMA/F16C) and seeded random data.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "engine/kernels/kernels.h"

namespace supercluster::engine::kernels {

class KernelPathTest : public ::testing::TestWithParam<KernelPath> {
 protected:
  void SetUp() override {
    kernels_ = KernelsFor(GetParam());
    if (kernels_ == nullptr) {
      GTEST_SKIP() << "this CPU lacks AVX2/FMA/F16C; the AVX2 path cannot be tested here";
    }
  }
  const Kernels& kernels() const { return *kernels_; }

 private:
  const Kernels* kernels_ = nullptr;
};

inline std::string KernelPathTestName(const ::testing::TestParamInfo<KernelPath>& info) {
  return KernelPathName(info.param);
}

#define SC_INSTANTIATE_KERNEL_PATHS(suite)                                                 \
  INSTANTIATE_TEST_SUITE_P(Paths, suite,                                                   \
                           ::testing::Values(KernelPath::kPortable, KernelPath::kAvx2),     \
                           KernelPathTestName)

inline std::vector<float> RandomFloats(size_t n, uint32_t seed, float low = -1.0f,
                                       float high = 1.0f) {
  std::mt19937 generator(seed);
  std::uniform_real_distribution<float> distribution(low, high);
  std::vector<float> values(n);
  for (float& v : values) v = distribution(generator);
  return values;
}

}  // namespace supercluster::engine::kernels
