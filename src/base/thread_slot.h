// Per-thread slots for what an object keeps for each thread that uses it: a copy of a
// list, a reference to a derived value, a pointer looked up once under a lock. What a
// request then reads and writes is on its own thread's cache lines, and after a thread's
// first use no lock is taken. The router's io threads use it on every request:
// net::UpstreamClient's shards, router::Balancer's entries, router::WorkerDirectory's list
// of workers, router::TenantGate's tenants and counters, store::DerivedView's values,
// metrics::HttpMetrics's last series.
//
// A slot belongs to one owner, known by an id from NewThreadSlotOwnerId() (unique in the
// process, so an owner made later at a freed owner's address is still told apart). Each
// thread keeps kSlots slots of each Slot type, shared by every owner of that type it uses;
// an owner with none among them is given the one handed out longest ago, reset to Slot{}.
// So when a thread uses more than kSlots owners of a type, a slot may come back empty
// between two calls: an owner must treat Slot{} as "fill me", and may keep a reference to
// its slot only until the thread next asks for a slot of the same type.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

namespace supercluster::base {

// An id no other call in this process has returned; never 0.
uint64_t NewThreadSlotOwnerId();

// The calling thread's slot of type Slot for `owner_id`. Precondition: owner_id came from
// NewThreadSlotOwnerId(). Slot must be default-constructible and move-assignable.
template <class Slot, size_t kSlots = 1>
Slot& ThreadSlotOf(uint64_t owner_id) {
  static_assert(kSlots > 0);
  struct Entry {
    uint64_t owner_id = 0;  // 0: never handed out
    Slot slot{};
  };
  thread_local std::array<Entry, kSlots> entries;
  thread_local size_t next_to_reuse = 0;
  for (Entry& entry : entries) {
    if (entry.owner_id == owner_id) return entry.slot;
  }
  Entry& entry = entries[next_to_reuse];
  next_to_reuse = (next_to_reuse + 1) % kSlots;
  entry.owner_id = owner_id;
  entry.slot = Slot{};
  return entry.slot;
}

}  // namespace supercluster::base
