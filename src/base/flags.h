// Command-line flags for `supercluster` subcommands and the enclave binary.
//
// A FlagSet names each flag once, with its help text and a pointer to where the parsed
// value goes; the variable's initial value is the default shown in --help. Flags are long
// form only (`--max-tokens 16` or `--max-tokens=16`); `--` ends flags. Parse() fails with
// a message naming the flag for an unknown flag, a missing, empty or malformed value, or a
// positional argument the command did not ask for. (A string flag is never set to "" by
// the command line, so "" can stand for "not given".)
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/status.h"

namespace supercluster::base {

class FlagSet {
 public:
  // `usage` is the first help line, e.g. "supercluster serve [flags]".
  explicit FlagSet(std::string usage);

  void AddString(const std::string& name, std::string* value, const std::string& help);
  void AddInt(const std::string& name, int64_t* value, const std::string& help);
  void AddDouble(const std::string& name, double* value, const std::string& help);
  // A bool flag takes no value: `--json` sets it true. `--json=false` is also accepted.
  void AddBool(const std::string& name, bool* value, const std::string& help);
  // A flag that may be given many times, each value appended (`--set a=1 --set b=2`).
  void AddRepeated(const std::string& name, std::vector<std::string>* values,
                   const std::string& help);
  // Positional arguments are collected here; without this call any positional is an error.
  void AllowPositional(std::vector<std::string>* positional, const std::string& name);

  // Parses args (without the program and subcommand names). help_requested() tells whether
  // --help or -h was seen, in which case nothing else is checked.
  Status Parse(const std::vector<std::string>& args);
  bool help_requested() const { return help_requested_; }

  // The usage line followed by one line per flag with its default.
  std::string Help() const;

 private:
  enum class Kind { kString, kInt, kDouble, kBool, kRepeated };
  struct Flag {
    std::string name;
    Kind kind;
    void* target;
    std::string help;
    std::string default_text;
  };
  Flag* Find(const std::string& name);
  Status Assign(Flag& flag, const std::string& value);

  std::string usage_;
  std::vector<Flag> flags_;
  std::vector<std::string>* positional_ = nullptr;
  std::string positional_name_;
  bool help_requested_ = false;
};

}  // namespace supercluster::base
