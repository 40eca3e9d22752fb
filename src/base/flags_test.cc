#include "base/flags.h"

#include <gtest/gtest.h>

namespace supercluster::base {
namespace {

struct Fixture {
  std::string listen = "127.0.0.1:8080";
  int64_t threads = 2;
  double temperature = 0.7;
  bool json = false;
  std::vector<std::string> sets;
  FlagSet flags{"supercluster test [flags]"};
  Fixture() {
    flags.AddString("listen", &listen, "address to listen on");
    flags.AddInt("threads", &threads, "io threads");
    flags.AddDouble("temperature", &temperature, "sampling temperature");
    flags.AddBool("json", &json, "machine-readable output");
    flags.AddRepeated("set", &sets, "override a config key");
  }
};

TEST(FlagSetTest, ParsesBothValueForms) {
  Fixture f;
  ASSERT_TRUE(f.flags.Parse({"--listen", "0.0.0.0:1", "--threads=8", "--json",
                             "--temperature", "0.25", "--set", "a=1", "--set=b=2"}).ok());
  EXPECT_EQ(f.listen, "0.0.0.0:1");
  EXPECT_EQ(f.threads, 8);
  EXPECT_DOUBLE_EQ(f.temperature, 0.25);
  EXPECT_TRUE(f.json);
  EXPECT_EQ(f.sets, (std::vector<std::string>{"a=1", "b=2"}));
}

TEST(FlagSetTest, DefaultsStayWhenAbsent) {
  Fixture f;
  ASSERT_TRUE(f.flags.Parse({}).ok());
  EXPECT_EQ(f.listen, "127.0.0.1:8080");
  EXPECT_EQ(f.threads, 2);
}

TEST(FlagSetTest, RejectsBadInputNamingTheFlag) {
  Fixture f;
  Status unknown = f.flags.Parse({"--nope"});
  EXPECT_NE(unknown.message().find("--nope"), std::string::npos);
  Fixture g;
  Status bad_int = g.flags.Parse({"--threads", "eight"});
  EXPECT_NE(bad_int.message().find("--threads"), std::string::npos);
  EXPECT_EQ(g.threads, 2);
  Fixture h;
  EXPECT_FALSE(h.flags.Parse({"--threads"}).ok());
  Fixture i;
  EXPECT_FALSE(i.flags.Parse({"--threads", "99999999999999999999999"}).ok());
  Fixture j;
  EXPECT_FALSE(j.flags.Parse({"-x"}).ok());
  Fixture k;
  EXPECT_FALSE(k.flags.Parse({"stray"}).ok());
  Fixture l;
  EXPECT_FALSE(l.flags.Parse({"--json=maybe"}).ok());
  for (const char* not_finite : {"nan", "-nan", "inf", "-Infinity", "1e999"}) {
    Fixture m;
    Status refused = m.flags.Parse({"--temperature", not_finite});
    EXPECT_FALSE(refused.ok()) << not_finite;
    EXPECT_EQ(m.temperature, 0.7) << not_finite;
  }
}

// An empty value given on purpose (a script's unset variable) is refused rather than read
// as "not given", for string and repeated flags.
TEST(FlagSetTest, EmptyStringValuesAreRefusedNamingTheFlag) {
  for (std::vector<std::string> args : std::vector<std::vector<std::string>>{
           {"--listen", ""}, {"--listen="}, {"--set", ""}, {"--set="}}) {
    Fixture f;
    Status refused = f.flags.Parse(args);
    EXPECT_FALSE(refused.ok()) << args[0];
    EXPECT_NE(refused.message().find("non-empty"), std::string::npos) << refused.message();
    EXPECT_EQ(f.listen, "127.0.0.1:8080");
    EXPECT_TRUE(f.sets.empty());
  }
}

TEST(FlagSetTest, PositionalsAndDoubleDash) {
  Fixture f;
  std::vector<std::string> files;
  f.flags.AllowPositional(&files, "FILE");
  ASSERT_TRUE(f.flags.Parse({"a.gguf", "--json", "--", "--not-a-flag"}).ok());
  EXPECT_EQ(files, (std::vector<std::string>{"a.gguf", "--not-a-flag"}));
}

TEST(FlagSetTest, HelpListsFlagsAndDefaults) {
  Fixture f;
  ASSERT_TRUE(f.flags.Parse({"--threads", "3", "--help"}).ok());
  EXPECT_TRUE(f.flags.help_requested());
  std::string help = f.flags.Help();
  EXPECT_NE(help.find("--listen VALUE"), std::string::npos);
  EXPECT_NE(help.find("(default \"127.0.0.1:8080\")"), std::string::npos);
  EXPECT_NE(help.find("--json "), std::string::npos);
}

}  // namespace
}  // namespace supercluster::base
