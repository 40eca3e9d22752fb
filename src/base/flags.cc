#include "base/flags.h"

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <sstream>

namespace supercluster::base {

FlagSet::FlagSet(std::string usage) : usage_(std::move(usage)) {}

void FlagSet::AddString(const std::string& name, std::string* value, const std::string& help) {
  flags_.push_back({name, Kind::kString, value, help, value->empty() ? "" : "\"" + *value + "\""});
}

void FlagSet::AddInt(const std::string& name, int64_t* value, const std::string& help) {
  flags_.push_back({name, Kind::kInt, value, help, std::to_string(*value)});
}

void FlagSet::AddDouble(const std::string& name, double* value, const std::string& help) {
  std::ostringstream text;
  text << *value;
  flags_.push_back({name, Kind::kDouble, value, help, text.str()});
}

void FlagSet::AddBool(const std::string& name, bool* value, const std::string& help) {
  flags_.push_back({name, Kind::kBool, value, help, *value ? "true" : ""});
}

void FlagSet::AddRepeated(const std::string& name, std::vector<std::string>* values,
                          const std::string& help) {
  flags_.push_back({name, Kind::kRepeated, values, help, ""});
}

void FlagSet::AllowPositional(std::vector<std::string>* positional, const std::string& name) {
  positional_ = positional;
  positional_name_ = name;
}

FlagSet::Flag* FlagSet::Find(const std::string& name) {
  for (Flag& flag : flags_) {
    if (flag.name == name) return &flag;
  }
  return nullptr;
}

Status FlagSet::Assign(Flag& flag, const std::string& value) {
  const std::string where = "flag --" + flag.name;
  // An empty value given on purpose is nearly always a script's unset variable
  // (`--region "$R"`); taken as "not given", it would widen what a command acts on.
  if ((flag.kind == Kind::kString || flag.kind == Kind::kRepeated) && value.empty()) {
    return InvalidArgument(where + " needs a non-empty value (leave the flag out instead)");
  }
  switch (flag.kind) {
    case Kind::kString:
      *static_cast<std::string*>(flag.target) = value;
      return Status::Ok();
    case Kind::kRepeated:
      static_cast<std::vector<std::string>*>(flag.target)->push_back(value);
      return Status::Ok();
    case Kind::kInt: {
      errno = 0;
      char* end = nullptr;
      long long parsed = std::strtoll(value.c_str(), &end, 10);
      if (value.empty() || *end != '\0' || errno == ERANGE) {
        return InvalidArgument(where + ": expected an integer, got '" + value + "'");
      }
      *static_cast<int64_t*>(flag.target) = parsed;
      return Status::Ok();
    }
    case Kind::kDouble: {
      errno = 0;
      char* end = nullptr;
      double parsed = std::strtod(value.c_str(), &end);
      // strtod also reads "nan" and "inf", which no flag means (JSON cannot even carry them).
      if (value.empty() || *end != '\0' || errno == ERANGE || !std::isfinite(parsed)) {
        return InvalidArgument(where + ": expected a number, got '" + value + "'");
      }
      *static_cast<double*>(flag.target) = parsed;
      return Status::Ok();
    }
    case Kind::kBool:
      if (value == "true" || value == "1") {
        *static_cast<bool*>(flag.target) = true;
      } else if (value == "false" || value == "0") {
        *static_cast<bool*>(flag.target) = false;
      } else {
        return InvalidArgument(where + ": expected true or false, got '" + value + "'");
      }
      return Status::Ok();
  }
  return Internal("unknown flag kind");
}

Status FlagSet::Parse(const std::vector<std::string>& args) {
  bool flags_ended = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (!flags_ended && (arg == "--help" || arg == "-h")) {
      help_requested_ = true;
      return Status::Ok();
    }
    if (!flags_ended && arg == "--") {
      flags_ended = true;
      continue;
    }
    if (flags_ended || arg.size() < 2 || arg[0] != '-') {
      if (positional_ == nullptr) {
        return InvalidArgument("unexpected argument '" + arg + "'");
      }
      positional_->push_back(arg);
      continue;
    }
    if (arg.rfind("--", 0) != 0) {
      return InvalidArgument("unknown flag '" + arg + "' (flags are long form: --name)");
    }
    std::string name = arg.substr(2);
    std::string value;
    bool has_value = false;
    if (size_t eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
      has_value = true;
    }
    Flag* flag = Find(name);
    if (flag == nullptr) return InvalidArgument("unknown flag '--" + name + "'");
    if (!has_value) {
      if (flag->kind == Kind::kBool) {
        value = "true";
      } else if (i + 1 < args.size()) {
        value = args[++i];
      } else {
        return InvalidArgument("flag --" + name + " needs a value");
      }
    }
    SC_RETURN_IF_ERROR(Assign(*flag, value));
  }
  return Status::Ok();
}

std::string FlagSet::Help() const {
  std::ostringstream out;
  out << "usage: " << usage_ << "\n";
  if (!flags_.empty()) out << "\nflags:\n";
  for (const Flag& flag : flags_) {
    std::string left = "  --" + flag.name;
    if (flag.kind != Kind::kBool) left += " VALUE";
    out << left;
    if (left.size() < 28) out << std::string(28 - left.size(), ' ');
    else out << "\n" << std::string(28, ' ');
    out << flag.help;
    if (!flag.default_text.empty()) out << " (default " << flag.default_text << ")";
    out << "\n";
  }
  out << "  --help                    show this help\n";
  return out.str();
}

}  // namespace supercluster::base
