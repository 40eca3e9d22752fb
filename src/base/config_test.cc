// Tests of the config loader: defaults from the built-in schema, overriding from files and
// --set, one exact message (file, line, key) per kind of mistake, and hostile files that
// must give an error rather than a crash.
#include "base/config.h"

#include <algorithm>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>

#include "base/config_schema.h"
#include "base/config_value.h"

namespace supercluster::base {
namespace {

using std::chrono::milliseconds;

// The error message of loading `yaml` as "cluster.yaml"; fails the test if it loads.
std::string LoadError(const std::string& yaml) {
  Result<Config> loaded = Config::LoadString(yaml, "cluster.yaml");
  EXPECT_FALSE(loaded.ok()) << "loaded without error:\n" << yaml;
  if (loaded.ok()) return "";
  EXPECT_EQ(loaded.status().code(), StatusCode::kInvalidArgument);
  return loaded.status().message();
}

Config LoadOk(const std::string& yaml) {
  Result<Config> loaded = Config::LoadString(yaml, "cluster.yaml");
  EXPECT_TRUE(loaded.ok()) << loaded.status().ToString();
  return loaded.ok() ? *loaded : Config::Defaults();
}

std::string DumpValue(const Config& config, const std::string& key) {
  for (const auto& [name, value] : config.Dump()) {
    if (name == key) return value;
  }
  ADD_FAILURE() << "no key " << key << " in Dump()";
  return "";
}

// A file in a fresh temporary directory, removed with the object.
class TempFile {
 public:
  explicit TempFile(const std::string& contents) {
    std::string pattern = (std::filesystem::temp_directory_path() / "config_test.XXXXXX").string();
    directory_ = mkdtemp(pattern.data());
    path_ = directory_ + "/cluster.yaml";
    std::ofstream(path_, std::ios::binary) << contents;
  }
  ~TempFile() { std::filesystem::remove_all(directory_); }
  const std::string& path() const { return path_; }
  const std::string& directory() const { return directory_; }

 private:
  std::string directory_;
  std::string path_;
};

TEST(ConfigSchemaTest, ListsEveryKeySortedAndDocumented) {
  const std::vector<ConfigKeyInfo>& schema = ConfigSchema();
  std::vector<std::string> keys;
  for (const ConfigKeyInfo& info : schema) {
    keys.push_back(info.key);
    EXPECT_FALSE(info.description.empty()) << info.key;
  }
  EXPECT_TRUE(std::is_sorted(keys.begin(), keys.end()));
  // Every key belongs to a section some module reads; a new section is a deliberate
  // change to this list.
  const std::vector<std::string> sections = {"client.", "cluster.", "enclave.", "engine.", "log.",
                                            "relay.",  "router.",  "serve.",   "server.", "store.",
                                            "worker."};
  for (const std::string& key : keys) {
    bool known = std::any_of(sections.begin(), sections.end(),
                             [&](const std::string& section) { return key.rfind(section, 0) == 0; });
    EXPECT_TRUE(known) << key;
  }
  EXPECT_TRUE(std::find(keys.begin(), keys.end(), "server.max_header_bytes") != keys.end());
  EXPECT_TRUE(std::find(keys.begin(), keys.end(), "store.url") != keys.end());
}

TEST(ConfigSchemaTest, DefaultsMatchTheSchema) {
  Config config = Config::Defaults();
  std::vector<std::pair<std::string, std::string>> dump = config.Dump();
  ASSERT_EQ(dump.size(), ConfigSchema().size());
  for (size_t i = 0; i < dump.size(); ++i) {
    EXPECT_EQ(dump[i].first, ConfigSchema()[i].key);
    EXPECT_EQ(dump[i].second, ConfigSchema()[i].default_value) << dump[i].first;
  }
  EXPECT_EQ(config.GetString("log.format"), "text");
  EXPECT_EQ(config.GetString("log.level"), "info");
  EXPECT_EQ(config.GetString("serve.listen"), "127.0.0.1:8080");
  EXPECT_EQ(config.GetInt("server.io_threads"), 0);
  EXPECT_EQ(config.GetInt("server.max_header_bytes"), 16 * 1024);
  EXPECT_EQ(config.GetInt("server.max_body_bytes"), 8 * 1024 * 1024);
  EXPECT_EQ(config.GetInt("server.max_connections"), 10000);
  EXPECT_EQ(config.GetDuration("server.idle_timeout"), milliseconds(60000));
  EXPECT_EQ(config.GetDuration("server.read_timeout"), milliseconds(30000));
  EXPECT_EQ(config.GetDuration("client.connect_timeout"), milliseconds(5000));
  EXPECT_EQ(config.GetInt("client.max_response_body_bytes"), 64 * 1024 * 1024);
  EXPECT_EQ(config.GetString("server.tls.certificate_file"), "");
  EXPECT_TRUE(config.GetBool("client.tls.verify_peer"));
}

TEST(ConfigSchemaTest, RangesAndChoicesAreExposed) {
  for (const ConfigKeyInfo& info : ConfigSchema()) {
    if (info.key == "server.max_header_bytes") {
      EXPECT_EQ(info.type, "bytes");
      EXPECT_EQ(info.min, "1KiB");
      EXPECT_EQ(info.max, "1MiB");
    }
    if (info.key == "log.format") {
      EXPECT_EQ(info.choices, (std::vector<std::string>{"text", "json"}));
    }
  }
}

TEST(ConfigFileTest, NestedFileOverridesDefaults) {
  Config config = LoadOk(
      "# a cluster's settings\n"
      "log:\n"
      "  format: json\n"
      "server:\n"
      "  max_body_bytes: 1MiB\n"
      "  idle_timeout: 250ms\n"
      "  io_threads: 4\n"
      "  tls:\n"
      "    certificate_file: /etc/sc/cert.pem\n"
      "client.tls.verify_peer: false\n"
      "serve: {listen: \"0.0.0.0:9000\"}\n");
  EXPECT_EQ(config.GetString("log.format"), "json");
  EXPECT_EQ(config.GetInt("server.max_body_bytes"), 1024 * 1024);
  EXPECT_EQ(config.GetDuration("server.idle_timeout"), milliseconds(250));
  EXPECT_EQ(config.GetInt("server.io_threads"), 4);
  EXPECT_EQ(config.GetString("server.tls.certificate_file"), "/etc/sc/cert.pem");
  EXPECT_FALSE(config.GetBool("client.tls.verify_peer"));
  EXPECT_EQ(config.GetString("serve.listen"), "0.0.0.0:9000");
  // Keys the file does not name keep their defaults.
  EXPECT_EQ(config.GetInt("server.max_header_bytes"), 16 * 1024);
  EXPECT_EQ(config.GetString("log.level"), "info");
}

TEST(ConfigFileTest, EmptyOrCommentOnlyFilesGiveDefaults) {
  for (const std::string& yaml : {std::string(""), std::string("\n\n"),
                                  std::string("# nothing set yet\n  # indented comment\n"),
                                  std::string("---\n"), std::string("~\n"),
                                  std::string("server:\n  # max_body_bytes: 1MiB\n")}) {
    Config config = LoadOk(yaml);
    EXPECT_EQ(config.Dump(), Config::Defaults().Dump()) << yaml;
  }
}

TEST(ConfigFileTest, LoadFileReadsAFileAndNamesItInErrors) {
  TempFile good("server:\n  max_connections: 5\n");
  Result<Config> loaded = Config::LoadFile(good.path());
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ(loaded->GetInt("server.max_connections"), 5);

  TempFile bad("\nserver:\n  max_connections: 0\n");
  Result<Config> failed = Config::LoadFile(bad.path());
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.status().message(),
            bad.path() + ":3: key 'server.max_connections': 0 is below the minimum 1");
}

TEST(ConfigFileTest, MissingFileIsNotFoundWithThePath) {
  Result<Config> loaded = Config::LoadFile("/nonexistent/dir/cluster.yaml");
  ASSERT_FALSE(loaded.ok());
  EXPECT_EQ(loaded.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(loaded.status().message(), "/nonexistent/dir/cluster.yaml: no such file");
}

TEST(ConfigFileTest, DirectoryAndHugeFilesAreRefused) {
  TempFile file("");
  Result<Config> directory = Config::LoadFile(file.directory());
  ASSERT_FALSE(directory.ok());
  EXPECT_NE(directory.status().message().find(file.directory()), std::string::npos);

  TempFile huge(std::string(17 << 20, '#'));
  Result<Config> too_big = Config::LoadFile(huge.path());
  ASSERT_FALSE(too_big.ok());
  EXPECT_EQ(too_big.status().message(),
            huge.path() + ": larger than 16MiB, which is no config file");
}

TEST(ConfigErrorTest, BelowMinimumNamesLineAndKey) {
  EXPECT_EQ(LoadError("# limits\n"
                      "server:\n"
                      "  max_connections: 100\n"
                      "  max_header_bytes: 512\n"),
            "cluster.yaml:4: key 'server.max_header_bytes': 512 is below the minimum 1KiB");
}

TEST(ConfigErrorTest, AboveMaximumNamesLineAndKey) {
  EXPECT_EQ(LoadError("server:\n  idle_timeout: 2h\n"),
            "cluster.yaml:2: key 'server.idle_timeout': 2h is above the maximum 1h");
  EXPECT_EQ(LoadError("server.max_header_bytes: 2048KiB\n"),
            "cluster.yaml:1: key 'server.max_header_bytes': 2048KiB is above the maximum 1MiB");
}

TEST(ConfigErrorTest, UnknownKeySuggestsTheClosest) {
  EXPECT_EQ(LoadError("server:\n"
                      "  max_connections: 100\n"
                      "\n"
                      "  max_bdy_bytes: 1MiB\n"),
            "cluster.yaml:4: unknown key 'server.max_bdy_bytes' "
            "(did you mean 'server.max_body_bytes'?)");
  EXPECT_EQ(LoadError("sever:\n  max_body_bytes: 1MiB\n"),
            "cluster.yaml:2: unknown key 'sever.max_body_bytes' "
            "(did you mean 'server.max_body_bytes'?)");
  // The right name at the wrong level.
  EXPECT_EQ(LoadError("net:\n  server:\n    max_body_bytes: 1MiB\n"),
            "cluster.yaml:3: unknown key 'net.server.max_body_bytes' "
            "(did you mean 'server.max_body_bytes'?)");
}

TEST(ConfigErrorTest, UnknownKeyWithoutAGoodSuggestion) {
  EXPECT_EQ(LoadError("log:\n  level: debug\nfrobnicate: 3\n"),
            "cluster.yaml:3: unknown key 'frobnicate'");
  EXPECT_EQ(LoadError("gpu: {}\n"), "cluster.yaml:1: unknown key 'gpu'");
  EXPECT_EQ(LoadError("gpu:\n"), "cluster.yaml:1: unknown key 'gpu'");
}

TEST(ConfigErrorTest, WrongTypeSaysWhatWasExpected) {
  EXPECT_EQ(LoadError("server:\n  read_timeout: fast\n"),
            "cluster.yaml:2: key 'server.read_timeout': expected a duration like 30s or 250ms, "
            "got 'fast'");
  EXPECT_EQ(LoadError("server:\n  read_timeout: 10\n"),
            "cluster.yaml:2: key 'server.read_timeout': expected a duration like 30s or 250ms, "
            "got '10' (a unit is required: ms, s, m or h)");
  EXPECT_EQ(LoadError("server:\n  max_connections: 1.5\n"),
            "cluster.yaml:2: key 'server.max_connections': expected an integer, got '1.5'");
  EXPECT_EQ(LoadError("server:\n  max_connections: 100abc\n"),
            "cluster.yaml:2: key 'server.max_connections': expected an integer, got '100abc'");
  EXPECT_EQ(LoadError("server:\n  max_body_bytes: -1\n"),
            "cluster.yaml:2: key 'server.max_body_bytes': expected a byte count like 512, 64KiB "
            "or 8MiB, got '-1'");
  EXPECT_EQ(LoadError("server:\n  max_body_bytes: 64MB\n"),
            "cluster.yaml:2: key 'server.max_body_bytes': expected a byte count like 512, 64KiB "
            "or 8MiB, got '64MB' (the units are KiB, MiB and GiB)");
  EXPECT_EQ(LoadError("client:\n  tls:\n    verify_peer: yes\n"),
            "cluster.yaml:3: key 'client.tls.verify_peer': expected true or false, got 'yes'");
  EXPECT_EQ(LoadError("log:\n  format: xml\n"),
            "cluster.yaml:2: key 'log.format': expected text or json, got 'xml'");
  EXPECT_EQ(LoadError("log:\n  level: verbose\n"),
            "cluster.yaml:2: key 'log.level': expected trace, debug, info, warn, error or off, "
            "got 'verbose'");
}

TEST(ConfigErrorTest, IntegerOverflowIsRefused) {
  EXPECT_EQ(LoadError("server:\n  max_connections: 99999999999999999999\n"),
            "cluster.yaml:2: key 'server.max_connections': '99999999999999999999' is out of "
            "range for a 64-bit integer");
  EXPECT_EQ(LoadError("server:\n  max_body_bytes: 99999999999GiB\n"),
            "cluster.yaml:2: key 'server.max_body_bytes': '99999999999GiB' is too large");
  EXPECT_EQ(LoadError("server:\n  idle_timeout: 9999999999999999h\n"),
            "cluster.yaml:2: key 'server.idle_timeout': '9999999999999999h' is too large");
}

TEST(ConfigErrorTest, ListOrMapWhereAValueBelongs) {
  EXPECT_EQ(LoadError("server:\n  idle_timeout: [1s, 2s]\n"),
            "cluster.yaml:2: key 'server.idle_timeout': expected a duration like 30s or 250ms, "
            "got a list");
  EXPECT_EQ(LoadError("server:\n  max_connections:\n    - 1\n"),
            "cluster.yaml:3: key 'server.max_connections': expected an integer, got a list");
  EXPECT_EQ(LoadError("log:\n  level:\n    name: info\n"),
            "cluster.yaml:3: key 'log.level': expected a string, got a map");
  EXPECT_EQ(LoadError("server: 5\n"),
            "cluster.yaml:1: key 'server' is a section: expected the keys under it, got '5'");
  EXPECT_EQ(LoadError("server:\n  - max_connections: 5\n"),
            "cluster.yaml:2: key 'server' is a section: expected the keys under it, got a list");
}

TEST(ConfigErrorTest, TopLevelMustBeAMap) {
  EXPECT_EQ(LoadError("just some words\n"),
            "cluster.yaml:1: expected keys and values (a YAML map) at the top level, got "
            "'just some words'");
  EXPECT_EQ(LoadError("\n- a\n- b\n"),
            "cluster.yaml:2: expected keys and values (a YAML map) at the top level, got a list");
}

TEST(ConfigErrorTest, KeyWithoutValue) {
  EXPECT_EQ(LoadError("server:\n  max_connections:\n"),
            "cluster.yaml:2: key 'server.max_connections' has no value");
  EXPECT_EQ(LoadError("client:\n  tls:\n    ca_file: ~\n"),
            "cluster.yaml:3: key 'client.tls.ca_file' has no value (write \"\" for an empty "
            "string)");
  Config config = LoadOk("client:\n  tls:\n    ca_file: \"\"\n");
  EXPECT_EQ(config.GetString("client.tls.ca_file"), "");
}

TEST(ConfigErrorTest, DuplicateKeysNameBothLines) {
  EXPECT_EQ(LoadError("server:\n  max_body_bytes: 1MiB\n  max_connections: 5\n"
                      "  max_body_bytes: 2MiB\n"),
            "cluster.yaml:4: duplicate key 'server.max_body_bytes' (first on line 2)");
  EXPECT_EQ(LoadError("server:\n  max_connections: 5\nlog:\n  level: warn\nserver:\n"
                      "  idle_timeout: 5s\n"),
            "cluster.yaml:5: duplicate key 'server' (first on line 1)");
  EXPECT_EQ(LoadError("server.max_connections: 5\nserver:\n  max_connections: 6\n"),
            "cluster.yaml:3: key 'server.max_connections' is set twice (first on line 1)");
}

TEST(ConfigErrorTest, YamlSyntaxErrorsGiveTheLine) {
  EXPECT_EQ(LoadError("log:\n  level: info\n format: json\n"),
            "cluster.yaml:3: invalid YAML: end of map not found");
  EXPECT_EQ(LoadError("log:\n  level: info\n\tformat: json\n"),
            "cluster.yaml:3: invalid YAML: illegal tab when looking for indentation");
  EXPECT_EQ(LoadError("log: {level: info\n"),
            "cluster.yaml:2: invalid YAML: end of map flow not found");
  EXPECT_EQ(LoadError("%YAML 9.9\n---\nlog:\n  level: info\n"),
            "cluster.yaml:1: invalid YAML: YAML major version too large");
}

TEST(ConfigErrorTest, OnlyOneDocument) {
  EXPECT_EQ(LoadError("log:\n  level: info\n---\nlog:\n  level: warn\n"),
            "cluster.yaml:3: a config file holds one YAML document; a second one starts here");
}

TEST(ConfigErrorTest, AnchorsAndAliasesAreRefused) {
  EXPECT_EQ(LoadError("server: &limits\n  max_connections: 5\nclient: *limits\n"),
            "cluster.yaml:1: anchors (&name) and aliases (*name) are not supported in config "
            "files");
  EXPECT_EQ(LoadError("server:\n  max_connections: &n 5\n"),
            "cluster.yaml:2: anchors (&name) and aliases (*name) are not supported in config "
            "files");
}

TEST(ConfigErrorTest, ComplexKeysAreRefused) {
  EXPECT_EQ(LoadError("? [a, b]\n: 1\n"), "cluster.yaml:1: a key must be a plain name, not a list");
  EXPECT_EQ(LoadError("{a: 1}: 2\n"), "cluster.yaml:1: a key must be a plain name, not a map");
}

TEST(ConfigHostileTest, DeepNestingGivesAnError) {
  std::string maps;
  for (int i = 0; i < 10000; ++i) maps += "{a: ";
  EXPECT_FALSE(Config::LoadString(maps, "deep.yaml").ok());
  std::string sections = "server: ";
  for (int i = 0; i < 10000; ++i) sections += "{tls: ";
  EXPECT_FALSE(Config::LoadString(sections, "deep.yaml").ok());
  EXPECT_FALSE(Config::LoadString(std::string(10000, '['), "deep.yaml").ok());
  std::string lists = "server:\n  max_connections: " + std::string(10000, '[');
  EXPECT_FALSE(Config::LoadString(lists, "deep.yaml").ok());
  std::string block;
  for (int i = 0; i < 1500; ++i) block += std::string(static_cast<size_t>(i), ' ') + "a:\n";
  EXPECT_FALSE(Config::LoadString(block, "deep.yaml").ok());
}

TEST(ConfigHostileTest, FiveMegabytesOfJunk) {
  std::mt19937 random(20261126);
  std::string junk(5 << 20, '\0');
  for (char& c : junk) c = static_cast<char>(random());
  EXPECT_FALSE(Config::LoadString(junk, "junk.yaml").ok());

  std::string printable(5 << 20, ' ');
  const std::string alphabet = "ab:- \n\t{}[],'\"#&*!|>%@`?";
  for (char& c : printable) c = alphabet[random() % alphabet.size()];
  EXPECT_FALSE(Config::LoadString(printable, "junk.yaml").ok());

  std::string many_keys;
  while (many_keys.size() < (5u << 20)) many_keys += "key_" + std::to_string(many_keys.size()) + ": 1\n";
  EXPECT_EQ(Config::LoadString(many_keys, "junk.yaml").status().message(),
            "junk.yaml:1: unknown key 'key_0'");
}

TEST(ConfigHostileTest, HugeAndBinaryValuesStayOneShortLine) {
  std::string digits(5 << 20, '9');
  std::string message = LoadError("server:\n  max_connections: " + digits + "\n");
  EXPECT_LT(message.size(), 200u);
  EXPECT_EQ(message.rfind("cluster.yaml:2: key 'server.max_connections': '999", 0), 0u);

  message = LoadError(std::string("log:\n  level: \"a\\nb\\x01\"\n"));
  EXPECT_EQ(message, "cluster.yaml:2: key 'log.level': expected trace, debug, info, warn, error "
                     "or off, got 'a\\x0ab\\x01'");
  EXPECT_EQ(message.find('\n'), std::string::npos);
}

// A config file is UTF-8 text: a NUL, another control character (but tab, CR and LF) or a
// byte that is not UTF-8 is refused, naming its line and the byte; UTF-8 is kept.
TEST(ConfigHostileTest, BinaryBytesAreRefusedNamingTheLine) {
  const std::string rest = "); a config file is UTF-8 YAML";
  EXPECT_EQ(LoadError(std::string("\0", 1)), "cluster.yaml:1: not UTF-8 text (byte \\x00" + rest);
  EXPECT_EQ(LoadError("\xef\xbb\xbf\x01\x02"), "cluster.yaml:1: not UTF-8 text (byte \\x01" + rest);
  EXPECT_EQ(LoadError("server:\n  \x01\x1b[31m: 3\n"),
            "cluster.yaml:2: not UTF-8 text (byte \\x01" + rest);
  EXPECT_EQ(LoadError("log:\n  level: info\n\x80\x81\xc3\x28: 1\n"),
            "cluster.yaml:3: not UTF-8 text (byte \\x80" + rest);
  const char nul_in_value[] = "log:\n  level: \"a\0b\"\n";
  EXPECT_EQ(LoadError(std::string(nul_in_value, sizeof(nul_in_value) - 1)),
            "cluster.yaml:2: not UTF-8 text (byte \\x00" + rest);
  // UTF-16 and UTF-32 (a byte order mark yaml-cpp would read as one): not UTF-8.
  EXPECT_EQ(LoadError("\xfe\xff"), "cluster.yaml:1: not UTF-8 text (byte \\xfe" + rest);
  for (const std::string& input : {std::string("\xff\xfe\0\0", 4), std::string("\xff\xfe\n", 3)}) {
    EXPECT_EQ(LoadError(input), "cluster.yaml:1: not UTF-8 text (byte \\xff" + rest);
  }
  // UTF-8 beyond ASCII, a byte order mark, tabs and CRLF line ends are text.
  EXPECT_EQ(LoadError("gr\xc3\xb6\xc3\x9f" "e: 1\r\n"),
            "cluster.yaml:1: unknown key 'gr\xc3\xb6\xc3\x9f" "e'");
  Result<Config> text =
      Config::LoadString("\xef\xbb\xbflog:\r\n  level: warn\t# gr\xc3\xbc\xc3\x9f\r\n", "crlf.yaml");
  ASSERT_TRUE(text.ok()) << text.status().ToString();
  EXPECT_EQ(text->GetString("log.level"), "warn");
}

// Thousands of small random documents over YAML's special characters: any outcome but a
// crash is fine.
TEST(ConfigHostileTest, RandomSmallDocumentsNeverCrash) {
  std::mt19937 random(7);
  const std::vector<std::string> pieces = {
      "server", "log", "level", "max_body_bytes", ":", " ", "\n", "  ", "-", "[", "]", "{",
      "}", ",", "&a", "*a", "!", "!!str", "?", "|", ">", "'", "\"", "#", "---", "...", "1KiB",
      "30s", "\t", "%", "\\", "\x00", "\xff", "<<", "~", "null", "true"};
  for (int round = 0; round < 5000; ++round) {
    std::string document;
    int length = static_cast<int>(random() % 40);
    for (int i = 0; i < length; ++i) document += pieces[random() % pieces.size()];
    Result<Config> loaded = Config::LoadString(document, "random.yaml");
    if (!loaded.ok()) {
      EXPECT_FALSE(loaded.status().message().empty());
    }
  }
}

TEST(ConfigSetTest, SetOverridesWithValidation) {
  Config config = Config::Defaults();
  ASSERT_TRUE(config.Set("server.max_body_bytes", "16MiB").ok());
  EXPECT_EQ(config.GetInt("server.max_body_bytes"), 16 * 1024 * 1024);
  ASSERT_TRUE(config.SetFromFlag("log.level=debug").ok());
  EXPECT_EQ(config.GetString("log.level"), "debug");
  ASSERT_TRUE(config.SetFromFlag("serve.listen=a=b").ok());
  EXPECT_EQ(config.GetString("serve.listen"), "a=b");
  ASSERT_TRUE(config.SetFromFlag("server.tls.client_ca_file=").ok());
  EXPECT_EQ(config.GetString("server.tls.client_ca_file"), "");
}

TEST(ConfigSetTest, SetErrorsNameTheKey) {
  Config config = Config::Defaults();
  EXPECT_EQ(config.Set("server.max_header_bytes", "0").message(),
            "key 'server.max_header_bytes': 0 is below the minimum 1KiB");
  EXPECT_EQ(config.SetFromFlag("server.idle_timeout=10").message(),
            "key 'server.idle_timeout': expected a duration like 30s or 250ms, got '10' "
            "(a unit is required: ms, s, m or h)");
  EXPECT_EQ(config.SetFromFlag("server.max_bdy_bytes=1").message(),
            "unknown key 'server.max_bdy_bytes' (did you mean 'server.max_body_bytes'?)");
  Status missing_equals = config.SetFromFlag("server.max_body_bytes");
  EXPECT_EQ(missing_equals.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(missing_equals.message(),
            "--set 'server.max_body_bytes': expected key=value, e.g. "
            "server.max_body_bytes=16MiB");
  // A failed Set leaves the value as it was.
  EXPECT_EQ(config.GetInt("server.max_header_bytes"), 16 * 1024);
}

TEST(ConfigSetTest, DumpIsCanonical) {
  Config config = Config::Defaults();
  ASSERT_TRUE(config.Set("server.idle_timeout", "90000ms").ok());
  ASSERT_TRUE(config.Set("server.read_timeout", "60s").ok());
  ASSERT_TRUE(config.Set("server.max_body_bytes", "1048576").ok());
  ASSERT_TRUE(config.Set("server.max_header_bytes", "1536").ok());
  ASSERT_TRUE(config.Set("server.drain_timeout", "0ms").ok());
  EXPECT_EQ(DumpValue(config, "server.idle_timeout"), "90s");
  EXPECT_EQ(DumpValue(config, "server.read_timeout"), "1m");
  EXPECT_EQ(DumpValue(config, "server.max_body_bytes"), "1MiB");
  EXPECT_EQ(DumpValue(config, "server.max_header_bytes"), "1536");
  EXPECT_EQ(DumpValue(config, "server.drain_timeout"), "0s");
}

TEST(ConfigDeathTest, MisuseOfGettersAborts) {
  Config config = Config::Defaults();
  EXPECT_DEATH(config.GetInt("no.such.key"), "unknown config key 'no.such.key'");
  EXPECT_DEATH(config.GetString("server.max_body_bytes"),
               "config key 'server.max_body_bytes' is a bytes, read as string");
  EXPECT_DEATH(config.GetInt("server.idle_timeout"),
               "config key 'server.idle_timeout' is a duration, read as int");
  EXPECT_DEATH(config.GetBool("log.level"), "config key 'log.level' is a string, read as bool");
  EXPECT_DEATH(config.GetFloat("server.io_threads"), "is a int, read as float");
  Config empty;
  EXPECT_DEATH(empty.GetInt("server.io_threads"), "not made by Defaults");
}

TEST(ConfigValueTest, ParsesAndFormatsEachType) {
  EXPECT_EQ(ParseTypedValue(ConfigType::kFloat, "0.5")->number, 0.5);
  EXPECT_EQ(ParseTypedValue(ConfigType::kFloat, "1e3")->text, "1000");
  EXPECT_EQ(ParseTypedValue(ConfigType::kFloat, "-2.25")->text, "-2.25");
  EXPECT_FALSE(ParseTypedValue(ConfigType::kFloat, "nan").ok());
  EXPECT_FALSE(ParseTypedValue(ConfigType::kFloat, "inf").ok());
  EXPECT_FALSE(ParseTypedValue(ConfigType::kFloat, "1.5x").ok());
  EXPECT_FALSE(ParseTypedValue(ConfigType::kFloat, "").ok());
  EXPECT_EQ(ParseTypedValue(ConfigType::kInt, "-42")->integer, -42);
  EXPECT_FALSE(ParseTypedValue(ConfigType::kInt, "+42").ok());
  EXPECT_FALSE(ParseTypedValue(ConfigType::kInt, "0x10").ok());
  EXPECT_FALSE(ParseTypedValue(ConfigType::kInt, " 1").ok());
  EXPECT_FALSE(ParseTypedValue(ConfigType::kInt, "-").ok());
  EXPECT_EQ(ParseTypedValue(ConfigType::kInt, "9223372036854775807")->integer, INT64_MAX);
  EXPECT_FALSE(ParseTypedValue(ConfigType::kInt, "9223372036854775808").ok());
  EXPECT_EQ(ParseTypedValue(ConfigType::kDuration, "5m")->integer, 300000);
  EXPECT_EQ(ParseTypedValue(ConfigType::kDuration, "1h")->integer, 3600000);
  EXPECT_FALSE(ParseTypedValue(ConfigType::kDuration, "1.5s").ok());
  EXPECT_FALSE(ParseTypedValue(ConfigType::kDuration, "-5s").ok());
  EXPECT_FALSE(ParseTypedValue(ConfigType::kDuration, "5 s").ok());
  EXPECT_FALSE(ParseTypedValue(ConfigType::kDuration, "1h30m").ok());
  EXPECT_EQ(ParseTypedValue(ConfigType::kBytes, "1GiB")->integer, int64_t{1} << 30);
  EXPECT_EQ(ParseTypedValue(ConfigType::kBytes, "512")->integer, 512);
  EXPECT_FALSE(ParseTypedValue(ConfigType::kBytes, "1KB").ok());
  EXPECT_FALSE(ParseTypedValue(ConfigType::kBytes, "KiB").ok());
  EXPECT_FALSE(ParseTypedValue(ConfigType::kBool, "True").ok());
  EXPECT_FALSE(ParseTypedValue(ConfigType::kBool, "1").ok());
  EXPECT_EQ(FormatDuration(1500), "1500ms");
  EXPECT_EQ(FormatDuration(7200000), "2h");
  EXPECT_EQ(FormatBytes(3 << 20), "3MiB");
  EXPECT_EQ(FormatBytes(1000), "1000");
}

TEST(ConfigSchemaParseTest, BrokenSchemasAreRefusedWithTheKey) {
  auto error_of = [](const std::string& yaml) {
    Result<ConfigKeySpecs> parsed = ParseConfigSchema(yaml);
    EXPECT_FALSE(parsed.ok()) << yaml;
    return parsed.ok() ? std::string() : parsed.status().message();
  };
  EXPECT_EQ(error_of("a.b: {type: int, default: 5, min: 10, doc: A key.}"),
            "key 'a.b': default: 5 is below the minimum 10");
  EXPECT_EQ(error_of("a.b: {type: duration, default: 60s, doc: A key.}"),
            "key 'a.b': default '60s' is not in canonical form; write '1m'");
  EXPECT_EQ(error_of("a.b: {type: duration, default: fast, doc: A key.}"),
            "key 'a.b': default: expected a duration like 30s or 250ms, got 'fast'");
  EXPECT_EQ(error_of("a.b: {type: integer, default: 5, doc: A key.}"),
            "key 'a.b': type 'integer' is not one of int, float, bool, string, duration, bytes");
  EXPECT_EQ(error_of("a.b: {type: int, default: 5}"),
            "key 'a.b': doc must be one sentence on one line, ending with '.'");
  EXPECT_EQ(error_of("a.b: {type: int, doc: A key.}"), "key 'a.b': needs a default");
  EXPECT_EQ(error_of("a.b: {type: string, default: x, choices: [y, z], doc: A key.}"),
            "key 'a.b': default: expected y or z, got 'x'");
  EXPECT_EQ(error_of("a.b: {type: int, default: 5, min: 9, max: 1, doc: A key.}"),
            "key 'a.b': min 9 is above max 1");
  EXPECT_EQ(error_of("a.b: {type: bool, default: true, min: 1, doc: A key.}"),
            "key 'a.b': min and max apply only to int, float, duration and bytes");
  EXPECT_EQ(error_of("a.b: {type: int, default: 5, dok: A key., doc: A key.}"),
            "key 'a.b': unknown field 'dok'");
  EXPECT_EQ(error_of("a.b: {type: int, default: 5, doc: A key., doc: Another key.}"),
            "key 'a.b': field 'doc' given twice");
  EXPECT_EQ(error_of("A.b: {type: int, default: 5, doc: A key.}"),
            "key 'A.b': names are lower_snake_case segments joined by dots");
  EXPECT_EQ(error_of("a: {type: int, default: 5, doc: A key.}\n"
                     "a.b: {type: int, default: 5, doc: A key.}"),
            "key 'a': is both a key and the section of 'a.b'");
  EXPECT_NE(error_of("a.b: [unclosed").find("line 1"), std::string::npos);
}

TEST(ConfigSchemaParseTest, TheBuiltInSchemaParses) {
  EXPECT_FALSE(BuiltInConfigKeySpecs().empty());
  EXPECT_TRUE(IsConfigSection("server"));
  EXPECT_TRUE(IsConfigSection("server.tls"));
  EXPECT_FALSE(IsConfigSection("server.max_body_bytes"));
  EXPECT_FALSE(IsConfigSection("serv"));
}

}  // namespace
}  // namespace supercluster::base
