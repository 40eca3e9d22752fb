// `supercluster store get|put|ls|watch`: an operator's view of the cluster state, against
// either backend (--store sqlite:///path or etcd://host:port,...).
#include <signal.h>

#include <cstdlib>
#include <iostream>
#include <nlohmann/json.hpp>

#include "base/flags.h"
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

int RunVerb(const std::string& verb, const std::vector<std::string>& args) {
  StoreFlags store_flags;
  int64_t limit = 0;
  int64_t from_revision = 0;
  std::vector<std::string> positional;
  base::FlagSet flags("supercluster store " + verb + " [flags] " +
                      (verb == "put" ? "KEY VALUE" : verb == "get" ? "KEY" : "[PREFIX]"));
  store_flags.Register(flags);
  if (verb == "ls") flags.AddInt("limit", &limit, "list at most this many keys (0: all)");
  if (verb == "watch") {
    flags.AddInt("from-revision", &from_revision, "replay changes from this revision (0: new only)");
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
  size_t wanted_min = verb == "put" ? 2 : verb == "get" ? 1 : 0;
  size_t wanted_max = verb == "put" ? 2 : 1;
  if (positional.size() < wanted_min || positional.size() > wanted_max) {
    std::cerr << flags.Help();
    return kExitUsage;
  }
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
  if (verb == "put") {
    auto revision = store.Put(positional[0], positional[1]);
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
      "usage: supercluster store <get|put|ls|watch> [flags] ...\n"
      "  get KEY            print a key's value\n"
      "  put KEY VALUE      write a key\n"
      "  ls [PREFIX]        list keys under a prefix\n"
      "  watch [PREFIX]     print changes under a prefix until interrupted\n"
      "Run 'supercluster store <verb> --help' for flags.\n";
  if (args.empty() || args[0] == "--help" || args[0] == "-h") {
    (args.empty() ? std::cerr : std::cout) << kUsage;
    return args.empty() ? kExitUsage : kExitOk;
  }
  const std::string& verb = args[0];
  if (verb != "get" && verb != "put" && verb != "ls" && verb != "watch") {
    std::cerr << "supercluster store: unknown verb '" << verb << "'\n" << kUsage;
    return kExitUsage;
  }
  return RunVerb(verb, std::vector<std::string>(args.begin() + 1, args.end()));
}

}  // namespace supercluster::cli
