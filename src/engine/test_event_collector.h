// Test support: collects one engine request's events (engine.h) and waits for its last.
// Used by engine_test.cc and engine_cpu_test.cc; header-only, tests only.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "engine/engine.h"

namespace supercluster::engine::testing {

struct EventCollector {
  std::mutex mutex;
  std::condition_variable done;
  std::string text;
  std::vector<TokenId> tokens;
  std::optional<GenerationEvent> last;

  // The callback to Submit with; the collector must outlive the request.
  Engine::EventCallback Callback() {
    return [this](const GenerationEvent& event) {
      std::lock_guard lock(mutex);
      text += event.text;
      if (event.token != kNoToken) tokens.push_back(event.token);
      if (event.finished) {
        last = event;
        done.notify_all();
      }
    };
  }
  // The final event; fails the test if it does not come within a minute.
  GenerationEvent Wait() {
    std::unique_lock lock(mutex);
    EXPECT_TRUE(done.wait_for(lock, std::chrono::seconds(60), [this] { return last.has_value(); }))
        << "the request never finished";
    return last.value_or(GenerationEvent{});
  }
};

}  // namespace supercluster::engine::testing
