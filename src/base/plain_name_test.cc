#include "base/plain_name.h"

#include <gtest/gtest.h>

#include <string>

namespace supercluster::base {
namespace {

TEST(PlainNameTest, LettersDigitsAndThreeMarksWithinTheSize) {
  for (const char* name : {"us-east-1", "w1", "kjv", "a.b_c-D9", "0"}) {
    EXPECT_TRUE(IsPlainName(name, 32)) << name;
  }
  for (const std::string& name : {std::string(), std::string("a b"), std::string("a/b"),
                                 std::string("a\nb"), std::string("caf\xc3\xa9"),
                                 std::string("a\0b", 3), std::string("%41"), std::string("~")}) {
    EXPECT_FALSE(IsPlainName(name, 32)) << testing::PrintToString(name);
  }
  EXPECT_TRUE(IsPlainName(std::string(32, 'x'), 32));
  EXPECT_FALSE(IsPlainName(std::string(33, 'x'), 32));
}

}  // namespace
}  // namespace supercluster::base
