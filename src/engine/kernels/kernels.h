// The CPU compute kernels of the inference engine: matrix-vector and matrix-matrix products
// over weights in their stored formats (tensor_type.h), and the small vector operations of a
// Llama forward pass (RMSNorm, softmax, SwiGLU, RoPE, attention dot/AXPY over a KV cache).
// The forward pass (src/engine) calls these; nothing else should need to.
//
// Each operation has a portable C++ implementation and an AVX2+FMA+F16C one. DefaultKernels()
// picks AVX2 when CPUID says the CPU has it, unless the environment variable
// SUPERCLUSTER_KERNELS=portable forces the portable path (for comparisons and tests);
// KernelsFor() gives either path explicitly. The binary runs on any x86-64 (or other) CPU.
//
// Quantized weights (Q8_0, Q4_0): the input vector is quantized once to Q8_0 (the rule in
// quantize.h) and each output is a sum over 32-element blocks of an exact integer dot product
// of weight codes and input codes, times the two block scales. Weight rows are never
// expanded to F32 (the approach of llama.cpp): the kernel reads 34 or 18 bytes per 32
// weights instead of 128. The price is the input's quantization error: relative to the
// exact product of the dequantized weights and the F32 input, an output is off by at most
// sum_b |d_w,b| * sum_i |w_q,i| * d_x,b * (1/2 + 127/2048), where d_x,b = max|x in block b|/127
// (half a quantization step per element, plus the half-precision rounding of the stored
// input scale), plus float rounding; the tests check exactly this bound.
//
// Determinism: the value of every output depends only on the kernel path, the weight row
// and the input row, never on the thread count, the pool's part boundaries, M, or where a
// row falls in a tile. MatMul's row m is bit-identical to MatVec of X's row m (same path).
//
// Threads: MatVec and MatMul split the weight rows over `pool` (nullptr runs on the calling
// thread). The other operations are single-threaded; the forward pass parallelises over
// heads or tokens itself. Kernels objects are immutable and may be used from any thread.
//
// Preconditions (not checked on the hot path; CheckWeightMatrix checks a weight at load
// time): pointers are valid for the sizes given; outputs do not overlap inputs unless said;
// quantized weights have cols % 32 == 0.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "base/status.h"
#include "base/thread_pool.h"
#include "engine/kernels/tensor_type.h"

namespace supercluster::engine::kernels {

enum class KernelPath { kPortable, kAvx2 };

// "portable" or "avx2".
const char* KernelPathName(KernelPath path);

// A weight matrix as stored in a model file: `rows` (N, output features) rows of `cols`
// (K, input features) elements; row r starts at data + r * RowBytes(type, cols).
struct WeightMatrix {
  TensorType type = TensorType::kF32;
  const void* data = nullptr;
  int64_t rows = 0;
  int64_t cols = 0;
};

// OK if `weight` can be passed to MatVec/MatMul; else InvalidArgument naming `name` and the
// problem (null data, negative sizes, cols not a multiple of 32 for a quantized type).
base::Status CheckWeightMatrix(const WeightMatrix& weight, const char* name);

// Order of the element pairs that RoPE rotates within one head.
enum class RopeOrder {
  kInterleaved,  // pairs (2i, 2i+1): original Llama / GPT-J, ggml's "normal" mode
  kNeox,         // pairs (i, i + rotary_dim/2): GPT-NeoX, HF Llama checkpoints
};

// The RoPE inverse frequency table: theta^(-2i / rotary_dim) for i in [0, rotary_dim/2).
// Callers apply frequency scaling (Llama 3's rope_scaling, linear scaling) to this table
// before passing it to Kernels::Rope. Precondition: rotary_dim even and > 0, theta > 0.
std::vector<float> RopeInverseFrequencies(int rotary_dim, double theta);

struct KernelTable;  // the per-path function table (kernel_table.h), internal

class Kernels {
 public:
  KernelPath path() const;

  // y[n] = sum_k W[n][k] * x[k] for n in [0, W.rows). x has W.cols elements, y W.rows.
  void MatVec(const WeightMatrix& w, std::span<const float> x, std::span<float> y,
              base::ThreadPool* pool) const;

  // Y[m][n] = sum_k X[m][k] * W[n][k]: X is M x W.cols row-major (M = x.size() / W.cols),
  // Y is M x W.rows row-major. Each weight block is read once per tile of up to 4 X rows,
  // so for M >= 2 this is much faster than M MatVec calls. Precondition:
  // x.size() == M * W.cols and y.size() == M * W.rows.
  void MatMul(const WeightMatrix& w, std::span<const float> x, std::span<float> y,
              base::ThreadPool* pool) const;

  // out[i] = x[i] / sqrt(mean(x^2) + epsilon) * weight[i]. All spans the same size;
  // out may be x.
  void RmsNorm(std::span<const float> x, std::span<const float> weight, float epsilon,
               std::span<float> out) const;

  // x = exp(x - max x) / sum exp(x - max x), in place. Entries of -infinity become 0 (a
  // masked position); at least one entry must be finite.
  void Softmax(std::span<float> x) const;

  // out[i] = silu(gate[i]) * up[i], silu(g) = g / (1 + exp(-g)). out may be gate or up.
  void SiluMul(std::span<const float> gate, std::span<const float> up,
               std::span<float> out) const;

  // out[i] = a[i] + b[i]. out may be a or b.
  void Add(std::span<const float> a, std::span<const float> b, std::span<float> out) const;

  // x[i] *= factor.
  void Scale(std::span<float> x, float factor) const;

  // Rotates each head of each token in place. x holds positions.size() tokens, each
  // head_count * head_dim floats (heads contiguous). Within a head the first
  // 2 * inverse_frequencies.size() (= rotary_dim <= head_dim) elements are rotated in pairs
  // (see RopeOrder) by the angle positions[t] * inverse_frequencies[i]; the rest are kept.
  // Angles are computed in double precision. Same code on both paths.
  void Rope(std::span<float> x, std::span<const int32_t> positions, int head_count,
            int head_dim, std::span<const float> inverse_frequencies, RopeOrder order) const;

  // Attention over a KV cache: sum a[i] * b[i], with a (a cached key) in F32 or F16.
  float Dot(std::span<const float> a, std::span<const float> b) const;
  float DotF16(std::span<const uint16_t> a_f16, std::span<const float> b) const;

  // y[i] += alpha * x[i], with x (a cached value) in F32 or F16.
  void Axpy(float alpha, std::span<const float> x, std::span<float> y) const;
  void AxpyF16(float alpha, std::span<const uint16_t> x_f16, std::span<float> y) const;

  // Row conversions (F16C on the AVX2 path; exact, and rounding as Fp32ToFp16 in half.h).
  void ConvertF16ToF32(std::span<const uint16_t> in, std::span<float> out) const;
  void ConvertF32ToF16(std::span<const float> in, std::span<uint16_t> out) const;
  void ConvertBf16ToF32(std::span<const uint16_t> in, std::span<float> out) const;

  // Quantizes x (size a multiple of 32) into x.size()/32 blocks, as QuantizeRowQ8_0.
  void QuantizeQ8_0(std::span<const float> x, std::span<BlockQ8_0> out) const;

  // Internal: callers get Kernels from DefaultKernels() or KernelsFor().
  explicit Kernels(const KernelTable* table) : table_(table) {}

 private:
  const KernelTable* table_;
};

// The AVX2 kernels if the CPU supports AVX2, FMA and F16C and SUPERCLUSTER_KERNELS is not
// "portable"; else the portable ones. Decided once, on first call.
const Kernels& DefaultKernels();

// The kernels of one path, or nullptr if this CPU cannot run it (kAvx2 on a CPU without
// AVX2/FMA/F16C, or a build for another architecture). Ignores SUPERCLUSTER_KERNELS.
const Kernels* KernelsFor(KernelPath path);

}  // namespace supercluster::engine::kernels
