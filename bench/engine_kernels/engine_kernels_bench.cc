// engine_kernels_bench: throughput of the engine's CPU kernels (src/engine/kernels) on the
// weight shapes of a small Llama (2048 x 2048 attention projections, 5632 x 2048 FFN), for
// F32, F16, BF16, Q8_0 and Q4_0 weights:
//   - MatVec (one token of decode): GFLOP/s (2 N K per call) and weight GB/s
//   - MatMul with M = 8 (a small batch or prefill chunk), against 8 MatVec calls
// each on the portable and the AVX2 path, with the ratio AVX2 / portable: the portable path
// is the anchor. Both paths run in the same process, alternately, on the same data.
//
// Usage: engine_kernels_bench [--threads N] [--seconds S]
//   --threads: ThreadPool size (default: the machine's hardware threads)
//   --seconds: time per measurement and path, split into 5 windows of which the fastest
//              counts (default 0.5)
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "base/thread_pool.h"
#include "engine/kernels/half.h"
#include "engine/kernels/kernels.h"
#include "engine/kernels/quantize.h"

namespace {

using namespace supercluster::engine::kernels;  // NOLINT: a benchmark's main file
using supercluster::base::ThreadPool;

std::string CpuModel() {
  std::ifstream cpuinfo("/proc/cpuinfo");
  std::string line;
  while (std::getline(cpuinfo, line)) {
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  }
  return "unknown CPU";
}

std::vector<uint8_t> MakeWeightBytes(TensorType type, int64_t rows, int64_t cols) {
  std::mt19937 generator(1);
  std::uniform_real_distribution<float> distribution(-1.0f, 1.0f);
  std::vector<float> row(static_cast<size_t>(cols));
  const int64_t row_bytes = RowBytes(type, cols);
  std::vector<uint8_t> bytes(static_cast<size_t>(rows * row_bytes));
  for (int64_t r = 0; r < rows; ++r) {
    for (float& v : row) v = distribution(generator);
    uint8_t* out = bytes.data() + r * row_bytes;
    for (int64_t i = 0; i < cols; ++i) {
      if (type == TensorType::kF32) std::memcpy(out + 4 * i, &row[i], 4);
      if (type == TensorType::kF16) reinterpret_cast<uint16_t*>(out)[i] = Fp32ToFp16(row[i]);
      if (type == TensorType::kBF16) reinterpret_cast<uint16_t*>(out)[i] = Fp32ToBf16(row[i]);
    }
    if (type == TensorType::kQ8_0) QuantizeRowQ8_0(row.data(), reinterpret_cast<BlockQ8_0*>(out), cols);
    if (type == TensorType::kQ4_0) QuantizeRowQ4_0(row.data(), reinterpret_cast<BlockQ4_0*>(out), cols);
  }
  return bytes;
}

// Seconds per call of fn, measured over at least min_seconds after one warm-up call.
// Callers keep the best of several such windows: on a shared machine the fastest window is
// the one least disturbed by other jobs.
template <typename Fn>
double SecondsPerCall(double min_seconds, Fn&& fn) {
  fn();
  int64_t calls = 0;
  const auto start = std::chrono::steady_clock::now();
  double elapsed = 0;
  do {
    fn();
    ++calls;
    elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  } while (elapsed < min_seconds);
  return elapsed / static_cast<double>(calls);
}

struct Measurement {
  double matvec_seconds;
  double matmul8_seconds;
  double eight_matvecs_seconds;
};

Measurement Measure(const Kernels& kernels, const WeightMatrix& w, ThreadPool& pool,
                    double min_seconds) {
  constexpr int64_t kBatch = 8;
  std::vector<float> x(static_cast<size_t>(kBatch * w.cols));
  std::mt19937 generator(2);
  std::uniform_real_distribution<float> distribution(-1.0f, 1.0f);
  for (float& v : x) v = distribution(generator);
  std::vector<float> y(static_cast<size_t>(kBatch * w.rows));
  const std::span<const float> x_all(x);
  const std::span<float> y_all(y);
  Measurement m;
  m.matvec_seconds = SecondsPerCall(min_seconds, [&] {
    kernels.MatVec(w, x_all.first(w.cols), y_all.first(w.rows), &pool);
  });
  m.matmul8_seconds = SecondsPerCall(min_seconds, [&] { kernels.MatMul(w, x_all, y_all, &pool); });
  m.eight_matvecs_seconds = SecondsPerCall(min_seconds, [&] {
    for (int64_t i = 0; i < kBatch; ++i) {
      kernels.MatVec(w, x_all.subspan(i * w.cols, w.cols), y_all.subspan(i * w.rows, w.rows), &pool);
    }
  });
  return m;
}

}  // namespace

int main(int argc, char** argv) {
  int threads = 0;
  double min_seconds = 0.5;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--threads") == 0 && i + 1 < argc) {
      threads = std::atoi(argv[++i]);
    } else if (std::strcmp(argv[i], "--seconds") == 0 && i + 1 < argc) {
      min_seconds = std::atof(argv[++i]);
    } else {
      std::fprintf(stderr, "usage: %s [--threads N] [--seconds S]\n", argv[0]);
      return 2;
    }
  }
  ThreadPool pool(threads);
  const Kernels& portable = *KernelsFor(KernelPath::kPortable);
  const Kernels* avx2 = KernelsFor(KernelPath::kAvx2);
  std::printf("machine: %s, %u hardware threads, pool of %d threads; shared with other jobs, "
              "so treat single numbers as rough and the ratios as the result\n",
              CpuModel().c_str(), std::thread::hardware_concurrency(), pool.thread_count());
  if (avx2 == nullptr) std::printf("AVX2/FMA/F16C not available: portable path only\n");
  {
    // The fixed cost of one ParallelFor that gives every thread a part: the floor under
    // each parallel kernel call.
    std::vector<int64_t> sink(static_cast<size_t>(pool.thread_count()) * 16);
    double best = 0;
    for (int round = 0; round < 5; ++round) {
      const double seconds = SecondsPerCall(min_seconds / 5, [&] {
        pool.ParallelFor(pool.thread_count(), [&](int64_t begin, int64_t end) {
          for (int64_t i = begin; i < end; ++i) sink[static_cast<size_t>(i) * 16] += 1;
        });
      });
      if (round == 0 || seconds < best) best = seconds;
    }
    std::printf("ParallelFor round trip over %d threads: %.2f us\n", pool.thread_count(),
                best * 1e6);
  }
  std::printf("%-5s %-11s %-9s %9s %8s %11s %12s %9s\n", "type", "N x K", "path",
              "matvec us", "GFLOP/s", "weight GB/s", "matmul8 GF/s", "vs 8 mv");

  const int64_t shapes[][2] = {{2048, 2048}, {5632, 2048}};
  const TensorType types[] = {TensorType::kF32, TensorType::kF16, TensorType::kBF16,
                              TensorType::kQ8_0, TensorType::kQ4_0};
  for (const auto& shape : shapes) {
    for (TensorType type : types) {
      const std::vector<uint8_t> bytes = MakeWeightBytes(type, shape[0], shape[1]);
      const WeightMatrix w{type, bytes.data(), shape[0], shape[1]};
      const double flops = 2.0 * static_cast<double>(w.rows * w.cols);
      const double weight_bytes = static_cast<double>(bytes.size());
      double matvec_gflops[2] = {0, 0}, matmul_gflops[2] = {0, 0};
      // Best of kRounds windows per path, the paths alternating so that a slow spell of the
      // machine hits both.
      constexpr int kRounds = 5;
      const Kernels* paths[2] = {&portable, avx2};
      Measurement best[2];
      for (int round = 0; round < kRounds; ++round) {
        for (int p = 0; p < 2; ++p) {
          if (paths[p] == nullptr) continue;
          const Measurement m = Measure(*paths[p], w, pool, min_seconds / kRounds);
          if (round == 0 || m.matvec_seconds < best[p].matvec_seconds) {
            best[p].matvec_seconds = m.matvec_seconds;
          }
          if (round == 0 || m.matmul8_seconds < best[p].matmul8_seconds) {
            best[p].matmul8_seconds = m.matmul8_seconds;
          }
          if (round == 0 || m.eight_matvecs_seconds < best[p].eight_matvecs_seconds) {
            best[p].eight_matvecs_seconds = m.eight_matvecs_seconds;
          }
        }
      }
      int path_index = 0;
      for (const Kernels* kernels : paths) {
        if (kernels == nullptr) continue;
        const Measurement& m = best[path_index];
        matvec_gflops[path_index] = flops / m.matvec_seconds / 1e9;
        matmul_gflops[path_index] = 8 * flops / m.matmul8_seconds / 1e9;
        const std::string dims = std::to_string(w.rows) + "x" + std::to_string(w.cols);
        std::printf("%-5s %-11s %-9s %9.1f %8.2f %11.2f %12.2f %8.2fx\n", TensorTypeName(type),
                    dims.c_str(), KernelPathName(kernels->path()), m.matvec_seconds * 1e6,
                    matvec_gflops[path_index], weight_bytes / m.matvec_seconds / 1e9,
                    matmul_gflops[path_index], m.eight_matvecs_seconds / m.matmul8_seconds);
        ++path_index;
      }
      if (path_index == 2) {
        std::printf("%-5s %-11s %-9s matvec %.2fx, matmul8 %.2fx\n", "", "", "avx2/port",
                    matvec_gflops[1] / matvec_gflops[0], matmul_gflops[1] / matmul_gflops[0]);
      }
    }
  }
  return 0;
}
