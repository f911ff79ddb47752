// SPDX-License-Identifier: Apache-2.0
// Numeric addresses and the one place zrpc resolves a host name.
//
// Registrations carry addresses, never names: libzmq resolves a tcp:// host name with a blocking
// getaddrinfo on the connecting process's one I/O thread, so one slowly resolving name in a
// registry would stall every connection of every client that tries it. Names are resolved only
// where they are the process's own configuration (a service's bind or advertise address, a ring
// file), once, with a bounded wait (ResolveHosts).
#ifndef ZRPC_SRC_BASE_ADDRESS_H_
#define ZRPC_SRC_BASE_ADDRESS_H_

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace zrpc::internal {

// Whether `host` is a numeric IPv4 address ("10.0.0.5", four decimal parts) or a bracketed
// numeric IPv6 address ("[::1]", no zone). Pure; never resolves anything.
bool IsNumericHost(std::string_view host);

// The host part of "tcp://HOST:PORT" ("" when `endpoint` is not of that form).
std::string_view TcpHostOf(std::string_view endpoint);

// Resolves each of `hosts` (names or numeric addresses, IPv6 without brackets) to one numeric
// address, IPv4 first: "127.0.0.1", or "[::1]" bracketed for an endpoint. The lookups run in
// parallel on threads of their own, and the whole call returns within `timeout`: a lookup not
// done by then is DEADLINE_EXCEEDED (its thread finishes on its own and is then discarded). A
// name that does not resolve is NOT_FOUND with the resolver's text. One result per host, in
// order. Blocks for at most `timeout`; thread-safe.
std::vector<absl::StatusOr<std::string>> ResolveHosts(const std::vector<std::string>& hosts,
                                                      absl::Duration timeout);

}  // namespace zrpc::internal

#endif  // ZRPC_SRC_BASE_ADDRESS_H_
