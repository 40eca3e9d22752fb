#include "base/status.h"

#include <gtest/gtest.h>

namespace supercluster::base {
namespace {

Result<int> ParsePositive(int x) {
  if (x <= 0) return InvalidArgument("value must be positive, got " + std::to_string(x));
  return x;
}

Status DoubleIt(int x, int* out) {
  SC_ASSIGN_OR_RETURN(int value, ParsePositive(x));
  *out = value * 2;
  return Status::Ok();
}

Status Chain(bool fail) {
  SC_RETURN_IF_ERROR(fail ? NotFound("missing") : Status::Ok());
  return Internal("reached end");
}

TEST(StatusTest, OkByDefault) {
  Status s;
  EXPECT_TRUE(s.ok());
  EXPECT_EQ(s.ToString(), "ok");
}

TEST(StatusTest, CarriesCodeAndMessage) {
  Status s = ResourceExhausted("queue full (64 waiting)");
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(s.ToString(), "resource_exhausted: queue full (64 waiting)");
}

TEST(StatusTest, WithContextPrefixesMessageAndKeepsCode) {
  Status s = DataLoss("offset past end").WithContext("tensor 'a'");
  EXPECT_EQ(s.code(), StatusCode::kDataLoss);
  EXPECT_EQ(s.message(), "tensor 'a': offset past end");
  EXPECT_TRUE(Status::Ok().WithContext("ignored").ok());
}

TEST(ResultTest, ValueAndError) {
  Result<int> good = ParsePositive(3);
  ASSERT_TRUE(good.ok());
  EXPECT_EQ(*good, 3);
  Result<int> bad = ParsePositive(-1);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
}

TEST(ResultTest, OkStatusWithoutValueBecomesInternal) {
  Result<int> r = Status::Ok();
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInternal);
}

TEST(MacroTest, AssignOrReturnPropagates) {
  int out = 0;
  EXPECT_TRUE(DoubleIt(4, &out).ok());
  EXPECT_EQ(out, 8);
  Status s = DoubleIt(0, &out);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(out, 8);
}

TEST(MacroTest, ReturnIfErrorStopsEarly) {
  EXPECT_EQ(Chain(true).code(), StatusCode::kNotFound);
  EXPECT_EQ(Chain(false).code(), StatusCode::kInternal);
}

}  // namespace
}  // namespace supercluster::base
