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
// An authorized_keys file is lines of `IDENTITY PUBLIC-KEY [GROUP[,GROUP...]] [ROLE=PATTERNS...]`
// ('#' starts a comment), like ssh's: `cat *.pub > authorized_keys` makes one. IDENTITY follows
// the name rules (ValidateName); PUBLIC-KEY is 40 characters of Z85 (32 bytes); groups are names
// too, and no name is both an identity and a group. A line `@GROUP ROLE=PATTERNS...` gives every
// member of GROUP those roles. Every listed key may connect and call (endpoints and methods may
// admit only some identities or groups: Endpoint::allowed); what else a key may do is granted by
// its roles, and nothing else:
//
//   serve=compute,compute.%i   serve these topics: register them (at the sidecar) and be used by
//                              clients for them; `compute.node1` is the direct topic of one host
//   publish=notifications      publish these notification topics (listeners trust it for them)
//   listen=notifications.error subscribe to these notification topics at publishers
//
// A pattern is a name, a prefix ending in '*' ("compute.*", "*"), and "%i" stands for the key's
// own identity. For serve a name matches that topic exactly; for publish and listen a name also
// covers its priorities ("notifications" covers "notifications.info"). Example:
//
//   node1  Fz..(40)..  compute-nodes
//   node2  Xk..(40)..  compute-nodes
//   alice  Ab..(40)..  operators
//   @compute-nodes  serve=compute,compute.%i  publish=compute
//   @operators      listen=compute
//
// A file written before roles existed gives no key any role: `zrpc keys migrate FILE` adds
// `serve=* publish=* listen=*` to each key line (what such a file meant), to narrow afterwards.
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

// What a key may do besides connecting and calling: patterns as described above.
struct KeyRoles {
  std::vector<std::string> serve;    // topics (and topic.host) it may serve
  std::vector<std::string> publish;  // notification topics it may publish
  std::vector<std::string> listen;   // notification topics it may subscribe to

  bool empty() const { return serve.empty() && publish.empty() && listen.empty(); }
};

// One key line of an authorized_keys file.
struct AuthorizedKey {
  std::string identity;
  std::string public_key;  // Z85
  std::vector<std::string> groups;
  // Its roles: those of its own line and of each of its groups' `@GROUP` lines.
  KeyRoles roles;
};

// Parses authorized_keys text. INVALID_ARGUMENT naming `source` and the line for a malformed
// line, a bad identity, key, group, role or pattern, a key or identity listed twice, a name that
// is both an identity and a group, or an `@GROUP` line for a group no key is in.
absl::StatusOr<std::vector<AuthorizedKey>> ParseAuthorizedKeys(std::string_view text,
                                                               std::string_view source);

// Whether `key` may serve `topic`: a consumer's topic ("compute", "compute.node1"), as a
// registration names it. Registrations of notifiers ("publisher~TOPIC") need the publish role and
// listener pools' ("notify~TOPIC~PRIORITY") the listen role.
bool MayServe(const AuthorizedKey& key, std::string_view topic);
// Whether `key` may publish notification topic `topic` ("notifications").
bool MayPublish(const AuthorizedKey& key, std::string_view topic);
// Whether `key` may subscribe to `subscription` ("notifications.info", or "notifications." for
// every priority of a topic).
bool MayListen(const AuthorizedKey& key, std::string_view subscription);

// An authorized_keys file written before roles, rewritten to mean what it meant: every key line
// without a role gets `serve=* publish=* listen=*`; other lines are kept as they are. The text
// must parse (the error says where it does not).
absl::StatusOr<std::string> MigrateAuthorizedKeys(std::string_view text, std::string_view source);

}  // namespace zrpc

#endif  // ZRPC_SECURITY_H_
