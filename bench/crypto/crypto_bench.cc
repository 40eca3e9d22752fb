// crypto_bench: what HPKE (src/crypto) costs per request, next to the OpenSSL primitives it
// is built from, measured in the same run on the same machine.
//
//   HPKE:   single-shot HpkeSeal and HpkeOpen (RFC 9180 section 6.1, base mode) of a 4 KiB
//           request, for DHKEM(X25519, HKDF-SHA256) + HKDF-SHA256 with AES-128-GCM and with
//           ChaCha20-Poly1305: what a client pays to seal a prompt and an enclave to open it.
//   formats: Supercluster's sealed request envelope (4 KiB, one recipient) and a streamed
//           answer of 100 sealed 32-byte chunks, sealed and opened (docs/protocol.md).
//   anchor: the same work done by OpenSSL directly through EVP: one X25519 key generation,
//           one X25519 derive (with ready EVP_PKEYs), and one AEAD seal or open of 4 KiB
//           (fresh EVP_CIPHER_CTX, cipher fetched once, as HPKE's AEAD does).
//
// ratio = HPKE / (the raw parts it needs): seal needs keygen + derive + AEAD seal, open needs
// derive + AEAD open. What is above 1.00 is HPKE's own work (the key schedule's HKDF calls,
// parsing keys, allocations), not the primitives.
//
// Every measurement runs in --rounds slices interleaved with the others (HPKE, raw, HPKE,
// ...), so a drift of the machine's clock speed hits all alike; the reported figure is the
// median slice's mean time per operation. One thread.
//
// Usage: crypto_bench [--duration SECONDS] [--rounds N] [--json FILE] [--machine TEXT]
// bench/crypto/run.sh adds the machine description (or `make bench`).
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <functional>
#include <iostream>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "base/flags.h"
#include "base/status.h"
#include "crypto/chunked_response.h"
#include "crypto/hpke.h"
#include "crypto/multi_recipient.h"
#include "crypto/ohttp.h"

namespace supercluster::bench {
namespace {

using Clock = std::chrono::steady_clock;
using crypto::Bytes;
using crypto::ByteView;

constexpr size_t kRequestBytes = 4096;

struct Settings {
  double duration_s = 1.0;  // per measurement, split over the rounds
  int64_t rounds = 7;
  std::string json_path;
  std::string machine;
};

// Consumed results go here so the optimizer cannot drop the work that made them.
volatile size_t g_sink = 0;

// One timed operation. `op` returns false on failure, which aborts the run: a benchmark of
// something that does not work measures nothing.
struct Measurement {
  Measurement(std::string name_in, std::function<bool()> op_in)
      : name(std::move(name_in)), op(std::move(op_in)) {}

  std::string name;
  std::function<bool()> op;
  std::vector<double> round_us;  // mean µs per op in each round
  int64_t total_ops = 0;

  double MedianUs() const {
    std::vector<double> sorted = round_us;
    std::sort(sorted.begin(), sorted.end());
    return sorted.empty() ? 0 : sorted[sorted.size() / 2];
  }
};

// --- the raw OpenSSL anchor -------------------------------------------------------------

struct PkeyDeleter {
  void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyDeleter>;

bool RawX25519Keygen(Pkey* out) {
  EVP_PKEY_CTX* context = EVP_PKEY_CTX_new_id(EVP_PKEY_X25519, nullptr);
  EVP_PKEY* key = nullptr;
  bool ok = context != nullptr && EVP_PKEY_keygen_init(context) == 1 &&
            EVP_PKEY_keygen(context, &key) == 1;
  EVP_PKEY_CTX_free(context);
  out->reset(key);
  return ok;
}

bool RawX25519Derive(EVP_PKEY* private_key, EVP_PKEY* peer, uint8_t shared[32]) {
  EVP_PKEY_CTX* context = EVP_PKEY_CTX_new(private_key, nullptr);
  size_t size = 32;
  bool ok = context != nullptr && EVP_PKEY_derive_init(context) == 1 &&
            EVP_PKEY_derive_set_peer(context, peer) == 1 &&
            EVP_PKEY_derive(context, shared, &size) == 1 && size == 32;
  EVP_PKEY_CTX_free(context);
  return ok;
}

// AEAD seal (encrypt = true: in -> out || tag) or open (in = ciphertext || tag -> out).
bool RawAead(const EVP_CIPHER* cipher, bool encrypt, ByteView key, ByteView nonce, ByteView aad,
             ByteView in, uint8_t* out) {
  EVP_CIPHER_CTX* context = EVP_CIPHER_CTX_new();
  if (context == nullptr) return false;
  int written = 0;
  bool ok;
  if (encrypt) {
    ok = EVP_EncryptInit_ex2(context, cipher, key.data(), nonce.data(), nullptr) == 1 &&
         EVP_EncryptUpdate(context, nullptr, &written, aad.data(), static_cast<int>(aad.size())) ==
             1 &&
         EVP_EncryptUpdate(context, out, &written, in.data(), static_cast<int>(in.size())) == 1 &&
         EVP_EncryptFinal_ex(context, out + written, &written) == 1 &&
         EVP_CIPHER_CTX_ctrl(context, EVP_CTRL_AEAD_GET_TAG, 16, out + in.size()) == 1;
  } else {
    size_t body = in.size() - 16;
    ok = EVP_DecryptInit_ex2(context, cipher, key.data(), nonce.data(), nullptr) == 1 &&
         EVP_DecryptUpdate(context, nullptr, &written, aad.data(), static_cast<int>(aad.size())) ==
             1 &&
         EVP_DecryptUpdate(context, out, &written, in.data(), static_cast<int>(body)) == 1 &&
         EVP_CIPHER_CTX_ctrl(context, EVP_CTRL_AEAD_SET_TAG, 16,
                             const_cast<uint8_t*>(in.data() + body)) == 1 &&
         EVP_DecryptFinal_ex(context, out + written, &written) == 1;
  }
  EVP_CIPHER_CTX_free(context);
  return ok;
}

// --- one suite: HPKE and its raw parts ----------------------------------------------------

struct SuiteBench {
  std::string label;       // "AES-128-GCM"
  crypto::HpkeSuite suite;
  const EVP_CIPHER* cipher = nullptr;
  size_t key_size = 0;
};

// Shared inputs, built once.
struct Inputs {
  crypto::HpkeKeyPair recipient;
  Bytes info = crypto::ToBytes("supercluster crypto_bench");
  Bytes aad = crypto::ToBytes("request header");
  Bytes request = Bytes(kRequestBytes, 0x5a);
};

// Adds HPKE seal/open and raw AEAD seal/open for one suite; checks each works first.
base::Status AddSuite(const SuiteBench& bench, const Inputs& inputs,
                      std::vector<Measurement>& measurements) {
  auto sealed = crypto::HpkeSeal(bench.suite, inputs.recipient.public_key(), inputs.info,
                                 inputs.aad, inputs.request);
  if (!sealed.ok()) return sealed.status().WithContext("HpkeSeal " + bench.label);
  auto opened = crypto::HpkeOpen(bench.suite, sealed->enc, inputs.recipient, inputs.info,
                                 inputs.aad, sealed->ciphertext);
  if (!opened.ok()) return opened.status().WithContext("HpkeOpen " + bench.label);
  if (*opened != inputs.request) return base::Internal("HPKE round trip changed the request");

  auto enc = std::make_shared<Bytes>(sealed->enc);
  auto ciphertext = std::make_shared<Bytes>(sealed->ciphertext);
  measurements.push_back({"hpke_seal_" + bench.label, [&inputs, bench] {
                            auto result = crypto::HpkeSeal(bench.suite,
                                                           inputs.recipient.public_key(),
                                                           inputs.info, inputs.aad, inputs.request);
                            if (!result.ok()) return false;
                            g_sink = g_sink + result->ciphertext.size();
                            return true;
                          }});
  measurements.push_back({"hpke_open_" + bench.label, [&inputs, bench, enc, ciphertext] {
                            auto result = crypto::HpkeOpen(bench.suite, *enc, inputs.recipient,
                                                           inputs.info, inputs.aad, *ciphertext);
                            if (!result.ok()) return false;
                            g_sink = g_sink + result->size();
                            return true;
                          }});

  if (bench.cipher == nullptr) return base::Internal("cannot fetch " + bench.label);
  auto key = std::make_shared<Bytes>(bench.key_size, 0x11);
  auto nonce = std::make_shared<Bytes>(12, 0x22);
  auto raw_sealed = std::make_shared<Bytes>(kRequestBytes + 16);
  auto raw_opened = std::make_shared<Bytes>(kRequestBytes);
  if (!RawAead(bench.cipher, true, *key, *nonce, inputs.aad, inputs.request, raw_sealed->data()) ||
      !RawAead(bench.cipher, false, *key, *nonce, inputs.aad, *raw_sealed, raw_opened->data()) ||
      *raw_opened != inputs.request) {
    return base::Internal("raw EVP " + bench.label + " round trip failed");
  }
  measurements.push_back({"raw_seal_" + bench.label, [&inputs, bench, key, nonce] {
                            static thread_local Bytes out(kRequestBytes + 16);
                            bool ok = RawAead(bench.cipher, true, *key, *nonce, inputs.aad,
                                              inputs.request, out.data());
                            g_sink = g_sink + out[0];
                            return ok;
                          }});
  measurements.push_back({"raw_open_" + bench.label, [&inputs, bench, key, nonce, raw_sealed] {
                            static thread_local Bytes out(kRequestBytes);
                            bool ok = RawAead(bench.cipher, false, *key, *nonce, inputs.aad,
                                              *raw_sealed, out.data());
                            g_sink = g_sink + out[0];
                            return ok;
                          }});
  return base::Status::Ok();
}

base::Status AddX25519(std::vector<Measurement>& measurements) {
  auto own = std::make_shared<Pkey>();
  auto peer = std::make_shared<Pkey>();
  uint8_t shared[32];
  if (!RawX25519Keygen(own.get()) || !RawX25519Keygen(peer.get()) ||
      !RawX25519Derive(own->get(), peer->get(), shared)) {
    return base::Internal("raw EVP X25519 failed");
  }
  measurements.push_back({"raw_x25519_keygen", [] {
                            Pkey key;
                            bool ok = RawX25519Keygen(&key);
                            g_sink = g_sink + (key ? 1 : 0);
                            return ok;
                          }});
  measurements.push_back({"raw_x25519_derive", [own, peer] {
                            uint8_t secret[32];
                            bool ok = RawX25519Derive(own->get(), peer->get(), secret);
                            g_sink = g_sink + secret[0];
                            return ok;
                          }});
  return base::Status::Ok();
}

// The sealed request as Supercluster sends it (a multi-recipient envelope to one enclave,
// crypto/multi_recipient.h) and one streamed answer of kChunks chunks of kChunkBytes each
// (crypto/chunked_response.h), against the raw AEAD work they cannot avoid: one AEAD seal
// per chunk and one open per chunk with the same key. The stream's own extra cost is the
// response-key derivation (one HPKE export, one HKDF extract, two expands), the framing and
// the allocations.
constexpr int kChunks = 100;
constexpr size_t kChunkBytes = 32;  // a few tokens of text per chunk

base::Status AddStreamedResponseMeasurements(const Inputs& inputs,
                                             std::vector<Measurement>& measurements) {
  crypto::OhttpKeyConfig config;
  config.key_id = 1;
  config.public_key = inputs.recipient.public_key();
  config.suites = {{crypto::HpkeKdf::kHkdfSha256, crypto::HpkeAead::kAes128Gcm}};
  auto envelope = crypto::SealForRecipients({config}, crypto::HpkeAead::kAes128Gcm,
                                            crypto::kInferenceLabels, inputs.request);
  if (!envelope.ok()) return envelope.status().WithContext("SealForRecipients");
  auto opened = crypto::OpenAsRecipient(config, inputs.recipient, crypto::kInferenceLabels,
                                        envelope->sealed);
  if (!opened.ok()) return opened.status().WithContext("OpenAsRecipient");
  auto client = std::make_shared<crypto::MultiRecipientClientRequest>(std::move(*envelope));
  auto server = std::make_shared<crypto::MultiRecipientServerRequest>(std::move(*opened));
  auto config_ptr = std::make_shared<crypto::OhttpKeyConfig>(config);

  measurements.push_back({"envelope_seal_4k", [&inputs, config_ptr] {
                            auto sealed = crypto::SealForRecipients(
                                {*config_ptr}, crypto::HpkeAead::kAes128Gcm,
                                crypto::kInferenceLabels, inputs.request);
                            if (!sealed.ok()) return false;
                            g_sink = g_sink + sealed->sealed.size();
                            return true;
                          }});
  measurements.push_back({"envelope_open_4k", [&inputs, config_ptr, client] {
                            auto result = crypto::OpenAsRecipient(*config_ptr, inputs.recipient,
                                                                  crypto::kInferenceLabels,
                                                                  client->sealed);
                            if (!result.ok()) return false;
                            g_sink = g_sink + result->payload.size();
                            return true;
                          }});

  // One sealed stream, kept for the opening measurement.
  Bytes chunk(kChunkBytes, 0x41);
  auto stream = std::make_shared<std::vector<Bytes>>();
  {
    auto sealer = crypto::StartMultiRecipientResponse(*server, crypto::kInferenceLabels);
    if (!sealer.ok()) return sealer.status();
    for (int i = 0; i < kChunks; ++i) {
      auto sealed = sealer->Seal(chunk, i == kChunks - 1);
      if (!sealed.ok()) return sealed.status();
      stream->push_back(std::move(*sealed));
    }
  }
  measurements.push_back({"stream_seal_100_chunks", [server, chunk] {
                            auto sealer =
                                crypto::StartMultiRecipientResponse(*server, crypto::kInferenceLabels);
                            if (!sealer.ok()) return false;
                            for (int i = 0; i < kChunks; ++i) {
                              auto sealed = sealer->Seal(chunk, i == kChunks - 1);
                              if (!sealed.ok()) return false;
                              g_sink = g_sink + sealed->size();
                            }
                            return true;
                          }});
  measurements.push_back({"stream_open_100_chunks", [client, stream] {
                            auto secrets =
                                crypto::ExportResponseSecrets(*client, crypto::kInferenceLabels);
                            if (!secrets.ok()) return false;
                            crypto::ChunkedResponseOpener opener =
                                crypto::OpenMultiRecipientResponse(std::move(*secrets));
                            std::vector<Bytes> out;
                            out.reserve(kChunks);
                            for (const Bytes& sealed : *stream) {
                              if (!opener.Feed(sealed, &out).ok()) return false;
                            }
                            if (!opener.Finish(&out).ok() || out.size() != kChunks) return false;
                            g_sink = g_sink + out.size();
                            return true;
                          }});

  // The anchor: kChunks raw AES-128-GCM seals, and opens, of the same chunk.
  EVP_CIPHER* aes = EVP_CIPHER_fetch(nullptr, "AES-128-GCM", nullptr);
  auto key = std::make_shared<Bytes>(16, 0x11);
  auto nonce = std::make_shared<Bytes>(12, 0x22);
  auto raw_chunk = std::make_shared<Bytes>(kChunkBytes + 16);
  if (aes == nullptr || !RawAead(aes, true, *key, *nonce, {}, chunk, raw_chunk->data())) {
    return base::Internal("raw AES-128-GCM chunk seal failed");
  }
  measurements.push_back({"raw_seal_100_chunks", [aes, key, nonce, chunk] {
                            Bytes out(kChunkBytes + 16);
                            for (int i = 0; i < kChunks; ++i) {
                              if (!RawAead(aes, true, *key, *nonce, {}, chunk, out.data())) {
                                return false;
                              }
                              g_sink = g_sink + out[0];
                            }
                            return true;
                          }});
  measurements.push_back({"raw_open_100_chunks", [aes, key, nonce, raw_chunk] {
                            Bytes out(kChunkBytes);
                            for (int i = 0; i < kChunks; ++i) {
                              if (!RawAead(aes, false, *key, *nonce, {}, *raw_chunk, out.data())) {
                                return false;
                              }
                              g_sink = g_sink + out[0];
                            }
                            return true;
                          }});
  return base::Status::Ok();
}

base::Status RunRounds(const Settings& settings, std::vector<Measurement>& measurements) {
  // Warm-up: caches, the ciphers' one-time fetches, CPU frequency.
  for (Measurement& m : measurements) {
    for (int i = 0; i < 50; ++i) {
      if (!m.op()) return base::Internal(m.name + " failed during warm-up");
    }
  }
  auto slice = std::chrono::duration<double>(settings.duration_s /
                                             static_cast<double>(settings.rounds));
  for (int64_t round = 0; round < settings.rounds; ++round) {
    for (Measurement& m : measurements) {
      int64_t ops = 0;
      Clock::time_point start = Clock::now();
      Clock::time_point now = start;
      // Ops run in batches of 8 between clock reads, so reading the clock costs little.
      while (now - start < slice) {
        for (int i = 0; i < 8; ++i) {
          if (!m.op()) return base::Internal(m.name + " failed");
        }
        ops += 8;
        now = Clock::now();
      }
      double us = std::chrono::duration<double, std::micro>(now - start).count();
      m.round_us.push_back(us / static_cast<double>(ops));
      m.total_ops += ops;
    }
  }
  return base::Status::Ok();
}

const Measurement& Find(const std::vector<Measurement>& measurements, const std::string& name) {
  for (const Measurement& m : measurements) {
    if (m.name == name) return m;
  }
  std::cerr << "crypto_bench: no measurement " << name << "\n";
  std::abort();
}

base::Status Report(const Settings& settings, const std::vector<SuiteBench>& suites,
                    const std::vector<Measurement>& measurements) {
  nlohmann::json document;
  document["benchmark"] = "crypto";
  document["machine"] = settings.machine;
  document["openssl"] = OpenSSL_version(OPENSSL_VERSION);
  document["setup"] = {{"request_bytes", kRequestBytes},
                       {"duration_seconds_per_measurement", settings.duration_s},
                       {"rounds", settings.rounds},
                       {"threads", 1}};
  for (const Measurement& m : measurements) {
    document["measurements"][m.name] = {{"median_us_per_op", m.MedianUs()},
                                        {"round_us_per_op", m.round_us},
                                        {"ops", m.total_ops}};
  }

  double keygen = Find(measurements, "raw_x25519_keygen").MedianUs();
  double derive = Find(measurements, "raw_x25519_derive").MedianUs();
  std::printf("\nHPKE single-shot (RFC 9180, base mode, X25519 + HKDF-SHA256) vs raw OpenSSL EVP\n");
  if (!settings.machine.empty()) std::printf("machine:  %s\n", settings.machine.c_str());
  std::printf("openssl:  %s\n", OpenSSL_version(OPENSSL_VERSION));
  std::printf("setup:    %zu-byte request, 1 thread, %.2f s per measurement in %lld interleaved "
              "rounds; median round\n\n",
              kRequestBytes, settings.duration_s, static_cast<long long>(settings.rounds));
  std::printf("| AEAD | operation | HPKE µs/op | raw parts µs/op | ratio | raw parts |\n");
  std::printf("|---|---|---|---|---|---|\n");
  for (const SuiteBench& suite : suites) {
    double hpke_seal = Find(measurements, "hpke_seal_" + suite.label).MedianUs();
    double hpke_open = Find(measurements, "hpke_open_" + suite.label).MedianUs();
    double raw_seal = Find(measurements, "raw_seal_" + suite.label).MedianUs();
    double raw_open = Find(measurements, "raw_open_" + suite.label).MedianUs();
    double seal_parts = keygen + derive + raw_seal;
    double open_parts = derive + raw_open;
    struct Row {
      const char* operation;
      double hpke;
      double parts;
      const char* description;
    };
    Row rows[] = {
        {"seal", hpke_seal, seal_parts, "keygen + derive + AEAD seal"},
        {"open", hpke_open, open_parts, "derive + AEAD open"},
        {"seal + open", hpke_seal + hpke_open, seal_parts + open_parts,
         "keygen + 2 derive + AEAD seal + open"},
    };
    for (const Row& row : rows) {
      std::printf("| %s | %s | %.1f | %.1f | %.2f | %s |\n", suite.label.c_str(), row.operation,
                  row.hpke, row.parts, row.hpke / row.parts, row.description);
      document["ratios"][suite.label][row.operation] = {
          {"hpke_us", row.hpke}, {"raw_parts_us", row.parts}, {"ratio", row.hpke / row.parts}};
    }
  }
  std::printf("\nraw parts (OpenSSL EVP directly), µs/op:\n");
  std::printf("  X25519 keygen %.1f, X25519 derive %.1f", keygen, derive);
  for (const SuiteBench& suite : suites) {
    std::printf(", %s seal %.2f / open %.2f", suite.label.c_str(),
                Find(measurements, "raw_seal_" + suite.label).MedianUs(),
                Find(measurements, "raw_open_" + suite.label).MedianUs());
  }
  std::printf(" (4 KiB)\n");
  std::printf("ratio = HPKE / raw parts; the rest is HPKE's key schedule (HKDF), key parsing and "
              "allocation.\n");

  // Supercluster's own formats over AES-128-GCM.
  double aes_seal = Find(measurements, "raw_seal_AES-128-GCM").MedianUs();
  double aes_open = Find(measurements, "raw_open_AES-128-GCM").MedianUs();
  struct FormatRow {
    const char* operation;
    const char* name;
    double parts;
    const char* description;
  };
  FormatRow format_rows[] = {
      {"seal a 4 KiB request (1-recipient envelope)", "envelope_seal_4k",
       keygen + derive + 2 * aes_seal, "keygen + derive + 2 AEAD seals (key wrap, body)"},
      {"open a 4 KiB request (1-recipient envelope)", "envelope_open_4k",
       derive + 2 * aes_open, "derive + 2 AEAD opens"},
      {"seal a 100-chunk streamed answer", "stream_seal_100_chunks",
       Find(measurements, "raw_seal_100_chunks").MedianUs(), "100 AEAD seals of 32 bytes"},
      {"open a 100-chunk streamed answer", "stream_open_100_chunks",
       Find(measurements, "raw_open_100_chunks").MedianUs(), "100 AEAD opens of 32 bytes"},
  };
  std::printf("\nSupercluster's sealed formats (AES-128-GCM) vs the raw work underneath\n\n");
  std::printf("| operation | µs/op | raw parts µs/op | ratio | raw parts |\n");
  std::printf("|---|---|---|---|---|\n");
  for (const FormatRow& row : format_rows) {
    double measured = Find(measurements, row.name).MedianUs();
    std::printf("| %s | %.1f | %.1f | %.2f | %s |\n", row.operation, measured, row.parts,
                measured / row.parts, row.description);
    document["ratios"]["formats"][row.name] = {
        {"us", measured}, {"raw_parts_us", row.parts}, {"ratio", measured / row.parts}};
  }

  if (!settings.json_path.empty()) {
    std::ofstream file(settings.json_path);
    file << document.dump(2) << "\n";
    if (!file) return base::Unavailable("cannot write " + settings.json_path);
  }
  return base::Status::Ok();
}

base::Status Run(const Settings& settings) {
  auto recipient = crypto::HpkeKeyPair::Generate(crypto::HpkeKem::kX25519Sha256);
  if (!recipient.ok()) return recipient.status();
  Inputs inputs{std::move(recipient).value()};

  // Fetched once, as src/crypto/aead.cc does.
  static EVP_CIPHER* const aes = EVP_CIPHER_fetch(nullptr, "AES-128-GCM", nullptr);
  static EVP_CIPHER* const chacha = EVP_CIPHER_fetch(nullptr, "ChaCha20-Poly1305", nullptr);
  std::vector<SuiteBench> suites;
  crypto::HpkeSuite aes_suite;
  aes_suite.aead = crypto::HpkeAead::kAes128Gcm;
  crypto::HpkeSuite chacha_suite;
  chacha_suite.aead = crypto::HpkeAead::kChaCha20Poly1305;
  suites.push_back({"AES-128-GCM", aes_suite, aes, 16});
  suites.push_back({"ChaCha20-Poly1305", chacha_suite, chacha, 32});

  std::vector<Measurement> measurements;
  SC_RETURN_IF_ERROR(AddX25519(measurements));
  for (const SuiteBench& suite : suites) SC_RETURN_IF_ERROR(AddSuite(suite, inputs, measurements));
  SC_RETURN_IF_ERROR(AddStreamedResponseMeasurements(inputs, measurements));
  SC_RETURN_IF_ERROR(RunRounds(settings, measurements));
  return Report(settings, suites, measurements);
}

}  // namespace
}  // namespace supercluster::bench

int main(int argc, char** argv) {
  supercluster::bench::Settings settings;
  supercluster::base::FlagSet flags("crypto_bench [flags]");
  flags.AddDouble("duration", &settings.duration_s,
                  "seconds per measurement, split over the rounds");
  flags.AddInt("rounds", &settings.rounds, "interleaved slices per measurement");
  flags.AddString("json", &settings.json_path, "also write the results as JSON to this file");
  flags.AddString("machine", &settings.machine, "the machine description to print and record");
  std::vector<std::string> args(argv + 1, argv + argc);
  supercluster::base::Status parsed = flags.Parse(args);
  if (flags.help_requested()) {
    std::cout << flags.Help();
    return 0;
  }
  if (parsed.ok() && (settings.duration_s <= 0 || settings.rounds < 1)) {
    parsed = supercluster::base::InvalidArgument("--duration and --rounds must be positive");
  }
  if (!parsed.ok()) {
    std::cerr << "crypto_bench: " << parsed.message() << "\n" << flags.Help();
    return 2;
  }
  supercluster::base::Status status = supercluster::bench::Run(settings);
  if (!status.ok()) {
    std::cerr << "crypto_bench: FAIL: " << status.ToString() << "\n";
    return 1;
  }
  return 0;
}
