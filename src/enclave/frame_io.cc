#include "enclave/frame_io.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "enclave/protocol.h"

namespace supercluster::enclave {
namespace {

using Clock = std::chrono::steady_clock;

// Waits until `fd` has one of `events` (or an error or hang-up, which the next call on it
// reports). False if the deadline passes first.
bool WaitFor(int fd, short events, Clock::time_point deadline) {
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) return false;
    pollfd poll_fd{fd, events, 0};
    int ready = ::poll(&poll_fd, 1, static_cast<int>(left.count()));
    if (ready < 0 && errno == EINTR) continue;
    return ready != 0;
  }
}

// Reads exactly `size` bytes into `out`. With a deadline, fails once it passes.
base::Status ReadExactly(int fd, uint8_t* out, size_t size, bool between_frames,
                         Clock::time_point deadline) {
  size_t done = 0;
  while (done < size) {
    if ((!between_frames || done > 0) && !WaitFor(fd, POLLIN, deadline)) {
      return base::DeadlineExceeded("frame not completed in time");
    }
    ssize_t got = ::recv(fd, out + done, size - done, 0);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) return base::Unavailable(std::string("read failed: ") + std::strerror(errno));
    if (got == 0) {
      if (between_frames && done == 0) return base::Unavailable("closed");
      return base::DataLoss("connection closed inside a frame");
    }
    done += static_cast<size_t>(got);
  }
  return base::Status::Ok();
}

// The frame after its first byte (`header[0]`, already read), by `deadline`.
base::Result<crypto::Bytes> ReadRestOfFrame(int fd, uint8_t* header, size_t max_bytes,
                                            Clock::time_point deadline) {
  SC_RETURN_IF_ERROR(ReadExactly(fd, header + 1, kFrameHeaderBytes - 1, false, deadline));
  SC_ASSIGN_OR_RETURN(size_t length,
                      ParseFrameHeader(crypto::ByteView(header, kFrameHeaderBytes), max_bytes));
  crypto::Bytes body(length);
  SC_RETURN_IF_ERROR(ReadExactly(fd, body.data(), length, false, deadline));
  return body;
}

}  // namespace

base::Result<crypto::Bytes> ReadFrame(int fd, size_t max_bytes,
                                      std::chrono::milliseconds frame_timeout) {
  uint8_t header[kFrameHeaderBytes];
  // The deadline starts once the first byte is in: waiting for a frame is not stalling one.
  SC_RETURN_IF_ERROR(ReadExactly(fd, header, 1, /*between_frames=*/true, Clock::time_point()));
  return ReadRestOfFrame(fd, header, max_bytes, Clock::now() + frame_timeout);
}

base::Result<crypto::Bytes> ReadReplyFrame(int fd, size_t max_bytes,
                                           std::chrono::milliseconds timeout) {
  const Clock::time_point deadline = Clock::now() + timeout;
  uint8_t header[kFrameHeaderBytes];
  SC_RETURN_IF_ERROR(ReadExactly(fd, header, 1, /*between_frames=*/false, deadline));
  return ReadRestOfFrame(fd, header, max_bytes, deadline);
}

base::Status WriteFrame(int fd, crypto::ByteView body, std::chrono::milliseconds timeout) {
  crypto::Bytes frame = FrameHeader(body.size());
  frame.insert(frame.end(), body.begin(), body.end());
  // One deadline for the whole frame: SO_SNDTIMEO would bound each send() instead, and a
  // peer that reads a little at a time could stretch a large frame almost without end.
  Clock::time_point deadline = Clock::now() + timeout;
  size_t done = 0;
  while (done < frame.size()) {
    ssize_t sent =
        ::send(fd, frame.data() + done, frame.size() - done, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (sent >= 0) {
      done += static_cast<size_t>(sent);
    } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
      if (!WaitFor(fd, POLLOUT, deadline)) {
        return base::DeadlineExceeded("frame not taken in time");
      }
    } else if (errno != EINTR) {
      return base::Unavailable(std::string("write failed: ") + std::strerror(errno));
    }
  }
  return base::Status::Ok();
}

}  // namespace supercluster::enclave
