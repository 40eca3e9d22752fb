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

// Reads exactly `size` bytes into `out`. With a deadline, fails once it passes.
base::Status ReadExactly(int fd, uint8_t* out, size_t size, bool between_frames,
                         Clock::time_point deadline) {
  size_t done = 0;
  while (done < size) {
    if (!between_frames || done > 0) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      if (left.count() <= 0) return base::DeadlineExceeded("frame not completed in time");
      pollfd poll_fd{fd, POLLIN, 0};
      int ready = ::poll(&poll_fd, 1, static_cast<int>(left.count()));
      if (ready < 0 && errno == EINTR) continue;
      if (ready == 0) return base::DeadlineExceeded("frame not completed in time");
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

}  // namespace

base::Result<crypto::Bytes> ReadFrame(int fd, size_t max_bytes,
                                      std::chrono::milliseconds frame_timeout) {
  uint8_t header[kFrameHeaderBytes];
  // The deadline starts once the first byte is in: waiting for a frame is not stalling one.
  SC_RETURN_IF_ERROR(ReadExactly(fd, header, 1, /*between_frames=*/true, Clock::time_point()));
  Clock::time_point deadline = Clock::now() + frame_timeout;
  SC_RETURN_IF_ERROR(ReadExactly(fd, header + 1, kFrameHeaderBytes - 1, false, deadline));
  SC_ASSIGN_OR_RETURN(size_t length,
                      ParseFrameHeader(crypto::ByteView(header, kFrameHeaderBytes), max_bytes));
  crypto::Bytes body(length);
  SC_RETURN_IF_ERROR(ReadExactly(fd, body.data(), length, false, deadline));
  return body;
}

base::Status WriteFrame(int fd, crypto::ByteView body) {
  crypto::Bytes frame = FrameHeader(body.size());
  frame.insert(frame.end(), body.begin(), body.end());
  size_t done = 0;
  while (done < frame.size()) {
    ssize_t sent = ::send(fd, frame.data() + done, frame.size() - done, MSG_NOSIGNAL);
    if (sent < 0 && errno == EINTR) continue;
    if (sent < 0) return base::Unavailable(std::string("write failed: ") + std::strerror(errno));
    done += static_cast<size_t>(sent);
  }
  return base::Status::Ok();
}

}  // namespace supercluster::enclave
