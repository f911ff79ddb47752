// SPDX-License-Identifier: Apache-2.0
#include "matchmaker/watch.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>

#include "absl/strings/str_cat.h"
#include "src/base/thread.h"

namespace zrpc::internal {
namespace {

absl::Status Errno(const char* what, const std::string& path) {
  return absl::UnavailableError(absl::StrCat(what, " ", path, ": ", std::strerror(errno)));
}

class InotifyWatch : public WatchHandle {
 public:
  static absl::StatusOr<std::unique_ptr<WatchHandle>> Start(const std::string& dir,
                                                            std::function<void()> on_change) {
    int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (fd < 0) return Errno("inotify_init1 for", dir);
    if (inotify_add_watch(fd, dir.c_str(), IN_CREATE | IN_DELETE | IN_MOVED_TO | IN_CLOSE_WRITE) < 0) {
      close(fd);
      return Errno("inotify_add_watch", dir);
    }
    int stop = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (stop < 0) {
      close(fd);
      return Errno("eventfd for", dir);
    }
    return std::unique_ptr<WatchHandle>(new InotifyWatch(fd, stop, std::move(on_change)));
  }
  ~InotifyWatch() override {
    uint64_t one = 1;
    (void)!write(stop_, &one, sizeof(one));
    thread_.join();
    close(fd_);
    close(stop_);
  }

 private:
  InotifyWatch(int fd, int stop, std::function<void()> on_change)
      : fd_(fd), stop_(stop), on_change_(std::move(on_change)), thread_(StartThread([this] { Run(); })) {}

  void Run() {
    char buf[4096];
    while (true) {
      pollfd fds[2] = {{fd_, POLLIN, 0}, {stop_, POLLIN, 0}};
      if (poll(fds, 2, -1) < 0 && errno != EINTR) return;
      if (fds[1].revents) return;
      if (fds[0].revents) {
        while (read(fd_, buf, sizeof(buf)) > 0) {
        }
        on_change_();
      }
    }
  }

  int fd_;
  int stop_;
  std::function<void()> on_change_;
  std::thread thread_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<WatchHandle>> WatchDirectory(const std::string& dir,
                                                            std::function<void()> on_change) {
  return InotifyWatch::Start(dir, std::move(on_change));
}

}  // namespace zrpc::internal
