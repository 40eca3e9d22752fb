// `supercluster store get|put|delete|ls|watch`: an operator's view of the cluster state,
// against either backend (--store sqlite:///path or etcd://host:port,...).
#include <signal.h>

#include <cstdlib>
#include <iostream>
#include <nlohmann/json.hpp>

#include "base/flags.h"
#include "cli/cli_files.h"
#include "cli/command.h"
#include "cli/commands.h"
#include "base/service_flags.h"
#include "store/open_store.h"

namespace supercluster::cli {
namespace {

nlohmann::json KeyValueJson(const store::KeyValue& kv) {
  return {{"key", kv.key},
          {"value", kv.value},
          {"create_revision", kv.create_revision},
          {"mod_revision", kv.mod_revision},
          {"version", kv.version},
          {"lease", kv.lease}};
}

void PrintKeyValue(const store::KeyValue& kv, bool json) {
  if (json) {
    std::cout << KeyValueJson(kv).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)
              << "\n";
  } else {
    std::cout << kv.key << " = " << kv.value << "  (revision " << kv.mod_revision << ")\n";
  }
}

int Fail(const std::string& verb, const base::Status& status) {
  std::cerr << "supercluster store " << verb << ": " << status.message() << "\n";
  return kExitFailure;
}

struct StoreFlags {
  base::ServiceFlags service;
  std::string url;  // empty: store.url from the config, then the default file
  store::StoreConnectOptions connect;
  bool json = false;

  void Register(base::FlagSet& flags) {
    service.Register(flags);
    flags.AddString("store",
                    &url, "sqlite:///path/state.db, etcd://host:port,... or etcds://... "
                          "(default: store.url, else ~/.local/share/supercluster/state.db)");
    flags.AddString("ca-file", &connect.ca_file, "etcds: CA bundle to verify etcd with");
    flags.AddString("cert-file", &connect.certificate_file, "etcds: client certificate");
    flags.AddString("key-file", &connect.private_key_file, "etcds: client private key");
    flags.AddString("user", &connect.username, "etcd user, when etcd auth is on");
    flags.AddBool("json", &json, "machine-readable output, one JSON object per line");
  }
};

// The most `put --value-file` reads: a little over the largest value either backend takes
// (1.5 MiB), so that the store's own refusal, which names its limit, is what the operator
// sees for a value just over it, and /dev/zero cannot fill memory.
constexpr ReadLimit kValueFileLimit{2 << 20, "and a store value is at most 1.5MiB"};

std::string Synopsis(const std::string& verb) {
  if (verb == "put") return "KEY VALUE | KEY --value-file PATH";
  if (verb == "get" || verb == "delete") return "KEY";
  return "[PREFIX]";
}

int RunVerb(const std::string& verb, const std::vector<std::string>& args) {
  StoreFlags store_flags;
  int64_t limit = 0;
  int64_t from_revision = 0;
  std::string value_file;
  std::vector<std::string> positional;
  base::FlagSet flags("supercluster store " + verb + " [flags] " + Synopsis(verb));
  store_flags.Register(flags);
  if (verb == "ls") flags.AddInt("limit", &limit, "list at most this many keys (0: all)");
  if (verb == "watch") {
    flags.AddInt("from-revision", &from_revision, "replay changes from this revision (0: new only)");
  }
  if (verb == "put") {
    flags.AddString("value-file", &value_file,
                    "read the value from this file, exactly as it is ('-': standard input), "
                    "instead of from the command line (which holds at most 128 KiB)");
  }
  flags.AllowPositional(&positional, "ARGS");
  if (base::Status parsed = flags.Parse(args); !parsed.ok()) {
    std::cerr << "supercluster store " << verb << ": " << parsed.message() << "\n";
    return kExitUsage;
  }
  if (flags.help_requested()) {
    std::cout << flags.Help();
    return kExitOk;
  }
  const bool value_given = verb == "put" && !value_file.empty();
  size_t wanted_min = verb == "put" ? (value_given ? 1 : 2) : verb == "get" || verb == "delete";
  size_t wanted_max = verb == "put" ? wanted_min : 1;
  if (positional.size() < wanted_min || positional.size() > wanted_max) {
    std::cerr << flags.Help();
    return kExitUsage;
  }
  std::string value;
  if (verb == "put") {
    if (value_given) {
      auto read = ReadWholeFile(value_file, kValueFileLimit);
      if (!read.ok()) return Fail(verb, read.status());
      value = std::move(*read);
    } else {
      value = positional[1];
    }
  }
  // Only put may make a new store; the others name one that should be there.
  store_flags.connect.must_exist = verb != "put";
  if (const char* password = std::getenv("SUPERCLUSTER_STORE_PASSWORD")) {
    store_flags.connect.password = password;  // never a flag: flags show up in `ps`
  }
  if (store_flags.service.log_level.empty()) store_flags.service.log_level = "warn";
  auto config = store_flags.service.LoadConfig("store");
  if (!config.ok()) return Fail(verb, config.status());
  std::string url = store_flags.url.empty() ? config->GetString("store.url") : store_flags.url;
  auto opened = store::OpenStore(url, *config, store_flags.connect);
  if (!opened.ok()) return Fail(verb, opened.status());
  store::Store& store = **opened;

  if (verb == "get") {
    auto got = store.Get(positional[0]);
    if (!got.ok()) return Fail(verb, got.status());
    if (!got->has_value()) return Fail(verb, base::NotFound("no key '" + positional[0] + "'"));
    if (store_flags.json) {
      PrintKeyValue(**got, true);
    } else {
      std::cout << (*got)->value << "\n";
    }
    return kExitOk;
  }
  if (verb == "delete") {
    auto deleted = store.Delete(positional[0]);
    if (!deleted.ok()) return Fail(verb, deleted.status());
    // A mistyped key must not look deleted.
    if (*deleted == 0) return Fail(verb, base::NotFound("no key '" + positional[0] + "'"));
    if (store_flags.json) {
      std::cout << nlohmann::json{{"deleted", *deleted}}.dump() << "\n";
    } else {
      std::cout << "deleted " << positional[0] << "\n";
    }
    return kExitOk;
  }
  if (verb == "put") {
    auto revision = store.Put(positional[0], value);
    if (!revision.ok()) return Fail(verb, revision.status());
    if (store_flags.json) {
      std::cout << nlohmann::json{{"revision", *revision}}.dump() << "\n";
    } else {
      std::cout << "revision " << *revision << "\n";
    }
    return kExitOk;
  }
  std::string prefix = positional.empty() ? "" : positional[0];
  if (verb == "ls") {
    auto range = store.Range(prefix, {.limit = limit});
    if (!range.ok()) return Fail(verb, range.status());
    for (const store::KeyValue& kv : range->kvs) PrintKeyValue(kv, store_flags.json);
    if (range->more) std::cerr << "(more keys: raise --limit)\n";
    return kExitOk;
  }
  // watch: print each change until interrupted.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);  // the watch thread inherits the mask
  auto watch = store.WatchPrefix(
      prefix, from_revision,
      [&](const std::vector<store::WatchEvent>& events, const base::Status& status) {
        if (!status.ok()) {
          std::cerr << "supercluster store watch: " << status.message() << "\n";
          kill(getpid(), SIGTERM);
          return;
        }
        for (const store::WatchEvent& event : events) {
          bool put = event.kind == store::WatchEvent::Kind::kPut;
          if (store_flags.json) {
            nlohmann::json line = KeyValueJson(event.kv);
            line["type"] = put ? "put" : "delete";
            std::cout << line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
          } else {
            std::cout << (put ? "PUT " : "DELETE ") << event.kv.key
                      << (put ? " = " + event.kv.value : "") << "  (revision "
                      << event.kv.mod_revision << ")\n";
          }
        }
        std::cout.flush();
      });
  if (!watch.ok()) return Fail(verb, watch.status());
  int received = 0;
  sigwait(&signals, &received);
  (*watch)->Cancel();
  return kExitOk;
}

}  // namespace

int RunStore(const std::vector<std::string>& args) {
  static const char* kUsage =
      "usage: supercluster store <get|put|delete|ls|watch> [flags] ...\n"
      "  get KEY            print a key's value\n"
      "  put KEY VALUE      write a key (or put KEY --value-file PATH, '-' for stdin)\n"
      "  delete KEY         delete a key\n"
      "  ls [PREFIX]        list keys under a prefix\n"
      "  watch [PREFIX]     print changes under a prefix until interrupted\n"
      "Run 'supercluster store <verb> --help' for flags.\n";
  if (args.empty() || args[0] == "--help" || args[0] == "-h") {
    (args.empty() ? std::cerr : std::cout) << kUsage;
    return args.empty() ? kExitUsage : kExitOk;
  }
  const std::string& verb = args[0];
  if (verb != "get" && verb != "put" && verb != "delete" && verb != "ls" && verb != "watch") {
    std::cerr << "supercluster store: unknown verb '" << verb << "'\n" << kUsage;
    return kExitUsage;
  }
  return RunVerb(verb, std::vector<std::string>(args.begin() + 1, args.end()));
}

}  // namespace supercluster::cli
