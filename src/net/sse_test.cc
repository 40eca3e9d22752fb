// Tests server-sent events: FormatSseEvent()'s wire form, and SseParser decoding it back
// however the stream is sliced, plus the parsing rules of the WHATWG event-stream format
// (line endings, comments, BOM, field syntax, dispatch, last event id, line limit).
#include "net/sse.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

namespace supercluster::net {
namespace {

// An event as (event type, data, id), which gtest compares and prints.
using Seen = std::tuple<std::string, std::string, std::string>;

Seen Event(std::string event, std::string data, std::string id) {
  return Seen(std::move(event), std::move(data), std::move(id));
}

Seen FromEvent(const SseEvent& event) { return Event(event.event, event.data, event.id); }

// Collects what a parser dispatches.
struct Collector {
  std::vector<Seen> events;
  SseParser parser{[this](const SseEvent& event) { events.push_back(FromEvent(event)); }};
};

std::vector<Seen> ParseAll(std::string_view stream) {
  Collector collector;
  EXPECT_TRUE(collector.parser.Feed(stream));
  return collector.events;
}

// Formats one event.
std::string Format(std::string event, std::string data, std::string id) {
  return FormatSseEvent(SseEvent{std::move(event), std::move(data), std::move(id)});
}

TEST(SseFormatTest, PlainDataEvent) {
  EXPECT_EQ(Format("", "hello", ""), "data: hello\n\n");
}

TEST(SseFormatTest, EventAndIdLinesComeBeforeData) {
  EXPECT_EQ(Format("update", "{}", "42"), "event: update\nid: 42\ndata: {}\n\n");
}

TEST(SseFormatTest, EmptyDataStillGivesOneDataLine) {
  // Without a data line the receiver would not dispatch the event at all.
  EXPECT_EQ(Format("ping", "", ""), "event: ping\ndata: \n\n");
}

TEST(SseFormatTest, EachLineOfDataGetsItsOwnDataField) {
  EXPECT_EQ(Format("", "a\nb\nc", ""), "data: a\ndata: b\ndata: c\n\n");
}

TEST(SseFormatTest, CrlfAndCrInDataAreLineEndsToo) {
  EXPECT_EQ(Format("", "a\r\nb", ""), "data: a\ndata: b\n\n");
  EXPECT_EQ(Format("", "a\rb", ""), "data: a\ndata: b\n\n");
  // CR CR is two line ends (an empty line between), not one CRLF.
  EXPECT_EQ(Format("", "a\r\rb", ""), "data: a\ndata: \ndata: b\n\n");
  // LF CR is two line ends as well.
  EXPECT_EQ(Format("", "a\n\rb", ""), "data: a\ndata: \ndata: b\n\n");
}

TEST(SseFormatTest, TrailingNewlineInDataIsKept) {
  EXPECT_EQ(Format("", "line\n", ""), "data: line\ndata: \n\n");
  EXPECT_EQ(Format("", "line\r\n", ""), "data: line\ndata: \n\n");
}

TEST(SseParserTest, ParsesOneEvent) {
  EXPECT_EQ(ParseAll("event: update\nid: 9\ndata: hi\n\n"),
            std::vector<Seen>{Event("update", "hi", "9")});
}

TEST(SseParserTest, JoinsDataLinesWithNewlines) {
  EXPECT_EQ(ParseAll("data: a\ndata: b\ndata:\ndata: c\n\n"),
            std::vector<Seen>{Event("", "a\nb\n\nc", "")});
}

TEST(SseParserTest, DispatchesOnlyAtTheBlankLine) {
  Collector collector;
  ASSERT_TRUE(collector.parser.Feed("data: a\n"));
  EXPECT_TRUE(collector.events.empty());
  ASSERT_TRUE(collector.parser.Feed("\n"));
  EXPECT_EQ(collector.events, std::vector<Seen>{Event("", "a", "")});
  // An event the stream ends in the middle of is never dispatched.
  ASSERT_TRUE(collector.parser.Feed("data: b\n"));
  EXPECT_EQ(collector.events.size(), 1u);
}

TEST(SseParserTest, HandlesCrlfLineEndings) {
  EXPECT_EQ(ParseAll("event: e\r\ndata: a\r\ndata: b\r\n\r\ndata: c\r\n\r\n"),
            (std::vector<Seen>{Event("e", "a\nb", ""), Event("", "c", "")}));
}

TEST(SseParserTest, HandlesCrLineEndings) {
  EXPECT_EQ(ParseAll("event: e\rdata: a\rdata: b\r\rdata: c\r\r"),
            (std::vector<Seen>{Event("e", "a\nb", ""), Event("", "c", "")}));
}

TEST(SseParserTest, HandlesMixedLineEndings) {
  EXPECT_EQ(ParseAll("data: a\rdata: b\ndata: c\r\n\n"),
            std::vector<Seen>{Event("", "a\nb\nc", "")});
}

TEST(SseParserTest, CrlfSplitAcrossFeedsIsOneLineEnd) {
  // Were the LF taken as a second line end, "x" would be dispatched on its own.
  Collector collector;
  ASSERT_TRUE(collector.parser.Feed("data: x\r"));
  ASSERT_TRUE(collector.parser.Feed("\n"));
  ASSERT_TRUE(collector.parser.Feed("data: y\r"));
  ASSERT_TRUE(collector.parser.Feed("\n\r"));
  ASSERT_TRUE(collector.parser.Feed("\n"));
  EXPECT_EQ(collector.events, std::vector<Seen>{Event("", "x\ny", "")});
}

TEST(SseParserTest, IgnoresComments) {
  EXPECT_EQ(ParseAll(": keep-alive\n\ndata: a\n:comment between lines\ndata: b\n\n:\n\n"),
            std::vector<Seen>{Event("", "a\nb", "")});
}

TEST(SseParserTest, StripsByteOrderMarkAtTheStart) {
  EXPECT_EQ(ParseAll("\xEF\xBB\xBF" "data: a\n\n"), std::vector<Seen>{Event("", "a", "")});
}

TEST(SseParserTest, StripsByteOrderMarkSplitAcrossFeeds) {
  Collector collector;
  ASSERT_TRUE(collector.parser.Feed("\xEF"));
  ASSERT_TRUE(collector.parser.Feed("\xBB"));
  ASSERT_TRUE(collector.parser.Feed("\xBF" "data: a\n\n"));
  EXPECT_EQ(collector.events, std::vector<Seen>{Event("", "a", "")});
}

TEST(SseParserTest, ByteOrderMarkLaterInTheStreamIsNotStripped) {
  // Only the stream's first bytes may be a BOM; later, it makes the field name unknown.
  EXPECT_EQ(ParseAll("data: a\n\n\xEF\xBB\xBF" "data: b\n\n"),
            std::vector<Seen>{Event("", "a", "")});
}

TEST(SseParserTest, FieldWithoutColonHasEmptyValue) {
  EXPECT_EQ(ParseAll("data\n\n"), std::vector<Seen>{Event("", "", "")});
  // Two empty data lines make one newline (the WHATWG example).
  EXPECT_EQ(ParseAll("data\ndata\n\n"), std::vector<Seen>{Event("", "\n", "")});
}

TEST(SseParserTest, ValueWithoutSpaceAfterColon) {
  EXPECT_EQ(ParseAll("event:e\ndata:x\n\n"), std::vector<Seen>{Event("e", "x", "")});
}

TEST(SseParserTest, OnlyOneLeadingSpaceIsRemoved) {
  EXPECT_EQ(ParseAll("data:  two spaces\ndata: colon: inside\n\n"),
            std::vector<Seen>{Event("", " two spaces\ncolon: inside", "")});
}

TEST(SseParserTest, EventWithoutDataIsNotDispatched) {
  Collector collector;
  ASSERT_TRUE(collector.parser.Feed("event: ping\n\n"));
  EXPECT_TRUE(collector.events.empty());
  // And its type does not carry over to the next event.
  ASSERT_TRUE(collector.parser.Feed("data: a\n\n"));
  EXPECT_EQ(collector.events, std::vector<Seen>{Event("", "a", "")});
}

TEST(SseParserTest, EventTypeDoesNotCarryOverButIdDoes) {
  EXPECT_EQ(ParseAll("event: first\nid: 1\ndata: a\n\ndata: b\n\nid: 2\ndata: c\n\n"),
            (std::vector<Seen>{Event("first", "a", "1"), Event("", "b", "1"),
                                   Event("", "c", "2")}));
}

TEST(SseParserTest, IdSetByAnEventWithoutDataStillPersists) {
  EXPECT_EQ(ParseAll("id: 7\n\ndata: a\n\n"), std::vector<Seen>{Event("", "a", "7")});
}

TEST(SseParserTest, EmptyIdResetsTheLastEventId) {
  EXPECT_EQ(ParseAll("id: 1\ndata: a\n\nid\ndata: b\n\n"),
            (std::vector<Seen>{Event("", "a", "1"), Event("", "b", "")}));
}

TEST(SseParserTest, IdContainingNulIsIgnored) {
  using namespace std::string_literals;
  EXPECT_EQ(ParseAll("id: 1\ndata: a\n\nid: 2\0x\ndata: b\n\n"s),
            (std::vector<Seen>{Event("", "a", "1"), Event("", "b", "1")}));
}

TEST(SseParserTest, IgnoresRetryAndUnknownFields) {
  EXPECT_EQ(ParseAll("retry: 1000\nfoo: bar\nDATA: upper\ndata: a\n\n"),
            std::vector<Seen>{Event("", "a", "")});
}

TEST(SseParserTest, ExtraBlankLinesDispatchNothing) {
  EXPECT_EQ(ParseAll("\n\n\r\n\rdata: a\n\n\n\n"), std::vector<Seen>{Event("", "a", "")});
}

TEST(SseParserTest, LineOverTheLimitFailsFeed) {
  std::vector<Seen> events;
  SseParser parser([&](const SseEvent& event) { events.push_back(FromEvent(event)); }, 16);
  EXPECT_TRUE(parser.Feed("data: 0123456789\n\n"));  // 16 bytes: at the limit
  EXPECT_EQ(events.size(), 1u);
  EXPECT_FALSE(parser.Feed("data: 01234567890\n\n"));  // 17 bytes
  EXPECT_EQ(events.size(), 1u);
}

TEST(SseParserTest, LineOverTheLimitIsCaughtAcrossFeeds) {
  SseParser parser([](const SseEvent&) {}, 16);
  EXPECT_TRUE(parser.Feed("data: 01234"));
  EXPECT_TRUE(parser.Feed("56789"));
  EXPECT_FALSE(parser.Feed("0"));
}

TEST(SseParserTest, ManyShortDataLinesInOneEventHitTheEventLimit) {
  // A hostile stream that never dispatches must not grow the pending event forever.
  SseParser parser([](const SseEvent&) {}, 64);
  bool accepted = true;
  for (int i = 0; i < 100 && accepted; ++i) accepted = parser.Feed("data: 0123456789\n");
  EXPECT_FALSE(accepted);
}

TEST(SseFormatTest, LineBreaksInEventTypeAndIdCannotAddFields) {
  std::vector<Seen> events;
  SseParser parser([&](const SseEvent& event) { events.push_back(FromEvent(event)); });
  ASSERT_TRUE(parser.Feed(FormatSseEvent({"token\ndata: injected", "real", "7\r\nevent: x"})));
  EXPECT_EQ(events, std::vector<Seen>{Event("token", "real", "7")});
}

TEST(SseParserTest, ManyShortEventsDoNotHitTheEventLimit) {
  SseParser parser([](const SseEvent&) {}, 16);
  for (int i = 0; i < 100; ++i) {
    ASSERT_TRUE(parser.Feed("data: 0123456789\n\n")) << i;
  }
}

// --- Round trips through FormatSseEvent and SseParser ---

// Events as formatted, and what the parser hands back: line ends become "\n", and an
// event without an id reports the last one seen.
const std::vector<Seen> kSent = {
    Event("", "hello", ""),
    Event("token", "multi\nline\ndata", "1"),
    Event("", "crlf\r\nand\rcr", ""),
    Event("done", "", "2"),
    Event("", "\xE2\x82\xAC utf-8 \xF0\x9F\x98\x80", ""),
    Event("", "\n", "3"),
    Event("", ": not a comment", ""),
    Event("", "data: not a field", "4"),
};
const std::vector<Seen> kReceived = {
    Event("", "hello", ""),
    Event("token", "multi\nline\ndata", "1"),
    Event("", "crlf\nand\ncr", "1"),
    Event("done", "", "2"),
    Event("", "\xE2\x82\xAC utf-8 \xF0\x9F\x98\x80", "2"),
    Event("", "\n", "3"),
    Event("", ": not a comment", "3"),
    Event("", "data: not a field", "4"),
};

std::string FormattedStream() {
  std::string stream;
  for (const Seen& event : kSent) stream += std::apply(Format, event);
  return stream;
}

TEST(SseRoundTripTest, WholeStreamAtOnce) {
  EXPECT_EQ(ParseAll(FormattedStream()), kReceived);
}

TEST(SseRoundTripTest, OneByteAtATime) {
  std::string stream = FormattedStream();
  Collector collector;
  for (char c : stream) ASSERT_TRUE(collector.parser.Feed(std::string_view(&c, 1)));
  EXPECT_EQ(collector.events, kReceived);
}

TEST(SseRoundTripTest, RandomSplits) {
  std::string stream = FormattedStream();
  std::mt19937 random(20240611);
  for (int round = 0; round < 200; ++round) {
    SCOPED_TRACE(round);
    Collector collector;
    std::string_view rest = stream;
    while (!rest.empty()) {
      size_t size = std::uniform_int_distribution<size_t>(0, 12)(random);
      size = std::min(size, rest.size());
      ASSERT_TRUE(collector.parser.Feed(rest.substr(0, size)));
      rest.remove_prefix(size);
    }
    ASSERT_EQ(collector.events, kReceived);
  }
}

TEST(SseRoundTripTest, CrlfStreamInRandomSplits) {
  // The same events framed with CRLF, as some servers send them.
  std::string stream;
  for (char c : FormattedStream()) {
    if (c == '\n') {
      stream += "\r\n";
    } else {
      stream += c;
    }
  }
  std::mt19937 random(7);
  for (int round = 0; round < 100; ++round) {
    SCOPED_TRACE(round);
    Collector collector;
    std::string_view rest = stream;
    while (!rest.empty()) {
      size_t size = std::min(std::uniform_int_distribution<size_t>(1, 5)(random), rest.size());
      ASSERT_TRUE(collector.parser.Feed(rest.substr(0, size)));
      rest.remove_prefix(size);
    }
    ASSERT_EQ(collector.events, kReceived);
  }
}

}  // namespace
}  // namespace supercluster::net
