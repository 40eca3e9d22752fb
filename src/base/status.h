// Status and Result<T>: how errors cross module boundaries in Supercluster.
//
// A Status is either OK or carries a code and a message written for the person who will
// read it ("config.yaml:12: key 'net.server.max_body_bytes': 0 is below the minimum 1").
// Result<T> holds either a value or a non-OK Status. Neither throws; callers check ok().
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace supercluster::base {

enum class StatusCode {
  kOk = 0,
  kInvalidArgument,    // the caller's input is wrong (bad flag, bad file, bad request)
  kNotFound,           // the named thing does not exist
  kAlreadyExists,      // the named thing exists and must not
  kFailedPrecondition, // the system is not in a state where this can run
  kPermissionDenied,   // the caller may not do this
  kResourceExhausted,  // a limit or quota was hit
  kUnavailable,        // a peer or service cannot be reached now; retrying may help
  kDeadlineExceeded,   // a timeout elapsed
  kCancelled,          // the operation was cancelled
  kDataLoss,           // stored or received data is corrupt or truncated
  kInternal,           // a bug: an invariant did not hold
  kUnauthenticated,    // the caller did not prove who it is (no or unknown credentials)
  kOutOfRange,         // a value is past a valid bound (a request body over the size limit)
};

// Returns the lower-case name of a code, e.g. "invalid_argument".
const char* StatusCodeName(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;  // OK
  Status(StatusCode code, std::string message);

  static Status Ok() { return Status(); }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }

  // "invalid_argument: <message>", or "ok".
  std::string ToString() const;

  // Returns a copy whose message is "<context>: <message>", to say where an error happened
  // as it travels up ("loading model x.gguf: tensor 'a': offset past end of file").
  Status WithContext(const std::string& context) const;

  friend bool operator==(const Status& a, const Status& b) {
    return a.code_ == b.code_ && a.message_ == b.message_;
  }

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

// Shorthands for the common codes.
Status InvalidArgument(std::string message);
Status NotFound(std::string message);
Status AlreadyExists(std::string message);
Status FailedPrecondition(std::string message);
Status PermissionDenied(std::string message);
Status ResourceExhausted(std::string message);
Status Unavailable(std::string message);
Status DeadlineExceeded(std::string message);
Status Cancelled(std::string message);
Status DataLoss(std::string message);
Status Internal(std::string message);
Status Unauthenticated(std::string message);
Status OutOfRange(std::string message);

// Result<T>: a T or the Status saying why there is none.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}  // NOLINT: implicit by design
  // Precondition: !status.ok(). An OK status without a value is turned into kInternal.
  Result(Status status)  // NOLINT: implicit by design
      : status_(status.ok() ? Status(StatusCode::kInternal, "Result built from OK status")
                            : std::move(status)) {}

  bool ok() const { return value_.has_value(); }
  const Status& status() const { return status_; }

  // Precondition: ok().
  T& value() & { return *value_; }
  const T& value() const& { return *value_; }
  T&& value() && { return std::move(*value_); }
  T* operator->() { return &*value_; }
  const T* operator->() const { return &*value_; }
  T& operator*() & { return *value_; }
  const T& operator*() const& { return *value_; }

 private:
  std::optional<T> value_;
  Status status_;
};

}  // namespace supercluster::base

// Returns early from the enclosing function if `expr` (a Status) is not OK.
#define SC_RETURN_IF_ERROR(expr)                          \
  do {                                                    \
    ::supercluster::base::Status sc_status_ = (expr);     \
    if (!sc_status_.ok()) return sc_status_;              \
  } while (false)

#define SC_CONCAT_INNER_(a, b) a##b
#define SC_CONCAT_(a, b) SC_CONCAT_INNER_(a, b)

// Declares `lhs` from a Result<T> expression, or returns its Status from the enclosing
// function: SC_ASSIGN_OR_RETURN(auto file, OpenFile(path));
#define SC_ASSIGN_OR_RETURN(lhs, expr)                                   \
  auto SC_CONCAT_(sc_result_, __LINE__) = (expr);                        \
  if (!SC_CONCAT_(sc_result_, __LINE__).ok())                            \
    return SC_CONCAT_(sc_result_, __LINE__).status();                    \
  lhs = std::move(SC_CONCAT_(sc_result_, __LINE__)).value()
