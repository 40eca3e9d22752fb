// A value derived from a PrefixCache's copy (the tenant gate's index of API keys, the
// decoded list of other regions' routers) for the request path: derived again only when
// the copy changes (PrefixCache::Version), and read per request from a reference each
// thread keeps. When nothing changed since a thread last asked, a read is one atomic load
// and writes nothing another thread shares (no lock, no reference count), so the io
// threads of a server never pass a cache line between them for it.
//
// Callers: router::PeerDirectory, router::TenantGate. Thread-safe.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <utility>

#include "base/thread_slot.h"
#include "store/prefix_cache.h"

namespace supercluster::store {

template <class T>
class DerivedView {
 public:
  // Makes T from a snapshot of the cache's copy, or from nullptr when there is no cache.
  using Derive = std::function<T(const PrefixSnapshot* snapshot)>;

  // `cache` may be null: the value is then derived once. `derive` runs outside any lock,
  // on whichever thread first asks after a change; two threads may derive at once (the
  // one for the newer version is kept). Precondition: `cache` outlives the view.
  DerivedView(const PrefixCache* cache, Derive derive)
      : cache_(cache), derive_(std::move(derive)) {}
  DerivedView(const DerivedView&) = delete;
  DerivedView& operator=(const DerivedView&) = delete;

  // The value for the cache's copy now. Valid until the calling thread calls Current
  // again on any DerivedView<T> (each thread keeps one copy per T).
  const T& Current() const {
    struct ThreadCopy {
      uint64_t version = 0;
      std::shared_ptr<const T> value;  // null: not filled yet
    };
    ThreadCopy& copy = base::ThreadSlotOf<ThreadCopy>(thread_slot_owner_);
    // The version first: a snapshot read after it is at least that new.
    const uint64_t version = cache_ != nullptr ? cache_->Version() : 0;
    if (copy.value != nullptr && copy.version == version) return *copy.value;
    std::shared_ptr<const T> value;
    uint64_t value_version = 0;
    {
      std::lock_guard lock(mutex_);
      // Versions only grow: one derived for a newer version than this thread read is
      // taken as it is.
      if (derived_ && derived_version_ >= version) {
        value = derived_;
        value_version = derived_version_;
      }
    }
    if (!value) {
      std::shared_ptr<const PrefixSnapshot> snapshot =
          cache_ != nullptr ? cache_->Snapshot() : nullptr;
      auto fresh = std::make_shared<const T>(derive_(snapshot.get()));
      std::lock_guard lock(mutex_);
      if (!derived_ || derived_version_ < version) {
        derived_ = std::move(fresh);
        derived_version_ = version;
      }
      value = derived_;
      value_version = derived_version_;
    }
    copy.version = value_version;
    copy.value = std::move(value);
    return *copy.value;
  }

 private:
  const PrefixCache* const cache_;
  const Derive derive_;
  const uint64_t thread_slot_owner_ = base::NewThreadSlotOwnerId();  // of ThreadCopy

  mutable std::mutex mutex_;  // guards what follows
  mutable std::shared_ptr<const T> derived_;
  mutable uint64_t derived_version_ = 0;  // the cache's version derived_ was made for
};

}  // namespace supercluster::store
