#include "enclave/enclave_core.h"

#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>

#include "attest/ec_p384_key.h"
#include "crypto/chunked_response.h"
#include "crypto/hpke.h"
#include "crypto/multi_recipient.h"
#include "crypto/random.h"
#include "enclave/identity.h"
#include "enclave/wipe_receipt.h"

namespace supercluster::enclave {
namespace {

using base::Result;
using base::Status;
using crypto::kInferenceLabels;

constexpr size_t kTimestampBytes = 8;

int64_t SystemClockMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::optional<Bytes> Optional(ByteView bytes) {
  if (bytes.empty()) return std::nullopt;
  return Bytes(bytes.begin(), bytes.end());
}

}  // namespace

Bytes TimestampedPayload(int64_t created_at_ms, ByteView body) {
  Bytes payload;
  for (int shift = 56; shift >= 0; shift -= 8) {
    payload.push_back(static_cast<uint8_t>(static_cast<uint64_t>(created_at_ms) >> shift));
  }
  payload.insert(payload.end(), body.begin(), body.end());
  return payload;
}

struct EnclaveCore::State {
  EnclaveOptions options;
  std::unique_ptr<attest::Attestor> attestor;
  Bytes identity;
  std::string hpke_public_key_hex;

  mutable std::mutex mutex;
  std::optional<crypto::HpkeKeyPair> key;
  crypto::OhttpKeyConfig key_config;
  std::optional<attest::EcP384Key> receipt_key;
  struct OpenContext {
    crypto::ChunkedResponseSealer sealer;
    int64_t last_used_ms;  // clock_ms when it was opened or last sealed a chunk
  };
  std::unordered_map<uint64_t, OpenContext> contexts;
  // Replay cache: every accepted request's enc, remembered for two freshness windows (a
  // request may be sealed up to one window in the future and replayed until one window
  // after its timestamp).
  std::unordered_set<std::string> seen;
  std::deque<std::pair<int64_t, std::string>> seen_order;
  EnclaveStats stats;

  // Drops the contexts unused for context_idle_timeout; called only when contexts is full,
  // so the scan (up to max_contexts entries) is rare.
  void DropIdleContexts(int64_t now_ms) {
    const int64_t oldest_kept = now_ms - options.context_idle_timeout.count();
    for (auto it = contexts.begin(); it != contexts.end();) {
      if (it->second.last_used_ms < oldest_kept) {
        it = contexts.erase(it);
        ++stats.contexts_closed;
      } else {
        ++it;
      }
    }
  }

  Status CheckNotWiped() const {
    if (stats.wiped) return base::FailedPrecondition("this enclave was wiped; it serves nothing");
    return Status::Ok();
  }
  void ForgetOldRequests(int64_t now_ms) {
    int64_t retention = 2 * options.freshness_window.count();
    while (!seen_order.empty() && seen_order.front().first < now_ms - retention) {
      seen.erase(seen_order.front().second);
      seen_order.pop_front();
    }
  }
  Status Refuse(Status status) {
    ++stats.requests_refused;
    return status;
  }
  Status CheckFresh(ByteView payload, int64_t now_ms) const {
    if (payload.size() < kTimestampBytes) {
      return base::InvalidArgument("sealed request has no timestamp");
    }
    uint64_t raw = 0;
    for (size_t i = 0; i < kTimestampBytes; ++i) raw = raw << 8 | payload[i];
    int64_t created_at_ms = static_cast<int64_t>(raw);
    int64_t window = options.freshness_window.count();
    if (created_at_ms < now_ms - window) {
      return base::PermissionDenied("request is stale: sealed " +
                                    std::to_string((now_ms - created_at_ms) / 1000) +
                                    " s ago, the freshness window is " +
                                    std::to_string(window / 1000) + " s");
    }
    if (created_at_ms > now_ms + window) {
      return base::PermissionDenied("request is from the future: sealed " +
                                    std::to_string((created_at_ms - now_ms) / 1000) +
                                    " s ahead of the enclave's clock");
    }
    return Status::Ok();
  }
};

EnclaveCore::EnclaveCore(std::unique_ptr<State> state) : state_(std::move(state)) {}
EnclaveCore::~EnclaveCore() = default;

Result<std::unique_ptr<EnclaveCore>> EnclaveCore::Create(
    EnclaveOptions options, std::unique_ptr<attest::Attestor> attestor) {
  if (!options.clock_ms) options.clock_ms = SystemClockMs;
  if (options.freshness_window.count() <= 0) {
    return base::InvalidArgument("enclave freshness window must be positive");
  }
  auto state = std::make_unique<State>();
  state->options = std::move(options);
  state->attestor = std::move(attestor);
  SC_ASSIGN_OR_RETURN(crypto::HpkeKeyPair key,
                      crypto::HpkeKeyPair::Generate(crypto::HpkeKem::kX25519Sha256));
  SC_ASSIGN_OR_RETURN(attest::EcP384Key receipt_key, attest::EcP384Key::Generate());
  state->key_config.key_id = state->options.key_id;
  state->key_config.public_key = key.public_key();
  state->key_config.suites = {
      {crypto::HpkeKdf::kHkdfSha256, crypto::HpkeAead::kAes128Gcm},
      {crypto::HpkeKdf::kHkdfSha256, crypto::HpkeAead::kAes256Gcm},
      {crypto::HpkeKdf::kHkdfSha256, crypto::HpkeAead::kChaCha20Poly1305},
  };
  state->hpke_public_key_hex = crypto::ToHex(key.public_key());
  EnclaveIdentity identity;
  identity.key_config = state->key_config;
  SC_ASSIGN_OR_RETURN(identity.receipt_key_point, receipt_key.PublicKeyPoint());
  state->identity = identity.Encode();
  state->key.emplace(std::move(key));
  state->receipt_key.emplace(std::move(receipt_key));
  return std::unique_ptr<EnclaveCore>(new EnclaveCore(std::move(state)));
}

Bytes EnclaveCore::IdentityBytes() const { return state_->identity; }

EnclaveStats EnclaveCore::Stats() const {
  std::lock_guard lock(state_->mutex);
  EnclaveStats stats = state_->stats;
  stats.contexts_open = state_->contexts.size();
  return stats;
}

Result<Bytes> EnclaveCore::Attest(ByteView nonce, ByteView user_data) {
  {
    std::lock_guard lock(state_->mutex);
    SC_RETURN_IF_ERROR(state_->CheckNotWiped());
  }
  return state_->attestor->Attest(Optional(user_data), Optional(nonce), state_->identity);
}

Result<EnclaveCore::Opened> EnclaveCore::Open(SealedFormat format, ByteView sealed) {
  State& s = *state_;
  std::lock_guard lock(s.mutex);
  SC_RETURN_IF_ERROR(s.CheckNotWiped());
  int64_t now_ms = s.options.clock_ms();
  s.ForgetOldRequests(now_ms);

  Bytes enc, payload;
  std::optional<crypto::ChunkedResponseSealer> sealer;
  if (format == SealedFormat::kOhttp) {
    auto request = crypto::OhttpDecapsulateRequest(s.key_config, *s.key, kInferenceLabels, sealed);
    if (!request.ok()) return s.Refuse(request.status());
    auto started = crypto::ChunkedResponseSealer::Start(request->context, kInferenceLabels,
                                                        request->enc);
    if (!started.ok()) return s.Refuse(started.status());
    enc = std::move(request->enc);
    payload = std::move(request->payload);
    sealer.emplace(std::move(*started));
  } else if (format == SealedFormat::kMultiRecipient) {
    auto request = crypto::OpenAsRecipient(s.key_config, *s.key, kInferenceLabels, sealed);
    if (!request.ok()) return s.Refuse(request.status());
    auto started = crypto::StartMultiRecipientResponse(*request, kInferenceLabels);
    if (!started.ok()) return s.Refuse(started.status());
    enc = std::move(request->enc);
    payload = std::move(request->payload);
    sealer.emplace(std::move(*started));
  } else {
    return s.Refuse(base::InvalidArgument("unknown sealed request format " +
                                          std::to_string(static_cast<int>(format))));
  }

  std::string replay_key = crypto::ToString(enc);
  if (s.seen.count(replay_key) != 0) {
    return s.Refuse(base::PermissionDenied("replayed request: this request was already opened"));
  }
  if (Status fresh = s.CheckFresh(payload, now_ms); !fresh.ok()) return s.Refuse(fresh);
  if (s.seen.size() >= s.options.max_replay_entries) {
    return s.Refuse(base::ResourceExhausted("replay cache is full; try again shortly"));
  }
  if (s.contexts.size() >= s.options.max_contexts) s.DropIdleContexts(now_ms);
  if (s.contexts.size() >= s.options.max_contexts) {
    return s.Refuse(base::ResourceExhausted("too many open response contexts (" +
                                            std::to_string(s.options.max_contexts) + ")"));
  }
  s.seen.insert(replay_key);
  s.seen_order.emplace_back(now_ms, std::move(replay_key));

  uint64_t context_id = 0;
  do {
    SC_ASSIGN_OR_RETURN(Bytes random, crypto::RandomBytes(8));
    for (uint8_t byte : random) context_id = context_id << 8 | byte;
  } while (context_id == 0 || s.contexts.count(context_id) != 0);
  s.contexts.emplace(context_id, State::OpenContext{std::move(*sealer), now_ms});
  ++s.stats.contexts_opened;
  Bytes body(payload.begin() + kTimestampBytes, payload.end());
  crypto::Zeroize(payload.data(), payload.size());
  return Opened{context_id, std::move(body)};
}

Result<Bytes> EnclaveCore::Seal(uint64_t context_id, ByteView chunk, bool final) {
  State& s = *state_;
  std::lock_guard lock(s.mutex);
  SC_RETURN_IF_ERROR(s.CheckNotWiped());
  auto found = s.contexts.find(context_id);
  if (found == s.contexts.end()) {
    return base::NotFound("no open response context " + std::to_string(context_id));
  }
  found->second.last_used_ms = s.options.clock_ms();
  auto sealed = found->second.sealer.Seal(chunk, final);
  if (!sealed.ok() || final) {
    s.contexts.erase(found);
    ++s.stats.contexts_closed;
  }
  return sealed;
}

Status EnclaveCore::Close(uint64_t context_id) {
  State& s = *state_;
  std::lock_guard lock(s.mutex);
  SC_RETURN_IF_ERROR(s.CheckNotWiped());
  if (s.contexts.erase(context_id) == 0) {
    return base::NotFound("no open response context " + std::to_string(context_id));
  }
  ++s.stats.contexts_closed;
  return Status::Ok();
}

Result<Bytes> EnclaveCore::Wipe() {
  State& s = *state_;
  std::lock_guard lock(s.mutex);
  SC_RETURN_IF_ERROR(s.CheckNotWiped());
  WipeReceipt receipt;
  receipt.hpke_public_key_hex = s.hpke_public_key_hex;
  receipt.wiped_at_ms = s.options.clock_ms();
  receipt.contexts_opened = s.stats.contexts_opened;
  receipt.contexts_closed = s.stats.contexts_closed;
  receipt.contexts_destroyed = s.contexts.size();
  receipt.requests_refused = s.stats.requests_refused;
  receipt.destroyed = {"hpke_private_key", "response_contexts", "replay_cache",
                       "receipt_signing_key"};
  SC_ASSIGN_OR_RETURN(Bytes signed_receipt, SignWipeReceipt(receipt, *s.receipt_key));
  // The key pair and the sealers hold their secrets in SecretBytes, zeroized as they go.
  s.key.reset();
  s.contexts.clear();
  s.seen.clear();
  s.seen_order.clear();
  s.receipt_key.reset();
  s.stats.wiped = true;
  return signed_receipt;
}

Reply EnclaveCore::Handle(const Request& request) {
  Reply reply;
  auto fail = [&reply](Status status) {
    reply.status = std::move(status);
    return std::move(reply);
  };
  switch (request.op) {
    case Op::kAttest: {
      auto document = Attest(request.fields[0], request.fields[1]);
      if (!document.ok()) return fail(document.status());
      reply.fields.push_back(std::move(*document));
      return reply;
    }
    case Op::kOpen: {
      if (request.fields[0].size() != 1) return fail(base::InvalidArgument("format must be 1 byte"));
      auto opened = Open(static_cast<SealedFormat>(request.fields[0][0]), request.fields[1]);
      if (!opened.ok()) return fail(opened.status());
      reply.fields.push_back(EncodeContextId(opened->context_id));
      reply.fields.push_back(std::move(opened->payload));
      return reply;
    }
    case Op::kSeal: {
      auto id = DecodeContextId(request.fields[0]);
      if (!id.ok()) return fail(id.status());
      if (request.fields[1].size() != 1 || request.fields[1][0] > 1) {
        return fail(base::InvalidArgument("final flag must be one byte, 0 or 1"));
      }
      auto sealed = Seal(*id, request.fields[2], request.fields[1][0] == 1);
      if (!sealed.ok()) return fail(sealed.status());
      reply.fields.push_back(std::move(*sealed));
      return reply;
    }
    case Op::kClose: {
      auto id = DecodeContextId(request.fields[0]);
      if (!id.ok()) return fail(id.status());
      if (Status closed = Close(*id); !closed.ok()) return fail(closed);
      return reply;
    }
    case Op::kWipe: {
      auto receipt = Wipe();
      if (!receipt.ok()) return fail(receipt.status());
      reply.fields.push_back(std::move(*receipt));
      return reply;
    }
  }
  return fail(base::InvalidArgument("unknown op"));
}

}  // namespace supercluster::enclave
