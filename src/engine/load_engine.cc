#include "engine/load_engine.h"

#include "engine/model_tokenizer.h"

namespace supercluster::engine {

EngineLoadOptions EngineLoadOptions::FromConfig(const base::Config& config,
                                                std::string model_path) {
  EngineLoadOptions options;
  options.model_path = std::move(model_path);
  options.backend.threads = static_cast<int>(config.GetInt("engine.threads"));
  options.backend.kv_cache_bytes = static_cast<size_t>(config.GetInt("engine.kv_cache_bytes"));
  options.engine.max_running = static_cast<int32_t>(config.GetInt("engine.max_running"));
  options.engine.max_queued = static_cast<int32_t>(config.GetInt("engine.max_queued"));
  return options;
}

base::Result<std::unique_ptr<Engine>> LoadEngine(const EngineLoadOptions& options) {
  SC_ASSIGN_OR_RETURN(std::unique_ptr<ModelFile> model, ModelFile::Open(options.model_path));
  SC_ASSIGN_OR_RETURN(std::unique_ptr<Tokenizer> tokenizer, LoadTokenizer(*model));
  SC_ASSIGN_OR_RETURN(std::unique_ptr<CpuBackend> backend,
                      CpuBackend::Create(std::move(model), options.backend));
  return Engine::Create(std::move(backend), std::shared_ptr<const Tokenizer>(std::move(tokenizer)),
                        options.engine);
}

}  // namespace supercluster::engine
