// The merge loop shared by both BPE tokenizers: symbols in a doubly linked list and candidate
// pairs in a priority queue, so a text of n symbols costs O(n log n) rather than a rescan of
// every pair after every merge. Stale queue entries (a side already merged away) are skipped
// when popped. Called by bpe_sentencepiece.cc and bpe_byte_level.cc.
#pragma once

#include <cstddef>
#include <optional>
#include <queue>
#include <vector>

#include "engine/tokenizer_vocab.h"

namespace supercluster::engine {

struct BpeSymbol {
  size_t begin = 0;    // byte offset of the symbol's text in the caller's string
  size_t length = 0;   // 0 once merged into its left neighbour
  TokenId id = kNoToken;
  int prev = -1;
  int next = -1;
};

struct BpeMergeCandidate {
  double priority;     // higher merges first; ties go to the leftmost pair
  TokenId merged_id;
};

// Merges adjacent symbols while some pair has a candidate. pair_candidate(left, right)
// returns the merge of two adjacent symbols or nullopt. symbols must be linked in order
// (prev/next) with ascending begin. Returns the surviving symbols in order.
template <typename PairCandidate>
std::vector<BpeSymbol> MergeBpeSymbols(std::vector<BpeSymbol> symbols,
                                       const PairCandidate& pair_candidate) {
  struct Entry {
    double priority;
    int left;
    int right;
    size_t left_length;   // the sizes when queued: a change means the entry is stale
    size_t right_length;
    TokenId merged_id;
  };
  struct Lower {
    bool operator()(const Entry& a, const Entry& b) const {
      if (a.priority != b.priority) return a.priority < b.priority;
      return a.left > b.left;  // leftmost wins a tie
    }
  };
  std::priority_queue<Entry, std::vector<Entry>, Lower> queue;
  auto try_add = [&](int left, int right) {
    if (left < 0 || right < 0) return;
    std::optional<BpeMergeCandidate> candidate = pair_candidate(symbols[left], symbols[right]);
    if (!candidate) return;
    queue.push({candidate->priority, left, right, symbols[left].length,
                symbols[right].length, candidate->merged_id});
  };
  for (size_t i = 0; i + 1 < symbols.size(); ++i) try_add(static_cast<int>(i), symbols[i].next);

  while (!queue.empty()) {
    const Entry top = queue.top();
    queue.pop();
    BpeSymbol& left = symbols[top.left];
    BpeSymbol& right = symbols[top.right];
    if (left.length != top.left_length || right.length != top.right_length ||
        left.next != top.right || right.length == 0) {
      continue;
    }
    left.length += right.length;
    left.id = top.merged_id;
    right.length = 0;
    left.next = right.next;
    if (right.next >= 0) symbols[right.next].prev = top.left;
    try_add(left.prev, top.left);
    try_add(top.left, left.next);
  }

  std::vector<BpeSymbol> result;
  for (int i = symbols.empty() ? -1 : 0; i >= 0; i = symbols[i].next) result.push_back(symbols[i]);
  return result;
}

}  // namespace supercluster::engine
