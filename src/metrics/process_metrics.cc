#include "metrics/process_metrics.h"

#include <dirent.h>
#include <unistd.h>

#include <charconv>
#include <cstdint>
#include <fstream>
#include <iterator>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "metrics/names.h"

namespace supercluster::metrics {
namespace {

std::optional<uint64_t> ParseUnsigned(std::string_view text) {
  uint64_t value = 0;
  const char* end = text.data() + text.size();
  auto [stop, error] = std::from_chars(text.data(), end, value);
  if (error != std::errc() || stop != end) return std::nullopt;
  return value;
}

// The fields of /proc/self/stat used here (proc(5) numbers them from 1), in raw units.
struct ProcStat {
  uint64_t user_ticks = 0;
  uint64_t system_ticks = 0;
  uint64_t start_ticks_after_boot = 0;
  uint64_t resident_pages = 0;
};

std::optional<ProcStat> ReadProcStat() {
  std::ifstream file("/proc/self/stat");
  std::string text(std::istreambuf_iterator<char>(file), {});
  // Field 2, the command name, is in parentheses and may itself contain spaces and ')',
  // so fields are counted from the last ')': the next one is field 3.
  size_t name_end = text.rfind(')');
  if (name_end == std::string::npos) return std::nullopt;
  std::istringstream rest(text.substr(name_end + 1));
  std::vector<std::string> fields(3);  // placeholders for fields 0 (unused), 1 and 2
  for (std::string field; rest >> field;) fields.push_back(field);

  constexpr size_t kUserTime = 14, kSystemTime = 15, kStartTime = 22, kResidentPages = 24;
  if (fields.size() <= kResidentPages) return std::nullopt;
  auto user = ParseUnsigned(fields[kUserTime]);
  auto system = ParseUnsigned(fields[kSystemTime]);
  auto start = ParseUnsigned(fields[kStartTime]);
  auto resident = ParseUnsigned(fields[kResidentPages]);
  if (!user || !system || !start || !resident) return std::nullopt;
  return ProcStat{*user, *system, *start, *resident};
}

// Seconds since the Unix epoch at which the machine booted ("btime" in /proc/stat);
// process start times in /proc/self/stat count from there.
std::optional<uint64_t> ReadBootTime() {
  std::ifstream file("/proc/stat");
  constexpr std::string_view kPrefix = "btime ";
  for (std::string line; std::getline(file, line);) {
    if (line.starts_with(kPrefix)) {
      return ParseUnsigned(std::string_view(line).substr(kPrefix.size()));
    }
  }
  return std::nullopt;
}

std::optional<uint64_t> CountOpenFds() {
  DIR* dir = opendir("/proc/self/fd");
  if (dir == nullptr) return std::nullopt;
  // Listing the directory takes a descriptor of its own; it is not one the process holds.
  const auto listing_fd = static_cast<uint64_t>(dirfd(dir));
  uint64_t count = 0;
  while (const dirent* entry = readdir(dir)) {
    std::optional<uint64_t> fd = ParseUnsigned(entry->d_name);
    if (fd && *fd != listing_fd) ++count;  // "." and ".." do not parse
  }
  closedir(dir);
  return count;
}

prometheus::MetricFamily OneSample(const char* name, const char* help, prometheus::MetricType type,
                                   double value) {
  prometheus::ClientMetric sample;
  if (type == prometheus::MetricType::Counter) {
    sample.counter.value = value;
  } else {
    sample.gauge.value = value;
  }
  prometheus::MetricFamily family;
  family.name = name;
  family.help = help;
  family.type = type;
  family.metric.push_back(sample);
  return family;
}

}  // namespace

std::vector<prometheus::MetricFamily> CollectProcessMetrics() {
  using prometheus::MetricType;
  std::vector<prometheus::MetricFamily> families;
  const long ticks_per_second = sysconf(_SC_CLK_TCK);
  const long page_bytes = sysconf(_SC_PAGESIZE);

  std::optional<ProcStat> stat = ReadProcStat();
  if (stat && ticks_per_second > 0) {
    double cpu_seconds =
        static_cast<double>(stat->user_ticks + stat->system_ticks) / ticks_per_second;
    families.push_back(OneSample(kProcessCpuSecondsTotal,
                                 "Total user and system CPU time spent in seconds.",
                                 MetricType::Counter, cpu_seconds));
  }
  if (std::optional<uint64_t> fds = CountOpenFds()) {
    families.push_back(OneSample(kProcessOpenFds, "Number of open file descriptors.",
                                 MetricType::Gauge, static_cast<double>(*fds)));
  }
  if (stat && page_bytes > 0) {
    families.push_back(OneSample(kProcessResidentMemoryBytes, "Resident memory size in bytes.",
                                 MetricType::Gauge,
                                 static_cast<double>(stat->resident_pages) * page_bytes));
  }
  std::optional<uint64_t> boot_time = ReadBootTime();
  if (stat && boot_time && ticks_per_second > 0) {
    double start_time = static_cast<double>(*boot_time) +
                        static_cast<double>(stat->start_ticks_after_boot) / ticks_per_second;
    families.push_back(OneSample(kProcessStartTimeSeconds,
                                 "Start time of the process since unix epoch in seconds.",
                                 MetricType::Gauge, start_time));
  }
  return families;
}

}  // namespace supercluster::metrics
