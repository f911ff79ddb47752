// SPDX-License-Identifier: Apache-2.0
// Running the zrpc-matchmaker sidecar as a system service: it tells systemd when it is ready and
// when it stops (sd_notify over $NOTIFY_SOCKET, a real unix datagram socket here), removes its
// socket files on SIGTERM, and says what is wrong with its directory or its socket's
// permissions, naming the path and the fix.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstddef>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "testing/child_process.h"
#include "testing/temp_dir.h"

namespace zrpc::testing {
namespace {

// The uid the unprivileged cases run as, through setpriv (util-linux).
constexpr char kSetpriv[] = "/usr/bin/setpriv";
constexpr char kNobody[] = "65534";

class SidecarOpsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(temp_.path().empty());
    dir_ = temp_.path();
    endpoint_ = "ipc://" + dir_ + "/mm.sock";
  }
  void TearDown() override {
    if (notify_fd_ >= 0) close(notify_fd_);
    unsetenv("NOTIFY_SOCKET");
    sidecar_.reset();
  }

  // Binds the datagram socket systemd would listen on: a path, or an abstract name ("@...").
  void ListenForNotifications(const std::string& name) {
    notify_fd_ = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    ASSERT_GE(notify_fd_, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    ASSERT_LT(name.size(), sizeof(addr.sun_path));
    std::memcpy(addr.sun_path, name.data(), name.size());
    socklen_t len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + name.size() + 1);
    if (name[0] == '@') {
      addr.sun_path[0] = '\0';
      len -= 1;  // an abstract name has no terminating NUL
    }
    ASSERT_EQ(bind(notify_fd_, reinterpret_cast<sockaddr*>(&addr), len), 0) << strerror(errno);
    ASSERT_EQ(setenv("NOTIFY_SOCKET", name.c_str(), 1), 0);
  }

  // The next datagram on the notification socket within `timeout_ms` ("" when none came).
  std::string NextNotification(int timeout_ms = 10000) {
    pollfd p{notify_fd_, POLLIN, 0};
    if (poll(&p, 1, timeout_ms) != 1) return "";
    char buf[512];
    const ssize_t n = recv(notify_fd_, buf, sizeof(buf), 0);
    return n > 0 ? std::string(buf, n) : "";
  }

  void StartSidecar() {
    sidecar_ = std::make_unique<ChildProcess>();
    ASSERT_FALSE(
        sidecar_->StartAndWaitForLine({ZRPC_MATCHMAKER_BINARY, "--endpoint", endpoint_}, "READY ",
                                      10000)
            .empty())
        << "the sidecar did not start";
  }

  // SIGTERM, then its exit status (as waitpid's; -1 when it did not exit within 10 s).
  int Terminate() {
    sidecar_->Signal(SIGTERM);
    return sidecar_->Reap(10000);
  }

  // `argv` run as the unprivileged user when this test runs as root; its output (stdout and
  // stderr) and exit status.
  struct Run {
    std::string output;
    int status;
  };
  Run RunUnprivileged(std::vector<std::string> argv) {
    if (geteuid() == 0) {
      argv.insert(argv.begin(), {kSetpriv, std::string("--reuid=") + kNobody,
                                 std::string("--regid=") + kNobody, "--clear-groups"});
    }
    ChildProcess p;
    EXPECT_TRUE(p.Start(argv, {.capture_stderr = true}));
    Run r{p.ReadAll(20000), p.Reap(20000)};
    return r;
  }
  static bool CanRunUnprivileged() { return geteuid() != 0 || access(kSetpriv, X_OK) == 0; }

  static bool IsSocket(const std::string& path) {
    struct stat st;
    return lstat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode);
  }

  TempDir temp_{"zrpc-ops"};  // removed when the test ends
  std::string dir_;
  std::string endpoint_;
  int notify_fd_ = -1;
  std::unique_ptr<ChildProcess> sidecar_;
};

TEST_F(SidecarOpsTest, TellsSystemdReadyOnceServingAndStoppingOnSigterm) {
  ListenForNotifications(dir_ + "/notify");
  StartSidecar();
  EXPECT_EQ(NextNotification(), "READY=1");
  EXPECT_EQ(Terminate(), 0);
  EXPECT_EQ(NextNotification(), "STOPPING=1");
}

TEST_F(SidecarOpsTest, TellsSystemdOnAnAbstractNotifySocket) {
  ListenForNotifications("@zrpc-ops-test-" + std::to_string(getpid()));
  StartSidecar();
  EXPECT_EQ(NextNotification(), "READY=1");
  EXPECT_EQ(Terminate(), 0);
  EXPECT_EQ(NextNotification(), "STOPPING=1");
}

TEST_F(SidecarOpsTest, RemovesItsSocketFilesOnSigterm) {
  StartSidecar();
  const std::string path = dir_ + "/mm.sock";
  ASSERT_TRUE(IsSocket(path));
  ASSERT_TRUE(IsSocket(path + ".pub"));
  EXPECT_EQ(Terminate(), 0);
  EXPECT_FALSE(IsSocket(path)) << path << " was left behind";
  EXPECT_FALSE(IsSocket(path + ".pub")) << path << ".pub was left behind";
}

TEST_F(SidecarOpsTest, NamesTheMissingDirectoryItMayNotCreateAndHowToMakeIt) {
  if (!CanRunUnprivileged()) GTEST_SKIP() << "needs " << kSetpriv << " to drop root";
  ASSERT_EQ(chmod(dir_.c_str(), 0755), 0);  // the unprivileged user may not create in it
  const std::string missing = dir_ + "/missing";
  const Run r =
      RunUnprivileged({ZRPC_MATCHMAKER_BINARY, "--endpoint", "ipc://" + missing + "/mm.sock"});
  EXPECT_TRUE(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 1) << r.output;
  EXPECT_NE(r.output.find("cannot bind ipc://" + missing + "/mm.sock: directory " + missing +
                          " does not exist"),
            std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("RuntimeDirectory=zrpc"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("--endpoint"), std::string::npos) << r.output;
}

TEST_F(SidecarOpsTest, AClientDeniedTheSocketIsToldThePathAndPermissionNotThatTheSidecarIsDown) {
  if (!CanRunUnprivileged()) GTEST_SKIP() << "needs " << kSetpriv << " to drop root";
  if (geteuid() != 0) GTEST_SKIP() << "needs a sidecar of another user (run as root)";
  // A root sidecar whose directory others may enter but whose socket only root may use (0600).
  ASSERT_EQ(chmod(dir_.c_str(), 0755), 0);
  StartSidecar();
  const Run r = RunUnprivileged({ZRPC_CLI_BINARY, "topics", "--matchmaker", endpoint_});
  // Exit 7 (not authorized), not 6 (any other error) nor 5 (lost contact).
  EXPECT_TRUE(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 7) << r.status << " " << r.output;
  EXPECT_NE(r.output.find("socket " + dir_ + "/mm.sock: permission denied"), std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("mode 0600"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("did not answer"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("not answering"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace zrpc::testing
