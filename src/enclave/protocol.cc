#include "enclave/protocol.h"

#include <string>

namespace supercluster::enclave {
namespace {

using base::InvalidArgument;

void AppendU32(uint32_t value, Bytes* out) {
  for (int shift = 24; shift >= 0; shift -= 8) out->push_back(static_cast<uint8_t>(value >> shift));
}

uint32_t ReadU32(ByteView bytes) {
  return uint32_t{bytes[0]} << 24 | uint32_t{bytes[1]} << 16 | uint32_t{bytes[2]} << 8 |
         uint32_t{bytes[3]};
}

void AppendFields(const std::vector<Bytes>& fields, Bytes* out) {
  for (const Bytes& field : fields) {
    AppendU32(static_cast<uint32_t>(field.size()), out);
    out->insert(out->end(), field.begin(), field.end());
  }
}

base::Result<std::vector<Bytes>> DecodeFields(ByteView bytes, const std::string& what) {
  std::vector<Bytes> fields;
  size_t offset = 0;
  while (offset < bytes.size()) {
    if (bytes.size() - offset < 4) {
      return InvalidArgument(what + ": field " + std::to_string(fields.size()) +
                             " has a truncated length");
    }
    size_t length = ReadU32(bytes.subspan(offset, 4));
    offset += 4;
    if (length > bytes.size() - offset) {
      return InvalidArgument(what + ": field " + std::to_string(fields.size()) + " claims " +
                             std::to_string(length) + " bytes, " +
                             std::to_string(bytes.size() - offset) + " remain");
    }
    fields.emplace_back(bytes.begin() + offset, bytes.begin() + offset + length);
    offset += length;
  }
  return fields;
}

}  // namespace

size_t FieldCount(Op op) {
  switch (op) {
    case Op::kAttest: return 2;
    case Op::kOpen: return 2;
    case Op::kSeal: return 3;
    case Op::kClose: return 1;
    case Op::kWipe: return 0;
  }
  return 0;
}

const char* OpName(Op op) {
  switch (op) {
    case Op::kAttest: return "attest";
    case Op::kOpen: return "open";
    case Op::kSeal: return "seal";
    case Op::kClose: return "close";
    case Op::kWipe: return "wipe";
  }
  return "unknown";
}

Bytes EncodeRequest(const Request& request) {
  Bytes body{static_cast<uint8_t>(request.op)};
  AppendFields(request.fields, &body);
  return body;
}

base::Result<Request> DecodeRequest(ByteView body) {
  if (body.empty()) return InvalidArgument("enclave request: empty frame");
  uint8_t op = body[0];
  if (op < static_cast<uint8_t>(Op::kAttest) || op > static_cast<uint8_t>(Op::kWipe)) {
    return InvalidArgument("enclave request: unknown op " + std::to_string(op));
  }
  Request request;
  request.op = static_cast<Op>(op);
  SC_ASSIGN_OR_RETURN(request.fields,
                      DecodeFields(body.subspan(1), std::string("enclave ") + OpName(request.op)));
  if (request.fields.size() != FieldCount(request.op)) {
    return InvalidArgument(std::string("enclave ") + OpName(request.op) + ": " +
                           std::to_string(request.fields.size()) + " fields, expected " +
                           std::to_string(FieldCount(request.op)));
  }
  return request;
}

Bytes EncodeReply(const Reply& reply) {
  Bytes body{static_cast<uint8_t>(reply.status.code())};
  if (!reply.status.ok()) {
    const std::string& message = reply.status.message();
    AppendFields({Bytes(message.begin(), message.end())}, &body);
  } else {
    AppendFields(reply.fields, &body);
  }
  return body;
}

base::Result<Reply> DecodeReply(ByteView body) {
  if (body.empty()) return InvalidArgument("enclave reply: empty frame");
  uint8_t code = body[0];
  if (code > static_cast<uint8_t>(base::StatusCode::kInternal)) {
    return InvalidArgument("enclave reply: unknown status " + std::to_string(code));
  }
  SC_ASSIGN_OR_RETURN(std::vector<Bytes> fields, DecodeFields(body.subspan(1), "enclave reply"));
  Reply reply;
  if (code != 0) {
    if (fields.size() != 1) return InvalidArgument("enclave reply: error without one message");
    reply.status = base::Status(static_cast<base::StatusCode>(code),
                                "enclave: " + crypto::ToString(fields[0]));
  } else {
    reply.fields = std::move(fields);
  }
  return reply;
}

Bytes FrameHeader(size_t body_size) {
  Bytes header;
  AppendU32(static_cast<uint32_t>(body_size), &header);
  return header;
}

base::Result<size_t> ParseFrameHeader(ByteView header, size_t max_bytes) {
  if (header.size() != kFrameHeaderBytes) return InvalidArgument("frame header must be 4 bytes");
  size_t length = ReadU32(header);
  if (length == 0) return InvalidArgument("empty frame");
  if (length > max_bytes) {
    return InvalidArgument("frame of " + std::to_string(length) + " bytes is over the limit of " +
                           std::to_string(max_bytes));
  }
  return length;
}

Bytes EncodeContextId(uint64_t id) {
  Bytes out;
  for (int shift = 56; shift >= 0; shift -= 8) out.push_back(static_cast<uint8_t>(id >> shift));
  return out;
}

base::Result<uint64_t> DecodeContextId(ByteView field) {
  if (field.size() != 8) return InvalidArgument("context id must be 8 bytes");
  uint64_t id = 0;
  for (uint8_t byte : field) id = id << 8 | byte;
  return id;
}

}  // namespace supercluster::enclave
