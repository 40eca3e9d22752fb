// `supercluster config`: prints the configuration schema (as text, or as the markdown
// table that docs/configuration.md embeds and a test keeps in step), shows the effective
// values after a file and --set overrides, and checks a file without starting anything.
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "base/config.h"
#include "base/flags.h"
#include "cli/command.h"
#include "cli/commands.h"

namespace supercluster::cli {
namespace {

constexpr char kHelp[] =
    "usage: supercluster config <subcommand> [flags]\n"
    "\n"
    "subcommands:\n"
    "  schema [--markdown]                       every key with its type, default, allowed\n"
    "                                            values and meaning\n"
    "  show [--config FILE] [--set KEY=VALUE]... the effective values: defaults, then the\n"
    "                                            file, then each --set\n"
    "  check FILE                                exit 0 if FILE is a valid config file, else\n"
    "                                            print the first error (file:line: key ...)\n"
    "\n"
    "Run 'supercluster config <subcommand> --help' for its flags.\n";

// The range or choices of a key in words: "1KiB to 1MiB", "at least 0", "text, json".
std::string AllowedValues(const base::ConfigKeyInfo& info, const std::string& quote) {
  if (!info.choices.empty()) {
    std::string joined;
    for (const std::string& choice : info.choices) {
      if (!joined.empty()) joined += ", ";
      joined += quote + choice + quote;
    }
    return joined;
  }
  if (info.type == "bool") return quote + "true" + quote + ", " + quote + "false" + quote;
  const std::string min = quote + info.min + quote;
  const std::string max = quote + info.max + quote;
  if (!info.min.empty() && !info.max.empty()) return min + " to " + max;
  if (!info.min.empty()) return "at least " + min;
  if (!info.max.empty()) return "at most " + max;
  return "any";
}

std::string DefaultForDisplay(const base::ConfigKeyInfo& info) {
  if (info.type == "string" && info.default_value.empty()) return "\"\"";
  return info.default_value;
}

// A table cell must not contain a bare '|', which would start a new column.
std::string EscapeMarkdownCell(const std::string& text) {
  std::string escaped;
  for (char c : text) {
    if (c == '|') escaped += '\\';
    escaped += c;
  }
  return escaped;
}

void PrintSchemaText(std::ostream& out) {
  bool first = true;
  for (const base::ConfigKeyInfo& info : base::ConfigSchema()) {
    if (!first) out << "\n";
    first = false;
    std::string allowed = AllowedValues(info, "");
    out << info.key << "\n"
        << "  " << info.type << ", default " << DefaultForDisplay(info);
    if (allowed != "any") out << ", allowed " << allowed;
    out << "\n"
        << "  " << info.description << "\n";
  }
}

void PrintSchemaMarkdown(std::ostream& out) {
  out << "| Key | Type | Default | Allowed | Description |\n"
      << "|---|---|---|---|---|\n";
  for (const base::ConfigKeyInfo& info : base::ConfigSchema()) {
    out << "| `" << info.key << "` | " << info.type << " | `" << DefaultForDisplay(info)
        << "` | " << EscapeMarkdownCell(AllowedValues(info, "`")) << " | "
        << EscapeMarkdownCell(info.description) << " |\n";
  }
}

// A YAML double-quoted scalar, so that `config show` output can be read back as a file.
std::string YamlQuoted(const std::string& text) {
  static constexpr char kHexDigits[] = "0123456789abcdef";
  std::string quoted = "\"";
  for (char c : text) {
    auto byte = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      quoted += '\\';
      quoted += c;
    } else if (byte < 0x20 || byte == 0x7f) {
      quoted += "\\x";
      quoted += kHexDigits[byte >> 4];
      quoted += kHexDigits[byte & 0xf];
    } else {
      quoted += c;
    }
  }
  return quoted + "\"";
}

int RunSchema(const std::vector<std::string>& args) {
  bool markdown = false;
  base::FlagSet flags("supercluster config schema [--markdown]");
  flags.AddBool("markdown", &markdown, "print the key table of docs/configuration.md");
  if (base::Status parsed = flags.Parse(args); !parsed.ok()) {
    std::cerr << "supercluster config schema: " << parsed.message() << "\n";
    return kExitUsage;
  }
  if (flags.help_requested()) {
    std::cout << flags.Help();
    return kExitOk;
  }
  if (markdown) {
    PrintSchemaMarkdown(std::cout);
  } else {
    PrintSchemaText(std::cout);
  }
  return kExitOk;
}

int RunShow(const std::vector<std::string>& args) {
  std::string config_file;
  std::vector<std::string> assignments;
  base::FlagSet flags("supercluster config show [--config FILE] [--set KEY=VALUE]...");
  flags.AddString("config", &config_file, "YAML config file to apply over the defaults");
  flags.AddRepeated("set", &assignments, "override one key, applied after --config");
  if (base::Status parsed = flags.Parse(args); !parsed.ok()) {
    std::cerr << "supercluster config show: " << parsed.message() << "\n";
    return kExitUsage;
  }
  if (flags.help_requested()) {
    std::cout << flags.Help();
    return kExitOk;
  }
  base::Config config = base::Config::Defaults();
  if (!config_file.empty()) {
    base::Result<base::Config> loaded = base::Config::LoadFile(config_file);
    if (!loaded.ok()) {
      std::cerr << loaded.status().message() << "\n";
      return kExitFailure;
    }
    config = std::move(loaded).value();
  }
  for (const std::string& assignment : assignments) {
    if (base::Status set = config.SetFromFlag(assignment); !set.ok()) {
      std::cerr << "--set: " << set.message() << "\n";
      return kExitFailure;
    }
  }
  std::map<std::string, const base::ConfigKeyInfo*> schema;
  for (const base::ConfigKeyInfo& info : base::ConfigSchema()) schema[info.key] = &info;
  for (const auto& [key, value] : config.Dump()) {
    const base::ConfigKeyInfo& info = *schema.at(key);
    std::cout << key << ": " << (info.type == "string" ? YamlQuoted(value) : value);
    if (value != info.default_value) std::cout << "  # default " << DefaultForDisplay(info);
    std::cout << "\n";
  }
  return kExitOk;
}

int RunCheck(const std::vector<std::string>& args) {
  std::vector<std::string> files;
  base::FlagSet flags("supercluster config check FILE");
  flags.AllowPositional(&files, "FILE");
  if (base::Status parsed = flags.Parse(args); !parsed.ok()) {
    std::cerr << "supercluster config check: " << parsed.message() << "\n";
    return kExitUsage;
  }
  if (flags.help_requested()) {
    std::cout << flags.Help();
    return kExitOk;
  }
  if (files.size() != 1) {
    std::cerr << "supercluster config check: expected one FILE, got " << files.size() << "\n";
    return kExitUsage;
  }
  base::Result<base::Config> loaded = base::Config::LoadFile(files[0]);
  if (!loaded.ok()) {
    // The message already reads "FILE:LINE: key '...': ...", like a compiler's.
    std::cerr << loaded.status().message() << "\n";
    return kExitFailure;
  }
  std::cout << files[0] << ": ok\n";
  return kExitOk;
}

}  // namespace

int RunConfig(const std::vector<std::string>& args) {
  if (args.empty()) {
    std::cerr << kHelp;
    return kExitUsage;
  }
  const std::string& subcommand = args[0];
  std::vector<std::string> rest(args.begin() + 1, args.end());
  if (subcommand == "--help" || subcommand == "-h" || subcommand == "help") {
    std::cout << kHelp;
    return kExitOk;
  }
  if (subcommand == "schema") return RunSchema(rest);
  if (subcommand == "show") return RunShow(rest);
  if (subcommand == "check") return RunCheck(rest);
  std::cerr << "supercluster config: unknown subcommand '" << subcommand
            << "' (expected schema, show or check)\n";
  return kExitUsage;
}

}  // namespace supercluster::cli
