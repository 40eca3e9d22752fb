// Reading and writing length-prefixed frames (protocol.h) on a blocking stream socket.
#pragma once

#include <chrono>

#include "base/status.h"
#include "crypto/bytes.h"

namespace supercluster::enclave {

// Waits as long as it takes for a frame to begin, then requires the rest of it within
// `frame_timeout`. kUnavailable "closed" when the peer closes between frames;
// kInvalidArgument for a frame over `max_bytes`; kDeadlineExceeded for a stalled frame.
base::Result<crypto::Bytes> ReadFrame(int fd, size_t max_bytes,
                                      std::chrono::milliseconds frame_timeout);
// As ReadFrame, but the whole frame, its first byte included, must arrive within
// `timeout`: for a reply, which is due, where ReadFrame waits for a peer's next request.
base::Result<crypto::Bytes> ReadReplyFrame(int fd, size_t max_bytes,
                                           std::chrono::milliseconds timeout);
// Writes the length prefix and the body, all of it within `timeout`, so that a peer which
// does not read cannot hold the writer; kDeadlineExceeded when it does not take the frame.
base::Status WriteFrame(int fd, crypto::ByteView body, std::chrono::milliseconds timeout);

}  // namespace supercluster::enclave
