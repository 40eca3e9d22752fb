// Loading a model file into a ready Engine: the file (GGUF or safetensors), its tokenizer,
// the CPU backend and the scheduler, with the limits from the engine.* configuration keys.
// What `supercluster generate` and the worker call.
#pragma once

#include <memory>
#include <string>

#include "base/config.h"
#include "base/status.h"
#include "engine/cpu_backend.h"
#include "engine/engine.h"

namespace supercluster::engine {

struct EngineLoadOptions {
  std::string model_path;
  CpuBackendOptions backend;
  EngineOptions engine;

  // engine.threads, engine.kv_cache_bytes, engine.max_running, engine.max_queued.
  static EngineLoadOptions FromConfig(const base::Config& config, std::string model_path);
};

base::Result<std::unique_ptr<Engine>> LoadEngine(const EngineLoadOptions& options);

}  // namespace supercluster::engine
