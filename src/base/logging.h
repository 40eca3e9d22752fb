// Process-wide logging on spdlog. Call InitLogging once at start (the CLI does it from
// --log-format/--log-level or the log.* config keys), then log with spdlog::info(...),
// spdlog::warn(...), etc. Never log secrets, prompts or completions.
//
// Formats: "text" — human lines ("2026-11-26 18:50:01.123 info  listening on ..."), in
// colour when stderr is a terminal; "json" — one JSON object per line with the fields
// "time" (RFC 3339, UTC, milliseconds), "level", "msg" and, when set, "component".
#pragma once

#include <spdlog/spdlog.h>

#include <string_view>

#include "base/status.h"

namespace supercluster::base {

// Configures the default logger to write to stderr. format: "text" or "json"; level:
// "trace", "debug", "info", "warn", "error" or "off". `component` names the service
// ("router", "worker") in every line. Returns InvalidArgument naming the bad value.
Status InitLogging(std::string_view format, std::string_view level,
                   std::string_view component = "");

}  // namespace supercluster::base
