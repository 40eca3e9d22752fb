#include "attest/certificate.h"

#include <openssl/pem.h>
#include <openssl/sha.h>

#include <string>
#include <string_view>

#include "attest/certificate_internal.h"
#include "attest/openssl_util.h"

namespace supercluster::attest {
namespace {

// The lower-case label of the first PEM block in `text` ("private key" for "-----BEGIN
// PRIVATE KEY-----"), or "" when there is none: a PEM file of another kind given for a
// certificate (root.key for root.pem) is then named as what it is, not as bad DER.
std::string PemLabel(std::string_view text) {
  constexpr std::string_view kBegin = "-----BEGIN ";
  size_t start = text.find(kBegin);
  if (start == std::string_view::npos) return "";
  start += kBegin.size();
  size_t end = text.find("-----", start);
  if (end == std::string_view::npos || end - start > 64) return "";
  std::string label(text.substr(start, end - start));
  for (char& c : label) {
    if ((c < 'A' || c > 'Z') && c != ' ' && (c < '0' || c > '9')) return "";
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return label;
}

}  // namespace

base::Result<openssl::X509Ptr> ParseCertificate(ByteView der) {
  const unsigned char* cursor = der.data();
  openssl::X509Ptr certificate(d2i_X509(nullptr, &cursor, static_cast<long>(der.size())));
  if (!certificate) {
    return base::InvalidArgument("not a DER X.509 certificate: " + openssl::LastError());
  }
  if (cursor != der.data() + der.size()) {
    return base::InvalidArgument("trailing bytes after the DER certificate");
  }
  return certificate;
}

base::Result<Bytes> CertificateDer(ByteView data) {
  std::string_view text(reinterpret_cast<const char*>(data.data()), data.size());
  if (text.find("-----BEGIN CERTIFICATE-----") == std::string_view::npos) {
    if (std::string label = PemLabel(text); !label.empty()) {
      return base::InvalidArgument("a PEM " + label + ", not a certificate");
    }
    SC_ASSIGN_OR_RETURN(openssl::X509Ptr parsed, ParseCertificate(data));
    return Bytes(data.begin(), data.end());
  }
  openssl::BioPtr bio(BIO_new_mem_buf(data.data(), static_cast<int>(data.size())));
  openssl::X509Ptr certificate(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  if (!certificate) return base::InvalidArgument("not a PEM certificate: " + openssl::LastError());
  unsigned char* der = nullptr;
  int length = i2d_X509(certificate.get(), &der);
  if (length <= 0) return base::Internal("encoding the certificate: " + openssl::LastError());
  Bytes bytes(der, der + length);
  OPENSSL_free(der);
  return bytes;
}

base::Result<std::string> CertificatePem(ByteView der) {
  SC_ASSIGN_OR_RETURN(openssl::X509Ptr certificate, ParseCertificate(der));
  openssl::BioPtr bio(BIO_new(BIO_s_mem()));
  if (PEM_write_bio_X509(bio.get(), certificate.get()) != 1) {
    return base::Internal("writing the certificate: " + openssl::LastError());
  }
  Bytes pem = openssl::BioContents(bio.get());
  return std::string(pem.begin(), pem.end());
}

std::string CertificateFingerprintSha256(ByteView der) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(der.data(), der.size(), digest);
  static constexpr char kDigits[] = "0123456789ABCDEF";
  std::string text;
  for (size_t k = 0; k < sizeof(digest); ++k) {
    if (k > 0) text.push_back(':');
    text.push_back(kDigits[digest[k] >> 4]);
    text.push_back(kDigits[digest[k] & 0xf]);
  }
  return text;
}

base::Result<std::string> CertificateSubject(ByteView der) {
  SC_ASSIGN_OR_RETURN(openssl::X509Ptr certificate, ParseCertificate(der));
  openssl::BioPtr bio(BIO_new(BIO_s_mem()));
  X509_NAME_print_ex(bio.get(), X509_get_subject_name(certificate.get()), 0,
                     XN_FLAG_ONELINE & ~ASN1_STRFLGS_ESC_MSB);
  Bytes text = openssl::BioContents(bio.get());
  return std::string(text.begin(), text.end());
}

base::Result<EcP384Key> CertificatePublicKey(ByteView der) {
  SC_ASSIGN_OR_RETURN(openssl::X509Ptr certificate, ParseCertificate(der));
  EVP_PKEY* key = X509_get_pubkey(certificate.get());  // a new reference
  if (key == nullptr) return base::InvalidArgument("the certificate's public key is unreadable");
  return EcP384Key::FromOpenSsl(key);
}

}  // namespace supercluster::attest
