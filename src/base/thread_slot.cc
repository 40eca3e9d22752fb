#include "base/thread_slot.h"

#include <atomic>

namespace supercluster::base {

uint64_t NewThreadSlotOwnerId() {
  static std::atomic<uint64_t> next_id{1};
  return next_id.fetch_add(1, std::memory_order_relaxed);
}

}  // namespace supercluster::base
