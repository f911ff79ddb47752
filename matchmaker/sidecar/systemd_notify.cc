// SPDX-License-Identifier: Apache-2.0
#include "matchmaker/sidecar/systemd_notify.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <string>

#include "absl/strings/str_cat.h"

namespace zrpc::internal::sidecar {

absl::Status NotifySystemd(std::string_view state) {
  const char* env = std::getenv("NOTIFY_SOCKET");
  if (env == nullptr || *env == '\0') return absl::OkStatus();
  const std::string name = env;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if ((name[0] != '/' && name[0] != '@') || name.size() >= sizeof(addr.sun_path)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "NOTIFY_SOCKET=\"", name,
        "\" is not a unix socket path or an @abstract name of at most ",
        sizeof(addr.sun_path) - 1, " bytes; not telling systemd"));
  }
  std::memcpy(addr.sun_path, name.data(), name.size());
  // An abstract socket's name starts with a NUL byte, and its length is exact (no trailing NUL).
  if (name[0] == '@') addr.sun_path[0] = '\0';
  const socklen_t len = static_cast<socklen_t>(
      offsetof(sockaddr_un, sun_path) + name.size() + (name[0] == '@' ? 0 : 1));
  const int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot tell systemd (", name, "): socket: ", std::strerror(errno)));
  }
  const ssize_t sent = sendto(fd, state.data(), state.size(), MSG_NOSIGNAL | MSG_DONTWAIT,
                              reinterpret_cast<const sockaddr*>(&addr), len);
  const int err = errno;
  close(fd);
  if (sent != static_cast<ssize_t>(state.size())) {
    return absl::UnavailableError(absl::StrCat("cannot tell systemd \"", std::string(state), "\" on ", name,
                                               ": ", sent < 0 ? std::strerror(err) : "short send"));
  }
  return absl::OkStatus();
}

}  // namespace zrpc::internal::sidecar
