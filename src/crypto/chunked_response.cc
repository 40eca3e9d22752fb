#include "crypto/chunked_response.h"

#include <string>

#include "crypto/aead.h"
#include "crypto/wire.h"

namespace supercluster::crypto {
namespace {

using base::Result;
using base::Status;

constexpr std::string_view kFinalAad = "final";

// aead_nonce XOR counter, the counter big-endian in the nonce's last bytes.
Bytes ChunkNonce(ByteView base_nonce, uint64_t counter) {
  Bytes nonce(base_nonce.begin(), base_nonce.end());
  for (size_t i = 0; i < 8 && i < nonce.size(); ++i) {
    nonce[nonce.size() - 1 - i] ^= static_cast<uint8_t>(counter >> (8 * i));
  }
  return nonce;
}

}  // namespace

Result<ChunkedResponseSealer> ChunkedResponseSealer::Start(const HpkeContext& context,
                                                           const OhttpLabels& labels,
                                                           ByteView enc, ByteView prefix,
                                                           std::optional<ByteView> response_nonce) {
  SC_ASSIGN_OR_RETURN(Bytes nonce, OhttpResponseNonce(context.suite().aead, response_nonce));
  SC_ASSIGN_OR_RETURN(OhttpResponseKeys keys,
                      OhttpDeriveResponseKeys(context, labels.response, enc, nonce));
  return ChunkedResponseSealer(context.suite().aead, std::move(keys), Concat({prefix, nonce}));
}

ChunkedResponseSealer::ChunkedResponseSealer(HpkeAead aead, OhttpResponseKeys keys,
                                             Bytes preamble)
    : aead_(aead), keys_(std::move(keys)), preamble_(std::move(preamble)) {}

Result<Bytes> ChunkedResponseSealer::Seal(ByteView plaintext, bool final) {
  if (finished_) return base::FailedPrecondition("response stream already finished");
  Bytes nonce = ChunkNonce(keys_.nonce.view(), counter_);
  SC_ASSIGN_OR_RETURN(Bytes ciphertext,
                      AeadSeal(aead_, keys_.key.view(), nonce,
                               final ? AsBytes(kFinalAad) : ByteView{}, plaintext));
  WireWriter out;
  out.Append(preamble_);
  preamble_.clear();
  out.QuicVarint(final ? 0 : ciphertext.size());
  out.Append(ciphertext);
  ++counter_;
  if (final) {
    finished_ = true;
    keys_.key.Wipe();
    keys_.nonce.Wipe();
  }
  return out.Take();
}

ChunkedResponseOpener ChunkedResponseOpener::ForRequest(const HpkeContext& context,
                                                        const OhttpLabels& labels, ByteView enc,
                                                        size_t max_chunk_bytes) {
  std::string response_label(labels.response);
  Bytes enc_copy(enc.begin(), enc.end());
  return ChunkedResponseOpener(
      context.suite().aead, OhttpResponseNonceSize(context.suite().aead),
      [&context, response_label, enc_copy](ByteView preamble) {
        return OhttpDeriveResponseKeys(context, response_label, enc_copy, preamble);
      },
      max_chunk_bytes);
}

ChunkedResponseOpener::ChunkedResponseOpener(HpkeAead aead, size_t preamble_size,
                                             KeyResolver resolver, size_t max_chunk_bytes)
    : aead_(aead),
      preamble_size_(preamble_size),
      resolver_(std::move(resolver)),
      max_chunk_bytes_(max_chunk_bytes) {}

Status ChunkedResponseOpener::Fail(Status status) {
  state_ = State::kFailed;
  failure_ = status;
  keys_.reset();
  pending_.clear();
  return status;
}

Status ChunkedResponseOpener::OpenChunk(ByteView ciphertext, bool final,
                                        std::vector<Bytes>* out) {
  Bytes nonce = ChunkNonce(keys_->nonce.view(), counter_);
  auto plaintext = AeadOpen(aead_, keys_->key.view(), nonce,
                            final ? AsBytes(kFinalAad) : ByteView{}, ciphertext);
  if (!plaintext.ok()) {
    return Fail(base::PermissionDenied(
        "response chunk " + std::to_string(counter_) + (final ? " (final)" : "") +
        " failed to open: altered, reordered, replayed or not for this request"));
  }
  ++counter_;
  out->push_back(std::move(*plaintext));
  return Status::Ok();
}

Status ChunkedResponseOpener::Feed(ByteView bytes, std::vector<Bytes>* out) {
  if (state_ == State::kFailed) return failure_;
  if (state_ == State::kComplete) {
    if (bytes.empty()) return Status::Ok();
    return Fail(base::DataLoss("response stream: bytes after the final chunk"));
  }
  size_t offset = 0;
  while (offset < bytes.size() || state_ == State::kBody) {
    switch (state_) {
      case State::kPreamble: {
        size_t take = std::min(preamble_size_ - pending_.size(), bytes.size() - offset);
        pending_.insert(pending_.end(), bytes.begin() + offset, bytes.begin() + offset + take);
        offset += take;
        if (pending_.size() < preamble_size_) return Status::Ok();
        auto keys = resolver_(pending_);
        if (!keys.ok()) return Fail(keys.status().WithContext("response preamble"));
        keys_.emplace(std::move(*keys));
        pending_.clear();
        state_ = State::kLength;
        break;
      }
      case State::kLength: {
        pending_.push_back(bytes[offset++]);
        WireReader reader(pending_);
        uint64_t length = 0;
        if (!reader.ReadQuicVarint(&length)) break;  // need more bytes of the varint
        pending_.clear();
        if (length == 0) {
          state_ = State::kFinalBody;
        } else if (length > max_chunk_bytes_) {
          return Fail(base::InvalidArgument("response chunk of " + std::to_string(length) +
                                            " bytes is over the limit of " +
                                            std::to_string(max_chunk_bytes_)));
        } else {
          body_size_ = length;
          state_ = State::kBody;
        }
        break;
      }
      case State::kBody: {
        size_t take = std::min<size_t>(body_size_ - pending_.size(), bytes.size() - offset);
        pending_.insert(pending_.end(), bytes.begin() + offset, bytes.begin() + offset + take);
        offset += take;
        if (pending_.size() < body_size_) return Status::Ok();
        SC_RETURN_IF_ERROR(OpenChunk(pending_, /*final=*/false, out));
        pending_.clear();
        state_ = State::kLength;
        break;
      }
      case State::kFinalBody: {
        if (pending_.size() + (bytes.size() - offset) > max_chunk_bytes_) {
          return Fail(base::InvalidArgument("final response chunk is over the limit of " +
                                            std::to_string(max_chunk_bytes_) + " bytes"));
        }
        pending_.insert(pending_.end(), bytes.begin() + offset, bytes.end());
        offset = bytes.size();
        break;
      }
      case State::kComplete:
      case State::kFailed:
        return Status::Ok();
    }
  }
  return Status::Ok();
}

Status ChunkedResponseOpener::Finish(std::vector<Bytes>* out) {
  if (state_ == State::kFailed) return failure_;
  if (state_ == State::kComplete) return Status::Ok();
  if (state_ != State::kFinalBody) {
    return Fail(base::DataLoss("response stream ended before its final chunk (truncated after " +
                               std::to_string(counter_) + " chunks)"));
  }
  Bytes ciphertext = std::move(pending_);
  pending_.clear();
  SC_RETURN_IF_ERROR(OpenChunk(ciphertext, /*final=*/true, out));
  state_ = State::kComplete;
  keys_.reset();
  return Status::Ok();
}

}  // namespace supercluster::crypto
