// The wire protocol between a worker and its enclave (over AF_VSOCK on Nitro, a Unix socket
// locally): length-prefixed frames, each one request or one reply. docs/protocol.md has the
// byte layout.
//
//   frame   = length (4 bytes, big-endian, 1..max_frame_bytes) || body
//   request = op (1 byte) || field*
//   reply   = status (1 byte, 0 = ok, else a base::StatusCode) || field*
//   field   = length (4 bytes, big-endian) || bytes
//
// Decoding is strict: a frame over the limit, a truncated field, an unknown op or a field
// count other than the op's is an error, and the server then drops the connection.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/status.h"
#include "crypto/bytes.h"

namespace supercluster::enclave {

using crypto::ByteView;
using crypto::Bytes;

enum class Op : uint8_t {
  kAttest = 1,  // nonce, user_data                  -> document
  kOpen = 2,    // format (1 byte), sealed request   -> context id (8 bytes), payload
  kSeal = 3,    // context id, final (1 byte), chunk -> sealed chunk
  kClose = 4,   // context id                        -> (nothing)
  kWipe = 5,    //                                   -> wipe receipt
};

// How the request given to kOpen was sealed (crypto/ohttp.h or crypto/multi_recipient.h).
enum class SealedFormat : uint8_t { kOhttp = 1, kMultiRecipient = 2 };

inline constexpr size_t kFrameHeaderBytes = 4;
inline constexpr size_t kDefaultMaxFrameBytes = 4 << 20;

struct Request {
  Op op = Op::kAttest;
  std::vector<Bytes> fields;
};

struct Reply {
  base::Status status;  // OK, or why the request failed
  std::vector<Bytes> fields;
};

// The number of fields each op takes.
size_t FieldCount(Op op);
const char* OpName(Op op);

// Frame bodies (without the 4-byte length).
Bytes EncodeRequest(const Request& request);
base::Result<Request> DecodeRequest(ByteView body);
Bytes EncodeReply(const Reply& reply);
base::Result<Reply> DecodeReply(ByteView body);

// The 4-byte length prefix of a frame of `body_size` bytes.
Bytes FrameHeader(size_t body_size);
// The body length announced by a frame header; kInvalidArgument if 0 or over `max_bytes`.
base::Result<size_t> ParseFrameHeader(ByteView header, size_t max_bytes);

// A context id travels as 8 big-endian bytes.
Bytes EncodeContextId(uint64_t id);
base::Result<uint64_t> DecodeContextId(ByteView field);

}  // namespace supercluster::enclave
