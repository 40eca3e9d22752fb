// The public face of the kernels: path selection, the threading of matrix products, and
// RoPE (the same scalar code on both paths: it touches each element once and its cost is
// the sines and cosines, computed once per token).
#include "engine/kernels/kernels.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>

#include "engine/kernels/kernel_table.h"

namespace supercluster::engine::kernels {
namespace {

// Smallest number of multiply-adds worth handing to another thread: below this the wake-up
// and hand-off cost more than they save.
constexpr int64_t kMinMultiplyAddsPerPart = 64 * 1024;

int64_t RowsPerGrain(int64_t multiply_adds_per_row) {
  const int64_t rows = kMinMultiplyAddsPerPart / std::max<int64_t>(multiply_adds_per_row, 1);
  return std::max<int64_t>(4, (rows + 3) / 4 * 4);
}

}  // namespace

const char* KernelPathName(KernelPath path) {
  return path == KernelPath::kAvx2 ? "avx2" : "portable";
}

base::Status CheckWeightMatrix(const WeightMatrix& weight, const char* name) {
  const std::string prefix = std::string("weight '") + name + "' (" +
                             TensorTypeName(weight.type) + ", " + std::to_string(weight.rows) +
                             " x " + std::to_string(weight.cols) + "): ";
  if (weight.rows < 0 || weight.cols < 0) return base::InvalidArgument(prefix + "negative size");
  if (weight.data == nullptr && weight.rows > 0 && weight.cols > 0) {
    return base::InvalidArgument(prefix + "no data");
  }
  if (IsQuantized(weight.type) && weight.cols % kQuantBlockSize != 0) {
    return base::InvalidArgument(prefix + "a quantized row must hold a multiple of " +
                                 std::to_string(kQuantBlockSize) + " elements");
  }
  return base::Status::Ok();
}

std::vector<float> RopeInverseFrequencies(int rotary_dim, double theta) {
  std::vector<float> inverse(static_cast<size_t>(rotary_dim / 2));
  for (size_t i = 0; i < inverse.size(); ++i) {
    inverse[i] = static_cast<float>(std::pow(theta, -2.0 * static_cast<double>(i) / rotary_dim));
  }
  return inverse;
}

KernelPath Kernels::path() const { return table_->path; }

void Kernels::MatVec(const WeightMatrix& w, std::span<const float> x, std::span<float> y,
                     base::ThreadPool* pool) const {
  assert(static_cast<int64_t>(x.size()) == w.cols && static_cast<int64_t>(y.size()) == w.rows);
  MatMul(w, x, y, pool);
}

void Kernels::MatMul(const WeightMatrix& w, std::span<const float> x, std::span<float> y,
                     base::ThreadPool* pool) const {
  if (w.rows == 0) return;
  if (w.cols == 0) {
    std::fill(y.begin(), y.end(), 0.0f);
    return;
  }
  const int64_t m_count = static_cast<int64_t>(x.size()) / w.cols;
  assert(m_count * w.cols == static_cast<int64_t>(x.size()));
  assert(m_count * w.rows == static_cast<int64_t>(y.size()));
  if (m_count == 0) return;

  const void* input = x.data();
  if (IsQuantized(w.type)) {
    // Quantize the inputs once; every weight row then reads the same Q8_0 blocks. The
    // buffer is per thread and only grows, so steady-state calls do not allocate.
    thread_local std::vector<BlockQ8_0> quantized_input;
    const int64_t blocks = w.cols / kQuantBlockSize;
    if (quantized_input.size() < static_cast<size_t>(m_count * blocks)) {
      quantized_input.resize(static_cast<size_t>(m_count * blocks));
    }
    BlockQ8_0* out = quantized_input.data();
    const float* in = x.data();
    auto quantize_rows = [&](int64_t begin, int64_t end) {
      for (int64_t m = begin; m < end; ++m) {
        table_->quantize_q8_0(in + m * w.cols, out + m * blocks, w.cols);
      }
    };
    if (pool != nullptr && m_count > 1) {
      pool->ParallelFor(m_count, quantize_rows);
    } else {
      quantize_rows(0, m_count);
    }
    input = out;
  }

  const MatMulRowsFunction rows = table_->matmul_rows[static_cast<int>(w.type)];
  float* out = y.data();
  auto compute_rows = [&](int64_t begin, int64_t end) { rows(w, input, m_count, out, begin, end); };
  if (pool != nullptr) {
    pool->ParallelFor(w.rows, RowsPerGrain(m_count * w.cols), compute_rows);
  } else {
    compute_rows(0, w.rows);
  }
}

void Kernels::RmsNorm(std::span<const float> x, std::span<const float> weight, float epsilon,
                      std::span<float> out) const {
  assert(weight.size() == x.size() && out.size() == x.size());
  if (x.empty()) return;
  table_->rms_norm(x.data(), weight.data(), epsilon, out.data(), static_cast<int64_t>(x.size()));
}

void Kernels::Softmax(std::span<float> x) const {
  table_->softmax(x.data(), static_cast<int64_t>(x.size()));
}

void Kernels::SiluMul(std::span<const float> gate, std::span<const float> up,
                      std::span<float> out) const {
  assert(up.size() == gate.size() && out.size() == gate.size());
  table_->silu_mul(gate.data(), up.data(), out.data(), static_cast<int64_t>(gate.size()));
}

void Kernels::Add(std::span<const float> a, std::span<const float> b, std::span<float> out) const {
  assert(b.size() == a.size() && out.size() == a.size());
  table_->add(a.data(), b.data(), out.data(), static_cast<int64_t>(a.size()));
}

void Kernels::Scale(std::span<float> x, float factor) const {
  table_->scale(x.data(), factor, static_cast<int64_t>(x.size()));
}

void Kernels::Rope(std::span<float> x, std::span<const int32_t> positions, int head_count,
                   int head_dim, std::span<const float> inverse_frequencies,
                   RopeOrder order) const {
  const int64_t pair_count = static_cast<int64_t>(inverse_frequencies.size());
  assert(2 * pair_count <= head_dim);
  assert(x.size() == positions.size() * static_cast<size_t>(head_count) * head_dim);
  thread_local std::vector<float> cosines;
  thread_local std::vector<float> sines;
  cosines.resize(static_cast<size_t>(pair_count));
  sines.resize(static_cast<size_t>(pair_count));
  for (size_t t = 0; t < positions.size(); ++t) {
    for (int64_t i = 0; i < pair_count; ++i) {
      const double angle = static_cast<double>(positions[t]) * inverse_frequencies[i];
      cosines[i] = static_cast<float>(std::cos(angle));
      sines[i] = static_cast<float>(std::sin(angle));
    }
    for (int h = 0; h < head_count; ++h) {
      float* head = x.data() + (t * static_cast<size_t>(head_count) + h) * head_dim;
      for (int64_t i = 0; i < pair_count; ++i) {
        const int64_t first = order == RopeOrder::kInterleaved ? 2 * i : i;
        const int64_t second = order == RopeOrder::kInterleaved ? 2 * i + 1 : i + pair_count;
        const float a = head[first];
        const float b = head[second];
        head[first] = a * cosines[i] - b * sines[i];
        head[second] = a * sines[i] + b * cosines[i];
      }
    }
  }
}

float Kernels::Dot(std::span<const float> a, std::span<const float> b) const {
  assert(a.size() == b.size());
  return table_->dot_f32(a.data(), b.data(), static_cast<int64_t>(a.size()));
}

float Kernels::DotF16(std::span<const uint16_t> a_f16, std::span<const float> b) const {
  assert(a_f16.size() == b.size());
  return table_->dot_f16(a_f16.data(), b.data(), static_cast<int64_t>(b.size()));
}

void Kernels::Axpy(float alpha, std::span<const float> x, std::span<float> y) const {
  assert(x.size() == y.size());
  table_->axpy_f32(alpha, x.data(), y.data(), static_cast<int64_t>(y.size()));
}

void Kernels::AxpyF16(float alpha, std::span<const uint16_t> x_f16, std::span<float> y) const {
  assert(x_f16.size() == y.size());
  table_->axpy_f16(alpha, x_f16.data(), y.data(), static_cast<int64_t>(y.size()));
}

void Kernels::ConvertF16ToF32(std::span<const uint16_t> in, std::span<float> out) const {
  assert(in.size() == out.size());
  table_->f16_to_f32(in.data(), out.data(), static_cast<int64_t>(in.size()));
}

void Kernels::ConvertF32ToF16(std::span<const float> in, std::span<uint16_t> out) const {
  assert(in.size() == out.size());
  table_->f32_to_f16(in.data(), out.data(), static_cast<int64_t>(in.size()));
}

void Kernels::ConvertBf16ToF32(std::span<const uint16_t> in, std::span<float> out) const {
  assert(in.size() == out.size());
  table_->bf16_to_f32(in.data(), out.data(), static_cast<int64_t>(in.size()));
}

void Kernels::QuantizeQ8_0(std::span<const float> x, std::span<BlockQ8_0> out) const {
  assert(x.size() % kQuantBlockSize == 0 && out.size() == x.size() / kQuantBlockSize);
  table_->quantize_q8_0(x.data(), out.data(), static_cast<int64_t>(x.size()));
}

const Kernels* KernelsFor(KernelPath path) {
  static const Kernels portable(&PortableKernelTable());
  if (path == KernelPath::kPortable) return &portable;
  static const KernelTable* avx2_table = Avx2KernelTable();
  static const Kernels avx2(avx2_table);
  return avx2_table != nullptr ? &avx2 : nullptr;
}

const Kernels& DefaultKernels() {
  static const Kernels* chosen = [] {
    const char* forced = std::getenv("SUPERCLUSTER_KERNELS");
    if (forced != nullptr && std::strcmp(forced, "portable") == 0) {
      return KernelsFor(KernelPath::kPortable);
    }
    const Kernels* avx2 = KernelsFor(KernelPath::kAvx2);
    return avx2 != nullptr ? avx2 : KernelsFor(KernelPath::kPortable);
  }();
  return *chosen;
}

}  // namespace supercluster::engine::kernels
