// Sealed response streams: round trips under any split, and every way a stream can be
// damaged in transit (truncated, reordered, replayed, altered, end dropped) is detected.
#include "crypto/chunked_response.h"

#include <gtest/gtest.h>

#include <random>

namespace supercluster::crypto {
namespace {

class ChunkedResponseTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto key = HpkeKeyPair::Generate(HpkeKem::kX25519Sha256);
    ASSERT_TRUE(key.ok());
    key_.emplace(std::move(*key));
    config_.key_id = 1;
    config_.public_key = key_->public_key();
    config_.suites = {{HpkeKdf::kHkdfSha256, HpkeAead::kAes128Gcm}};
    auto client = OhttpEncapsulateRequest(config_, suite_, kInferenceLabels, AsBytes("prompt"));
    ASSERT_TRUE(client.ok());
    client_.emplace(std::move(*client));
    auto server =
        OhttpDecapsulateRequest(config_, *key_, kInferenceLabels, client_->encapsulated);
    ASSERT_TRUE(server.ok());
    server_.emplace(std::move(*server));
  }

  // Seals `count` chunks "chunk 0", "chunk 1", ..., the last one final.
  std::vector<Bytes> SealChunks(int count) {
    auto sealer = ChunkedResponseSealer::Start(server_->context, kInferenceLabels, server_->enc);
    EXPECT_TRUE(sealer.ok());
    std::vector<Bytes> chunks;
    for (int i = 0; i < count; ++i) {
      auto chunk = sealer->Seal(AsBytes("chunk " + std::to_string(i)), i == count - 1);
      EXPECT_TRUE(chunk.ok());
      chunks.push_back(std::move(*chunk));
    }
    return chunks;
  }

  ChunkedResponseOpener Opener() {
    return ChunkedResponseOpener::ForRequest(client_->context, kInferenceLabels, client_->enc);
  }

  // Feeds the chunks whole, then finishes; returns the status and the opened texts.
  base::Status OpenAll(const std::vector<Bytes>& chunks, std::vector<std::string>* texts) {
    ChunkedResponseOpener opener = Opener();
    std::vector<Bytes> out;
    for (const Bytes& chunk : chunks) {
      base::Status status = opener.Feed(chunk, &out);
      if (!status.ok()) return status;
    }
    base::Status status = opener.Finish(&out);
    for (const Bytes& piece : out) texts->push_back(ToString(piece));
    return status;
  }

  HpkeSuite suite_{HpkeKem::kX25519Sha256, HpkeKdf::kHkdfSha256, HpkeAead::kAes128Gcm};
  std::optional<HpkeKeyPair> key_;
  OhttpKeyConfig config_;
  std::optional<OhttpClientRequest> client_;
  std::optional<OhttpServerRequest> server_;
};

TEST_F(ChunkedResponseTest, HundredChunksRoundTripUnderRandomSplits) {
  std::vector<Bytes> chunks = SealChunks(100);
  Bytes stream;
  for (const Bytes& chunk : chunks) stream.insert(stream.end(), chunk.begin(), chunk.end());
  std::mt19937 random(42);
  for (int trial = 0; trial < 20; ++trial) {
    ChunkedResponseOpener opener = Opener();
    std::vector<Bytes> out;
    size_t offset = 0;
    while (offset < stream.size()) {
      size_t take = std::min<size_t>(stream.size() - offset, 1 + random() % 40);
      ASSERT_TRUE(opener.Feed(ByteView(stream).subspan(offset, take), &out).ok());
      offset += take;
    }
    EXPECT_EQ(out.size(), 99u) << "the final chunk opens only at the end of the stream";
    ASSERT_TRUE(opener.Finish(&out).ok());
    EXPECT_TRUE(opener.complete());
    ASSERT_EQ(out.size(), 100u);
    for (int i = 0; i < 100; ++i) EXPECT_EQ(ToString(out[i]), "chunk " + std::to_string(i));
  }
}

TEST_F(ChunkedResponseTest, EmptyFinalChunkAndSingleChunkStreams) {
  auto sealer = ChunkedResponseSealer::Start(server_->context, kInferenceLabels, server_->enc);
  ASSERT_TRUE(sealer.ok());
  auto only = sealer->Seal({}, /*final=*/true);
  ASSERT_TRUE(only.ok());
  std::vector<std::string> texts;
  ASSERT_TRUE(OpenAll({*only}, &texts).ok());
  EXPECT_EQ(texts, std::vector<std::string>{""});
  EXPECT_EQ(sealer->Seal(AsBytes("late"), false).status().code(),
            base::StatusCode::kFailedPrecondition);
}

TEST_F(ChunkedResponseTest, DroppedFinalChunkIsTruncation) {
  std::vector<Bytes> chunks = SealChunks(5);
  chunks.pop_back();
  std::vector<std::string> texts;
  base::Status status = OpenAll(chunks, &texts);
  EXPECT_EQ(status.code(), base::StatusCode::kDataLoss) << status.ToString();
  EXPECT_NE(status.message().find("truncated"), std::string::npos);
}

TEST_F(ChunkedResponseTest, StreamCutAnywhereIsNeverComplete) {
  std::vector<Bytes> chunks = SealChunks(4);
  Bytes stream;
  for (const Bytes& chunk : chunks) stream.insert(stream.end(), chunk.begin(), chunk.end());
  for (size_t length = 0; length < stream.size(); ++length) {
    ChunkedResponseOpener opener = Opener();
    std::vector<Bytes> out;
    base::Status fed = opener.Feed(ByteView(stream).first(length), &out);
    base::Status finished = fed.ok() ? opener.Finish(&out) : fed;
    EXPECT_FALSE(finished.ok()) << "a stream cut at " << length << " bytes looked complete";
    EXPECT_FALSE(opener.complete());
  }
}

TEST_F(ChunkedResponseTest, ReorderedChunksAreRefused) {
  std::vector<Bytes> chunks = SealChunks(4);
  // Chunk 0 carries the preamble, so swap 1 and 2.
  std::swap(chunks[1], chunks[2]);
  std::vector<std::string> texts;
  base::Status status = OpenAll(chunks, &texts);
  EXPECT_EQ(status.code(), base::StatusCode::kPermissionDenied) << status.ToString();
  EXPECT_EQ(texts.size(), 0u) << "nothing after the bad chunk is delivered";
}

TEST_F(ChunkedResponseTest, ReplayedChunkIsRefused) {
  std::vector<Bytes> chunks = SealChunks(4);
  chunks.insert(chunks.begin() + 2, chunks[1]);
  std::vector<std::string> texts;
  EXPECT_EQ(OpenAll(chunks, &texts).code(), base::StatusCode::kPermissionDenied);
}

TEST_F(ChunkedResponseTest, EveryFlippedByteIsRefused) {
  std::vector<Bytes> chunks = SealChunks(3);
  for (size_t which = 0; which < chunks.size(); ++which) {
    for (size_t i = 0; i < chunks[which].size(); ++i) {
      std::vector<Bytes> altered = chunks;
      altered[which][i] ^= 0x80;
      std::vector<std::string> texts;
      EXPECT_FALSE(OpenAll(altered, &texts).ok()) << "chunk " << which << " byte " << i;
    }
  }
}

TEST_F(ChunkedResponseTest, FinalChunkCannotPassAsAnOrdinaryOne) {
  // Re-frame the final chunk with its real length: its "final" AAD no longer matches, and a
  // stream without a final marker is incomplete either way.
  std::vector<Bytes> chunks = SealChunks(2);
  Bytes final_chunk = chunks[1];
  ASSERT_EQ(final_chunk[0], 0);
  Bytes reframed{static_cast<uint8_t>(final_chunk.size() - 1)};
  reframed.insert(reframed.end(), final_chunk.begin() + 1, final_chunk.end());
  chunks[1] = reframed;
  std::vector<std::string> texts;
  EXPECT_FALSE(OpenAll(chunks, &texts).ok());
}

TEST_F(ChunkedResponseTest, AnotherRequestsStreamDoesNotOpen) {
  auto other = OhttpEncapsulateRequest(config_, suite_, kInferenceLabels, AsBytes("prompt"));
  ASSERT_TRUE(other.ok());
  std::vector<Bytes> chunks = SealChunks(2);
  ChunkedResponseOpener opener =
      ChunkedResponseOpener::ForRequest(other->context, kInferenceLabels, other->enc);
  std::vector<Bytes> out;
  EXPECT_EQ(opener.Feed(chunks[0], &out).code(), base::StatusCode::kPermissionDenied);
  EXPECT_FALSE(opener.Feed(chunks[1], &out).ok()) << "a failed opener stays failed";
}

TEST_F(ChunkedResponseTest, OversizedChunkLengthIsRefusedBeforeBuffering) {
  std::vector<Bytes> chunks = SealChunks(1);
  size_t preamble = OhttpResponseNonceSize(HpkeAead::kAes128Gcm);
  Bytes hostile(chunks[0].begin(), chunks[0].begin() + preamble);
  for (uint8_t byte : {0xC0, 0x00, 0x00, 0x00, 0xFF, 0xFF, 0xFF, 0xFF}) hostile.push_back(byte);
  ChunkedResponseOpener opener = Opener();
  std::vector<Bytes> out;
  base::Status status = opener.Feed(hostile, &out);
  EXPECT_EQ(status.code(), base::StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("over the limit"), std::string::npos);
}

}  // namespace
}  // namespace supercluster::crypto
