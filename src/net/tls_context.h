// Internal to net: builds OpenSSL contexts (via asio::ssl) from TlsServerOptions and
// TlsClientOptions. TLS 1.2 is the minimum; errors name the file that failed to load.
#pragma once

#include <boost/asio/ssl/context.hpp>

#include <memory>

#include "base/status.h"
#include "net/tls.h"

namespace supercluster::net::internal {

base::Result<std::shared_ptr<boost::asio::ssl::context>> MakeServerTlsContext(
    const TlsServerOptions& options);

base::Result<std::shared_ptr<boost::asio::ssl::context>> MakeClientTlsContext(
    const TlsClientOptions& options);

}  // namespace supercluster::net::internal
