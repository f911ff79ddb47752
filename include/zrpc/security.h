// SPDX-License-Identifier: Apache-2.0
// zrpc/security.h — CurveZMQ keys and who may connect.
//
// With keys configured (TransportOptions::security), every zrpc socket runs CURVE: connections
// are encrypted, each side proves its key, and a process admits only the keys listed in its
// authorized_keys file. Keys are made with `zrpc keygen NAME` (or GenerateCurveKeyPair and
// WriteCurveKeyPair):
//
//   NAME.key   the key pair, mode 0600:   "public-key <z85>\nsecret-key <z85>\n"
//   NAME.pub   one authorized_keys line:  "NAME <z85 public key>\n"
//
// An authorized_keys file is lines of `IDENTITY PUBLIC-KEY [GROUP[,GROUP...]]` ('#' starts a
// comment), like ssh's: `cat *.pub > authorized_keys` makes one. IDENTITY follows the name rules
// (ValidateName); PUBLIC-KEY is 40 characters of Z85 (32 bytes); groups are names too. A service
// admits the keys listed; a client trusts the service keys listed (a registration whose key is
// not listed is skipped); handlers see the caller's IDENTITY (CallContext::peer_identity()) and
// endpoints may admit only some identities or groups (Endpoint::allowed).
#ifndef ZRPC_SECURITY_H_
#define ZRPC_SECURITY_H_

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace zrpc {

// What TransportOptions::security holds. Both files empty: no CURVE (plain ZeroMQ, no
// authentication; binding every interface then needs TransportOptions::insecure).
struct SecurityOptions {
  // This process's key pair (NAME.key written by `zrpc keygen`). Must be a regular file of yours
  // that nobody else may read (mode 0600 or stricter).
  std::string key_file;
  // The keys of the peers this process admits and of the services it trusts
  // (`IDENTITY PUBLIC-KEY [GROUPS]` lines). Re-read when it changes (checked at most once a second).
  std::string authorized_keys_file;

  bool enabled() const { return !key_file.empty(); }
};

// A CURVE key pair, each key 40 characters of Z85.
struct CurveKeyPair {
  std::string public_key;
  std::string secret_key;
};

// A new random key pair (libzmq's zmq_curve_keypair). UNIMPLEMENTED when libzmq lacks CURVE.
absl::StatusOr<CurveKeyPair> GenerateCurveKeyPair();

// Writes `dir`/NAME.key (mode 0600) and `dir`/NAME.pub (mode 0644) atomically, refusing to
// replace existing files (ALREADY_EXISTS). `name` follows the name rules.
absl::Status WriteCurveKeyPair(const std::string& dir, std::string_view name,
                               const CurveKeyPair& keys);

// Reads a NAME.key file: a regular file of the effective user, not readable by group or others
// (FAILED_PRECONDITION saying "chmod 600 PATH" otherwise), with both keys valid.
absl::StatusOr<CurveKeyPair> ReadCurveKeyFile(const std::string& path);

// True for 40 characters of Z85 that decode to 32 bytes.
bool IsCurveKey(std::string_view z85);

// A short fingerprint of a key for log lines: its first 12 Z85 characters (76 bits), so
// `grep FINGERPRINT *.pub authorized_keys` finds it. "(not a CURVE key)" for anything else.
std::string KeyFingerprint(std::string_view z85);

// One line of an authorized_keys file.
struct AuthorizedKey {
  std::string identity;
  std::string public_key;  // Z85
  std::vector<std::string> groups;
};

// Parses authorized_keys text. INVALID_ARGUMENT naming `source` and the line for a malformed
// line, a bad identity, key or group, or a key or identity listed twice.
absl::StatusOr<std::vector<AuthorizedKey>> ParseAuthorizedKeys(std::string_view text,
                                                               std::string_view source);

}  // namespace zrpc

#endif  // ZRPC_SECURITY_H_
