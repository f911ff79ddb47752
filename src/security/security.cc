// SPDX-License-Identifier: Apache-2.0
// CURVE key pairs, key files and authorized_keys parsing (include/zrpc/security.h).
#include "zrpc/security.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#include <algorithm>
#include <cstdint>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "base/escape.h"
#include "base/keys.h"
#include "base/secure_fs.h"
#include "security/limits.h"
#include "zrpc/matchmaker.h"

namespace zrpc {
namespace {

using internal::EscapeForTerminal;

constexpr size_t kZ85KeyLength = 40;
constexpr size_t kBinaryKeyLength = 32;

// Decodes a Z85 key into 32 bytes; false when it is not one.
bool DecodeKey(std::string_view z85, uint8_t out[kBinaryKeyLength]) {
  if (z85.size() != kZ85KeyLength) return false;
  const std::string terminated(z85);  // zmq_z85_decode reads a C string
  return zmq_z85_decode(out, terminated.c_str()) != nullptr;
}

// A value from a file, quoted and made printable for an error message.
std::string Shown(std::string_view value) {
  constexpr size_t kMaxShown = 60;
  std::string_view cut = value.substr(0, kMaxShown);
  return absl::StrCat("\"", EscapeForTerminal(cut), value.size() > kMaxShown ? "...\"" : "\"");
}

// absl::StrCat takes absl::string_view, which is not std::string_view in this Abseil.
absl::string_view A(std::string_view s) { return absl::string_view(s.data(), s.size()); }

std::string ErrnoText() { return strerror(errno); }

// Splits at runs of spaces and tabs.
std::vector<std::string_view> Fields(std::string_view line) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
    const size_t start = i;
    while (i < line.size() && line[i] != ' ' && line[i] != '\t') ++i;
    if (i > start) out.push_back(line.substr(start, i - start));
  }
  return out;
}

// The lines of `text` without their '\n' (and a trailing '\r').
std::vector<std::string_view> Lines(std::string_view text) {
  std::vector<std::string_view> lines;
  while (!text.empty()) {
    const size_t end = std::min(text.find('\n'), text.size());
    std::string_view line = text.substr(0, end);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    lines.push_back(line);
    text.remove_prefix(std::min(end + 1, text.size()));
  }
  return lines;
}

// Refuses a name that would not make a file name of its own.
absl::Status ValidateKeyName(std::string_view name) {
  if (absl::Status s = ValidateName("key name", name); !s.ok()) return s;
  if (name == "." || name == "..") {
    return absl::InvalidArgumentError(absl::StrCat(
        "key name ", Shown(name), " is not a file name; choose a name such as the service's"));
  }
  return absl::OkStatus();
}

absl::Status KeyExists(const std::string& path) {
  return absl::AlreadyExistsError(absl::StrCat(
      path, " already exists; zrpc does not replace keys: remove it first or choose another name"));
}

// Writes `dir`/`name` with `bytes` and `mode`, never replacing an existing file: written to a
// private temporary name first, then hard-linked to `name` (link() fails with EEXIST instead of
// replacing, which a rename would do), then the temporary name is removed.
absl::StatusOr<internal::FileId> WriteNewFile(const std::string& dir, const std::string& name,
                                              std::string_view bytes, mode_t mode) {
  const std::string tmp_name = absl::StrCat(".", name, ".", getpid(), ".new");
  absl::StatusOr<internal::FileId> id =
      internal::WriteFileAtomically(dir, tmp_name, bytes, {.mode = mode, .fsync = true});
  if (!id.ok()) return id.status();
  const std::string tmp_path = absl::StrCat(dir, "/", tmp_name);
  const std::string path = absl::StrCat(dir, "/", name);
  const int rc = link(tmp_path.c_str(), path.c_str());
  const int link_errno = errno;
  unlink(tmp_path.c_str());
  if (rc != 0) {
    if (link_errno == EEXIST) {
      return KeyExists(path);
    }
    errno = link_errno;
    return absl::UnavailableError(absl::StrCat("cannot create ", path, ": ", ErrnoText()));
  }
  return id;
}

}  // namespace

absl::StatusOr<CurveKeyPair> GenerateCurveKeyPair() {
  if (!zmq_has("curve")) {
    return absl::UnimplementedError(
        "this libzmq was built without CURVE; install a libzmq with libsodium (Debian's libzmq5 "
        "has it)");
  }
  char public_key[kZ85KeyLength + 1];
  char secret_key[kZ85KeyLength + 1];
  if (zmq_curve_keypair(public_key, secret_key) != 0) {
    return absl::InternalError(
        absl::StrCat("zmq_curve_keypair failed: ", zmq_strerror(zmq_errno())));
  }
  CurveKeyPair keys{public_key, secret_key};
  memset(secret_key, 0, sizeof(secret_key));
  return keys;
}

bool IsCurveKey(std::string_view z85) {
  uint8_t bytes[kBinaryKeyLength];
  return DecodeKey(z85, bytes);
}

std::string KeyFingerprint(std::string_view z85) {
  // The key's first characters: short enough for a log line, unique enough in practice (12 Z85
  // characters are 76 bits, and a grinder needs a key pair per try), and found with grep in
  // NAME.pub and authorized_keys files.
  constexpr size_t kFingerprintLength = 12;
  if (!IsCurveKey(z85)) return "(not a CURVE key)";
  return std::string(z85.substr(0, kFingerprintLength));
}

absl::Status WriteCurveKeyPair(const std::string& dir, std::string_view name,
                               const CurveKeyPair& keys) {
  if (absl::Status s = ValidateKeyName(name); !s.ok()) return s;
  if (!IsCurveKey(keys.public_key) || !IsCurveKey(keys.secret_key)) {
    return absl::InvalidArgumentError("the key pair is not two 40-character Z85 CURVE keys");
  }
  const std::string d = dir.empty() ? "." : dir;
  struct stat st;
  if (stat(d.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return absl::FailedPreconditionError(
        absl::StrCat(d, " is not a directory; create it first (mkdir -m 700 ", d, ")"));
  }
  const std::string key_name = absl::StrCat(A(name), ".key");
  const std::string pub_name = absl::StrCat(A(name), ".pub");
  for (const std::string& n : {key_name, pub_name}) {
    const std::string path = absl::StrCat(d, "/", n);
    if (lstat(path.c_str(), &st) == 0) return KeyExists(path);
    if (errno != ENOENT) {
      return absl::UnavailableError(absl::StrCat("cannot check ", path, ": ", ErrnoText()));
    }
  }
  absl::StatusOr<internal::FileId> key_id = WriteNewFile(
      d, key_name,
      absl::StrCat("public-key ", keys.public_key, "\nsecret-key ", keys.secret_key, "\n"), 0600);
  if (!key_id.ok()) return key_id.status();
  absl::StatusOr<internal::FileId> pub_id =
      WriteNewFile(d, pub_name, absl::StrCat(A(name), " ", keys.public_key, "\n"), 0644);
  if (!pub_id.ok()) {
    // Leave no half pair behind (but only remove the file this call wrote).
    const std::string key_path = absl::StrCat(d, "/", key_name);
    if (internal::SameFile(key_path, *key_id)) unlink(key_path.c_str());
    return pub_id.status();
  }
  return absl::OkStatus();
}

absl::StatusOr<CurveKeyPair> ReadCurveKeyFile(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) {
      return absl::NotFoundError(absl::StrCat(
          "key file ", path,
          " does not exist; make one with `zrpc keygen NAME` and point key_file at NAME.key"));
    }
    return absl::UnavailableError(absl::StrCat("cannot check key file ", path, ": ", ErrnoText()));
  }
  if (S_ISREG(st.st_mode) && (st.st_mode & 077) != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("key file ", path, " may be read by others (mode ",
                     absl::StrFormat("%04o", st.st_mode & 07777),
                     "); it holds a secret key: run chmod 600 ", path));
  }
  absl::StatusOr<std::string> text = internal::ReadUntrustedFile(
      path, internal::kMaxKeyFileBytes, {.uids = {geteuid()}}, internal::FinalLink::kFollow);
  if (!text.ok()) {
    return absl::Status(text.status().code(), absl::StrCat("key file: ", text.status().message()));
  }
  CurveKeyPair keys;
  int line_number = 0;
  for (std::string_view line : Lines(*text)) {
    ++line_number;
    std::vector<std::string_view> f = Fields(line);
    if (f.empty() || f[0][0] == '#') continue;
    std::string* slot = f[0] == "public-key"   ? &keys.public_key
                        : f[0] == "secret-key" ? &keys.secret_key
                                               : nullptr;
    const std::string where = absl::StrCat(path, ":", line_number, ": ");
    if (slot == nullptr || f.size() != 2) {
      return absl::InvalidArgumentError(
          absl::StrCat(where,
                       "expected \"public-key KEY\" or \"secret-key KEY\"; a key file is written "
                       "by `zrpc keygen NAME`"));
    }
    if (!slot->empty()) {
      return absl::InvalidArgumentError(absl::StrCat(where, A(f[0]), " is given twice; keep one"));
    }
    if (!IsCurveKey(f[1])) {
      return absl::InvalidArgumentError(absl::StrCat(
          where, "the ", A(f[0]),
          " is not 40 characters of Z85 (a CURVE key); make a new pair with `zrpc keygen NAME`"));
    }
    *slot = std::string(f[1]);
  }
  if (keys.public_key.empty() || keys.secret_key.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "key file ", path, " lacks its ", keys.public_key.empty() ? "public-key" : "secret-key",
        " line; a key file is written by `zrpc keygen NAME`"));
  }
  char derived[kZ85KeyLength + 1];
  if (zmq_curve_public(derived, keys.secret_key.c_str()) != 0 || keys.public_key != derived) {
    return absl::InvalidArgumentError(
        absl::StrCat("key file ", path,
                     ": its public-key is not the one of its secret-key; make a new pair with "
                     "`zrpc keygen NAME`"));
  }
  return keys;
}

namespace {

std::vector<std::string>* RoleList(KeyRoles& roles, std::string_view name) {
  if (name == "serve") return &roles.serve;
  if (name == "publish") return &roles.publish;
  if (name == "listen") return &roles.listen;
  return nullptr;
}

// Checks one role pattern: a name or a prefix ending in '*' (or "*" alone), where "%i" may stand
// for the identity.
absl::Status ValidatePattern(std::string_view pattern) {
  std::string_view body = pattern;
  if (body.ends_with('*')) body.remove_suffix(1);
  if (body.empty()) {
    if (pattern == "*") return absl::OkStatus();
    return absl::InvalidArgumentError("an empty pattern");
  }
  std::string name(body);
  for (size_t at = name.find("%i"); at != std::string::npos; at = name.find("%i", at)) {
    name.replace(at, 2, "i");
  }
  if (name.find('*') != std::string::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("pattern ", Shown(pattern), " has '*' before its end (only a trailing '*' is a "
                     "wildcard)"));
  }
  return ValidateName(absl::StrCat("pattern ", Shown(pattern)), name);
}

// Parses `role=P1,P2` into `roles`.
absl::Status ParseRole(std::string_view field, KeyRoles& roles) {
  const size_t eq = field.find('=');
  const std::string_view name = field.substr(0, eq);
  std::vector<std::string>* list = RoleList(roles, name);
  if (list == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(
        "unknown role ", Shown(name), " in ", Shown(field),
        "; the roles are serve=, publish= and listen= (each a comma-separated list of topics)"));
  }
  const std::string_view value = field.substr(eq + 1);
  if (value.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "role ", Shown(field), " lists no topic; give at least one (\"", A(name),
        "=TOPIC[,TOPIC...]\") or leave the role out"));
  }
  for (absl::string_view pattern : absl::StrSplit(A(value), ',')) {
    const std::string_view p(pattern.data(), pattern.size());
    if (absl::Status s = ValidatePattern(p); !s.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("role ", A(name), ": ", s.message()));
    }
    list->emplace_back(p);
  }
  return absl::OkStatus();
}

void Append(KeyRoles& to, const KeyRoles& from) {
  to.serve.insert(to.serve.end(), from.serve.begin(), from.serve.end());
  to.publish.insert(to.publish.end(), from.publish.begin(), from.publish.end());
  to.listen.insert(to.listen.end(), from.listen.begin(), from.listen.end());
}

// The fields of a line, without a trailing comment: after the fields that cannot start one (the
// key may hold '#'), a field starting with '#' starts a comment. Also says where it started.
std::vector<std::string_view> FieldsOf(std::string_view line, size_t* comment_at = nullptr) {
  std::vector<std::string_view> f = Fields(line);
  const size_t first = (!f.empty() && f[0][0] == '@') ? 1 : 2;
  if (comment_at != nullptr) *comment_at = line.size();
  for (size_t i = first; i < f.size(); ++i) {
    if (f[i][0] == '#') {
      if (comment_at != nullptr) *comment_at = static_cast<size_t>(f[i].data() - line.data());
      f.resize(i);
      break;
    }
  }
  return f;
}

// Whether role `pattern` admits `name`. `children`: a plain name also admits "NAME.anything".
bool Admits(std::string_view pattern, std::string_view identity, std::string_view name,
            bool children) {
  std::string expanded;
  if (pattern.find("%i") != std::string_view::npos) {
    expanded = std::string(pattern);
    for (size_t at = expanded.find("%i"); at != std::string::npos;
         at = expanded.find("%i", at + identity.size())) {
      expanded.replace(at, 2, identity.data(), identity.size());
    }
    pattern = expanded;
  }
  if (pattern.ends_with('*')) return name.starts_with(pattern.substr(0, pattern.size() - 1));
  if (name == pattern) return true;
  return children && name.size() > pattern.size() && name.starts_with(pattern) &&
         name[pattern.size()] == '.';
}

bool AnyAdmits(const std::vector<std::string>& patterns, const AuthorizedKey& key,
               std::string_view name, bool children) {
  return std::any_of(patterns.begin(), patterns.end(), [&](const std::string& p) {
    return Admits(p, key.identity, name, children);
  });
}

}  // namespace

absl::StatusOr<std::vector<AuthorizedKey>> ParseAuthorizedKeys(std::string_view text,
                                                               std::string_view source) {
  if (text.size() > internal::kMaxAuthorizedKeysBytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        A(source), " is ", text.size(), " bytes long; at most ", internal::kMaxAuthorizedKeysBytes,
        " are accepted: split the fleet's keys by group or service"));
  }
  const std::vector<std::string_view> lines = Lines(text);
  if (lines.size() > internal::kMaxAuthorizedKeysLines) {
    return absl::InvalidArgumentError(absl::StrCat(
        A(source), " has ", lines.size(), " lines; at most ", internal::kMaxAuthorizedKeysLines,
        " are accepted: split the fleet's keys by group or service"));
  }
  std::vector<AuthorizedKey> out;
  absl::flat_hash_map<std::string, int> line_of_key;
  absl::flat_hash_map<std::string, int> line_of_identity;
  absl::flat_hash_map<std::string, int> line_of_group;  // where a group is first named
  absl::flat_hash_map<std::string, std::pair<int, KeyRoles>> group_roles;  // @GROUP lines
  int line_number = 0;
  for (std::string_view line : lines) {
    ++line_number;
    const std::string where = absl::StrCat(A(source), ":", line_number, ": ");
    auto bad = [&](const absl::Status& s) {
      return absl::InvalidArgumentError(absl::StrCat(where, s.message()));
    };
    const std::vector<std::string_view> f = FieldsOf(line);
    if (f.empty() || f[0][0] == '#') continue;
    if (f[0][0] == '@') {
      const std::string_view group = f[0].substr(1);
      if (absl::Status s = ValidateName("group", group); !s.ok()) return bad(s);
      if (f.size() < 2) {
        return bad(absl::InvalidArgumentError(
            absl::StrCat("expected \"@GROUP ROLE=TOPIC[,TOPIC...] ...\" (the roles of group ",
                         Shown(group), "), found no role")));
      }
      auto [it, inserted] = group_roles.try_emplace(std::string(group), line_number, KeyRoles{});
      if (!inserted) {
        return bad(absl::InvalidArgumentError(
            absl::StrCat("the roles of group ", Shown(group), " are already given on line ",
                         it->second.first, "; give each group's roles on one line")));
      }
      line_of_group.try_emplace(std::string(group), line_number);
      for (size_t i = 1; i < f.size(); ++i) {
        if (absl::Status s = ParseRole(f[i], it->second.second); !s.ok()) return bad(s);
      }
      continue;
    }
    if (f.size() < 2) {
      return bad(absl::InvalidArgumentError(absl::StrCat(
          "expected \"IDENTITY PUBLIC-KEY [GROUP,...] [ROLE=TOPIC,...]...\" (", f.size(),
          " field found); a NAME.pub file made by `zrpc keygen` has such a line")));
    }
    AuthorizedKey entry;
    if (absl::Status s = ValidateName("identity", f[0]); !s.ok()) return bad(s);
    entry.identity = std::string(f[0]);
    if (!IsCurveKey(f[1])) {
      return bad(absl::InvalidArgumentError(absl::StrCat(
          "the public key ", Shown(f[1]),
          " is not 40 characters of Z85 (a CURVE key); copy the line from the peer's NAME.pub")));
    }
    entry.public_key = std::string(f[1]);
    size_t next = 2;
    if (f.size() > 2 && f[2].find('=') == std::string_view::npos) {
      for (absl::string_view group : absl::StrSplit(A(f[2]), ',')) {
        const std::string_view g(group.data(), group.size());
        if (absl::Status s = ValidateName("group", g); !s.ok()) {
          return bad(absl::InvalidArgumentError(absl::StrCat(
              s.message(), " (groups are names separated by commas, without spaces)")));
        }
        entry.groups.emplace_back(g);
        line_of_group.try_emplace(std::string(g), line_number);
      }
      next = 3;
    }
    for (size_t i = next; i < f.size(); ++i) {
      if (f[i].find('=') == std::string_view::npos) {
        return bad(absl::InvalidArgumentError(absl::StrCat(
            "expected ROLE=TOPIC[,TOPIC...] after the groups, found ", Shown(f[i]),
            " (groups are one field of names separated by commas, without spaces)")));
      }
      if (absl::Status s = ParseRole(f[i], entry.roles); !s.ok()) return bad(s);
    }
    if (auto [it, inserted] = line_of_identity.emplace(entry.identity, line_number); !inserted) {
      return bad(absl::InvalidArgumentError(
          absl::StrCat("identity ", Shown(entry.identity), " is already listed on line ",
                       it->second, "; each identity has one key: remove one of the lines")));
    }
    if (auto [it, inserted] = line_of_key.emplace(entry.public_key, line_number); !inserted) {
      return bad(absl::InvalidArgumentError(
          absl::StrCat("this public key is already listed on line ", it->second,
                       "; a key names one identity: remove one of the lines")));
    }
    out.push_back(std::move(entry));
  }
  // Identities and groups share one space of names, so an endpoint's `allowed` list (which names
  // both) can never admit an identity for a group's name or the reverse.
  for (const auto& [group, line] : line_of_group) {
    if (auto it = line_of_identity.find(group); it != line_of_identity.end()) {
      return absl::InvalidArgumentError(absl::StrCat(
          A(source), ":", line, ": ", Shown(group), " is a group here and an identity on line ",
          it->second, "; a name is one or the other (restrictions name both): rename one"));
    }
  }
  for (AuthorizedKey& key : out) {
    for (const std::string& g : key.groups) {
      if (auto it = group_roles.find(g); it != group_roles.end()) Append(key.roles, it->second.second);
    }
  }
  return out;
}

bool MayServe(const AuthorizedKey& key, std::string_view topic) {
  if (topic.starts_with(internal::kPublisherPrefix)) {
    return MayPublish(key, topic.substr(internal::kPublisherPrefix.size()));
  }
  if (topic.starts_with(internal::kNotifyPrefix)) {
    // notify~TOPIC~PRIORITY: a listener pool member gets TOPIC.PRIORITY's events.
    std::string subscription(topic.substr(internal::kNotifyPrefix.size()));
    const size_t tilde = subscription.rfind('~');
    if (tilde == std::string::npos) return false;
    subscription[tilde] = '.';
    return MayListen(key, subscription);
  }
  return AnyAdmits(key.roles.serve, key, topic, /*children=*/false);
}

bool MayPublish(const AuthorizedKey& key, std::string_view topic) {
  return AnyAdmits(key.roles.publish, key, topic, /*children=*/true);
}

bool MayListen(const AuthorizedKey& key, std::string_view subscription) {
  // "TOPIC." (every priority of TOPIC) is admitted as TOPIC.
  if (subscription.ends_with('.')) subscription.remove_suffix(1);
  if (subscription.empty()) {
    // Every notification of the publisher: only a key that may listen to everything.
    return std::find(key.roles.listen.begin(), key.roles.listen.end(), "*") !=
           key.roles.listen.end();
  }
  return AnyAdmits(key.roles.listen, key, subscription, /*children=*/true);
}

absl::StatusOr<std::string> MigrateAuthorizedKeys(std::string_view text, std::string_view source) {
  if (absl::StatusOr<std::vector<AuthorizedKey>> parsed = ParseAuthorizedKeys(text, source);
      !parsed.ok()) {
    return parsed.status();
  }
  // Every byte that is not a role added is kept as it was (line ends, a missing last newline,
  // carriage returns), so migrating a migrated file changes nothing.
  std::string out;
  out.reserve(text.size() + 64);
  while (!text.empty()) {
    const size_t end = text.find('\n');
    std::string_view raw = text.substr(0, end);
    const bool newline = end != std::string_view::npos;
    text.remove_prefix(newline ? end + 1 : text.size());
    std::string_view line = raw;
    const bool cr = line.ends_with('\r');
    if (cr) line.remove_suffix(1);  // as Lines() reads it
    size_t comment_at = 0;
    const std::vector<std::string_view> f = FieldsOf(line, &comment_at);
    const bool key_line = f.size() >= 2 && f[0][0] != '#' && f[0][0] != '@';
    const bool has_role = std::any_of(f.begin() + std::min<size_t>(2, f.size()), f.end(),
                                      [](std::string_view x) { return x.find('=') != x.npos; });
    if (key_line && !has_role) {
      std::string_view head = line.substr(0, comment_at);
      while (!head.empty() && (head.back() == ' ' || head.back() == '\t')) head.remove_suffix(1);
      absl::StrAppend(&out, A(head), " serve=* publish=* listen=*",
                      comment_at < line.size() ? absl::StrCat(" ", A(line.substr(comment_at))) : "",
                      cr ? "\r" : "");
    } else {
      absl::StrAppend(&out, A(raw));
    }
    if (newline) out.push_back('\n');
  }
  return out;
}

}  // namespace zrpc
