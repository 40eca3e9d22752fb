#include "base/thread_slot.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace supercluster::base {
namespace {

// Each test uses Slot types of its own: a thread's slots are per type, and the tests share
// the main thread.

TEST(ThreadSlotTest, AnOwnerFindsWhatItLeftInItsSlot) {
  struct Slot {
    std::string value;
  };
  const uint64_t owner = NewThreadSlotOwnerId();
  EXPECT_EQ(ThreadSlotOf<Slot>(owner).value, "");
  ThreadSlotOf<Slot>(owner).value = "kept";
  EXPECT_EQ(ThreadSlotOf<Slot>(owner).value, "kept");
  EXPECT_EQ(&ThreadSlotOf<Slot>(owner), &ThreadSlotOf<Slot>(owner));
}

TEST(ThreadSlotTest, OwnersKeepTheirSlotsApart) {
  struct Slot {
    int value = 0;
  };
  auto slot_of = [](uint64_t owner) -> Slot& { return ThreadSlotOf<Slot, 2>(owner); };
  const uint64_t first = NewThreadSlotOwnerId();
  const uint64_t second = NewThreadSlotOwnerId();
  slot_of(first).value = 1;
  slot_of(second).value = 2;
  EXPECT_EQ(slot_of(first).value, 1);
  EXPECT_EQ(slot_of(second).value, 2);
}

TEST(ThreadSlotTest, EachThreadHasItsOwnSlot) {
  struct Slot {
    int value = 0;
  };
  const uint64_t owner = NewThreadSlotOwnerId();
  ThreadSlotOf<Slot>(owner).value = 7;
  int seen_by_other_thread = -1;
  Slot* other_threads_slot = nullptr;
  std::thread other([&] {
    Slot& slot = ThreadSlotOf<Slot>(owner);
    seen_by_other_thread = slot.value;
    slot.value = 9;
    other_threads_slot = &slot;
  });
  other.join();
  EXPECT_EQ(seen_by_other_thread, 0);
  EXPECT_NE(other_threads_slot, &ThreadSlotOf<Slot>(owner));
  EXPECT_EQ(ThreadSlotOf<Slot>(owner).value, 7);
}

TEST(ThreadSlotTest, AnOwnerBeyondTheSlotsTakesTheOneHandedOutLongestAgo) {
  struct Slot {
    int value = 0;
  };
  auto slot_of = [](uint64_t owner) -> Slot& { return ThreadSlotOf<Slot, 3>(owner); };
  std::vector<uint64_t> owners;
  for (int i = 0; i < 4; ++i) owners.push_back(NewThreadSlotOwnerId());
  for (int i = 0; i < 3; ++i) slot_of(owners[i]).value = i + 1;
  // Owner 0's slot goes to owner 3, emptied first.
  EXPECT_EQ(slot_of(owners[3]).value, 0);
  slot_of(owners[3]).value = 4;
  EXPECT_EQ(slot_of(owners[1]).value, 2);
  EXPECT_EQ(slot_of(owners[2]).value, 3);
  EXPECT_EQ(slot_of(owners[3]).value, 4);
  // Owner 0 comes back empty, in the slot owner 1 had (handed out longest ago now).
  EXPECT_EQ(slot_of(owners[0]).value, 0);
  EXPECT_EQ(slot_of(owners[1]).value, 0);
}

TEST(ThreadSlotTest, OwnerIdsAreUniqueAcrossThreadsAndNeverZero) {
  constexpr int kThreads = 4;
  constexpr int kIdsPerThread = 10000;
  std::vector<std::vector<uint64_t>> ids(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&ids, t] {
      for (int i = 0; i < kIdsPerThread; ++i) ids[t].push_back(NewThreadSlotOwnerId());
    });
  }
  for (auto& thread : threads) thread.join();
  std::set<uint64_t> all;
  for (const auto& some : ids) all.insert(some.begin(), some.end());
  EXPECT_EQ(all.size(), size_t{kThreads} * kIdsPerThread);
  EXPECT_EQ(all.count(0), 0u);
}

}  // namespace
}  // namespace supercluster::base
