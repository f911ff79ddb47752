// SPDX-License-Identifier: Apache-2.0
// Runtime directories and files that cannot be hijacked (src/base/secure_fs.h), and the local://
// registry built on them: real directories, links, FIFOs and devices.
#include "base/secure_fs.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "test_util.h"
#include "testing/log_capture.h"
#include "zrpc/log.h"
#include "zrpc/matchmaker.h"
#include "testing/temp_dir.h"

namespace zrpc::internal {
namespace {

using ::testing::HasSubstr;
using ::zrpc::testing::Msg;

// The uid and gid of "nobody"/"nogroup": someone else, for tests that run as root.
constexpr uid_t kOtherUid = 65534;
constexpr gid_t kOtherGid = 65534;

class SecureFsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(temp_.path().empty());
    root_ = temp_.path();
  }
  static std::string Read(const std::string& path) {
    std::ifstream in(path);
    std::stringstream buf;
    buf << in.rdbuf();
    return buf.str();
  }
  static void Write(const std::string& path, const std::string& text) {
    std::ofstream(path) << text;
  }
  static mode_t ModeOf(const std::string& path) {
    struct stat st;
    return lstat(path.c_str(), &st) == 0 ? (st.st_mode & 07777) : 0;
  }

  zrpc::testing::TempDir temp_{"zrpc-fs"};  // removed when the test ends
  std::string root_;
};

TEST_F(SecureFsTest, CreatesMissingDirectoriesPrivateAndAcceptsThem) {
  const std::string dir = root_ + "/a/b/zrpc";
  ZRPC_ASSERT_OK(EnsurePrivateDir(dir + "/", {.what = "test"}));
  EXPECT_EQ(ModeOf(root_ + "/a"), 0700u);
  EXPECT_EQ(ModeOf(dir), 0700u);
  ZRPC_EXPECT_OK(EnsurePrivateDir(dir, {.what = "test"}));  // again: already there
  ZRPC_EXPECT_ERROR(EnsurePrivateDir("relative/dir", {.what = "test"}),
                    absl::StatusCode::kInvalidArgument, "absolute path");
}

TEST_F(SecureFsTest, RefusesALinkAFileAndAWritableDirectoryAndSaysHowToFixIt) {
  const std::string real = root_ + "/real";
  ASSERT_EQ(mkdir(real.c_str(), 0700), 0);
  const std::string link = root_ + "/link";
  ASSERT_EQ(symlink(real.c_str(), link.c_str()), 0);
  ZRPC_EXPECT_ERROR(EnsurePrivateDir(link, {.what = "local matchmaker", .fix_hint = "or use X"}),
                    absl::StatusCode::kFailedPrecondition,
                    "local matchmaker: " + link + " is a symbolic link (to " + real);
  EXPECT_THAT(Msg(EnsurePrivateDir(link, {.what = "t", .fix_hint = "or use X"})),
              HasSubstr("remove it (rm " + link + "), or use X"));

  const std::string file = root_ + "/file";
  Write(file, "x");
  ZRPC_EXPECT_ERROR(EnsurePrivateDir(file, {.what = "t"}), absl::StatusCode::kFailedPrecondition,
                    "is a regular file, not a directory");

  ASSERT_EQ(chmod(real.c_str(), 0770), 0);
  ZRPC_EXPECT_ERROR(EnsurePrivateDir(real, {.what = "t"}), absl::StatusCode::kFailedPrecondition,
                    "can be written by its group (mode 0770), so others could register in your "
                    "place: chmod 700 " +
                        real);
  ASSERT_EQ(chmod(real.c_str(), 0703), 0);
  ZRPC_EXPECT_ERROR(EnsurePrivateDir(real, {.what = "t"}), absl::StatusCode::kFailedPrecondition,
                    "can be written by every user");
  ASSERT_EQ(chmod(real.c_str(), 0755), 0);  // readable by others is fine
  ZRPC_EXPECT_OK(EnsurePrivateDir(real, {.what = "t"}));
}

TEST_F(SecureFsTest, RefusesADirectoryUnderAParentOthersCanWriteWithoutTheStickyBit) {
  const std::string open = root_ + "/open";
  ASSERT_EQ(mkdir(open.c_str(), 0700), 0);
  ASSERT_EQ(chmod(open.c_str(), 0777), 0);
  ZRPC_EXPECT_ERROR(EnsurePrivateDir(open + "/zrpc", {.what = "t"}),
                    absl::StatusCode::kFailedPrecondition,
                    open + " (above " + open +
                        "/zrpc) can be written by every user (mode 0777) "
                        "without the sticky bit");
  ASSERT_EQ(chmod(open.c_str(), 01777), 0);  // as /tmp is
  ZRPC_EXPECT_OK(EnsurePrivateDir(open + "/zrpc", {.what = "t"}));
}

TEST_F(SecureFsTest, RefusesADirectoryAnotherUserOwns) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to give a directory to another user";
  const std::string theirs = root_ + "/theirs";
  ASSERT_EQ(mkdir(theirs.c_str(), 0700), 0);
  ASSERT_EQ(chown(theirs.c_str(), kOtherUid, kOtherGid), 0);
  ZRPC_EXPECT_ERROR(EnsurePrivateDir(theirs, {.what = "local matchmaker"}),
                    absl::StatusCode::kFailedPrecondition, theirs + " is owned by uid 65534");
  EXPECT_THAT(Msg(EnsurePrivateDir(theirs, {.what = "t"})),
              HasSubstr("not you (uid 0 (root)): another user may have created it; remove it"));
  // A parent owned by them is refused too: they could rename ours away.
  ZRPC_EXPECT_ERROR(EnsurePrivateDir(theirs + "/mine", {.what = "t"}),
                    absl::StatusCode::kFailedPrecondition, "is owned by uid 65534");
}

TEST_F(SecureFsTest, ASharedGroupDirectoryIsAcceptedOnlyWhenConfiguredAndRight) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to give a directory another group";
  const std::string shared = root_ + "/shared";
  DirPolicy policy{.what = "t", .shared_group = kOtherGid, .shared_group_name = "nogroup"};
  ZRPC_ASSERT_OK(EnsurePrivateDir(shared, policy));  // created: 02770, group nogroup
  struct stat st;
  ASSERT_EQ(lstat(shared.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 02770u);
  EXPECT_EQ(st.st_gid, kOtherGid);
  ZRPC_EXPECT_ERROR(EnsurePrivateDir(shared, {.what = "t"}), absl::StatusCode::kFailedPrecondition,
                    "can be written by its group");  // not configured: refused
  policy.shared_group = 0;
  policy.shared_group_name = "root";
  ZRPC_EXPECT_ERROR(EnsurePrivateDir(shared, policy), absl::StatusCode::kFailedPrecondition,
                    "belongs to gid 65534, not group root (gid 0); fix it with chgrp root");
  policy.shared_group = kOtherGid;
  ASSERT_EQ(chmod(shared.c_str(), 02777), 0);
  ZRPC_EXPECT_ERROR(EnsurePrivateDir(shared, policy), absl::StatusCode::kFailedPrecondition,
                    "can be written by every user");
  ASSERT_EQ(chmod(shared.c_str(), 02770), 0);
  ASSERT_EQ(chown(shared.c_str(), kOtherUid, kOtherGid), 0);
  ZRPC_EXPECT_ERROR(EnsurePrivateDir(shared, policy), absl::StatusCode::kFailedPrecondition,
                    "is owned by uid 65534");
}

TEST_F(SecureFsTest, WritesAtomicallyWithTheExactModeAndReplacesAPlantedLink) {
  const std::string victim = root_ + "/precious";
  Write(victim, "keep me");
  const std::string name = "123-0.json";
  ASSERT_EQ(symlink(victim.c_str(), (root_ + "/" + name).c_str()), 0);
  const mode_t old_umask = umask(077);
  absl::StatusOr<FileId> id = WriteFileAtomically(root_, name, "{\"a\":1}", {.mode = 0640});
  umask(old_umask);
  ZRPC_ASSERT_OK(id);
  EXPECT_EQ(Read(victim), "keep me");
  EXPECT_EQ(Read(root_ + "/" + name), "{\"a\":1}");
  EXPECT_EQ(ModeOf(root_ + "/" + name), 0640u);  // not the umask's 0600
  EXPECT_TRUE(SameFile(root_ + "/" + name, *id));
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(root_))
    names.push_back(e.path().filename());
  EXPECT_EQ(names.size(), 2u) << "a temporary file was left behind";

  // Replaced by another file: no longer the same.
  Write(root_ + "/other", "x");
  ASSERT_EQ(rename((root_ + "/other").c_str(), (root_ + "/" + name).c_str()), 0);
  EXPECT_FALSE(SameFile(root_ + "/" + name, *id));
  ZRPC_EXPECT_ERROR(WriteFileAtomically(root_ + "/missing", name, "x"),
                    absl::StatusCode::kUnavailable, root_ + "/missing/" + name);
}

TEST_F(SecureFsTest, ReadsOnlyRegularFilesOfTrustedOwnersUnderTheCap) {
  const std::string file = root_ + "/ok.json";
  Write(file, "hello");
  absl::StatusOr<std::string> text = ReadUntrustedFile(file, 5, {.uids = {geteuid()}});
  ZRPC_ASSERT_OK(text);
  EXPECT_EQ(*text, "hello");
  ZRPC_EXPECT_ERROR(ReadUntrustedFile(file, 4), absl::StatusCode::kFailedPrecondition,
                    "is 5 bytes long; at most 4 are read");
  ZRPC_EXPECT_ERROR(ReadUntrustedFile(file, 100, {.uids = {geteuid() + 1}}),
                    absl::StatusCode::kFailedPrecondition, "is owned by uid");
  struct stat st;
  ASSERT_EQ(stat(file.c_str(), &st), 0);
  ZRPC_EXPECT_OK(ReadUntrustedFile(file, 100, {.uids = {geteuid() + 1}, .group = st.st_gid}));
  ZRPC_EXPECT_ERROR(ReadUntrustedFile(root_ + "/none", 100), absl::StatusCode::kNotFound,
                    "does not exist");

  const std::string link = root_ + "/link.json";
  ASSERT_EQ(symlink(file.c_str(), link.c_str()), 0);
  ZRPC_EXPECT_ERROR(ReadUntrustedFile(link, 100), absl::StatusCode::kFailedPrecondition,
                    "is a symbolic link");
  ZRPC_EXPECT_OK(ReadUntrustedFile(link, 100, {}, FinalLink::kFollow));

  // Neither a FIFO without a writer nor an endless device can block or exhaust the reader.
  const std::string fifo = root_ + "/fifo.json";
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  const absl::Time start = absl::Now();
  ZRPC_EXPECT_ERROR(ReadUntrustedFile(fifo, 100), absl::StatusCode::kFailedPrecondition,
                    "is a FIFO, not a regular file");
  const std::string zero = root_ + "/zero.json";
  ASSERT_EQ(symlink("/dev/zero", zero.c_str()), 0);
  ZRPC_EXPECT_ERROR(ReadUntrustedFile(zero, 100, {}, FinalLink::kFollow),
                    absl::StatusCode::kFailedPrecondition, "is a character device");
  EXPECT_LT(absl::Now() - start, absl::Seconds(1));
}

TEST_F(SecureFsTest, SmallHelpers) {
  EXPECT_EQ(IpcPath("ipc:///run/zrpc/mm.sock"), "/run/zrpc/mm.sock");
  EXPECT_EQ(IpcPath("ipc://@abstract"), "");
  EXPECT_EQ(IpcPath("tcp://127.0.0.1:1"), "");
  absl::StatusOr<gid_t> root = LookupGroup("root");
  ZRPC_ASSERT_OK(root);
  EXPECT_EQ(*root, 0u);
  ZRPC_EXPECT_ERROR(LookupGroup("no-such-group-zrpc"), absl::StatusCode::kNotFound,
                    "group \"no-such-group-zrpc\" does not exist");
  EXPECT_THAT(DefaultRuntimeDir(), HasSubstr("zrpc"));
  if (geteuid() == 0) {
    EXPECT_EQ(DefaultRuntimeDir(), "/run/zrpc");
  }
}

// The local:// registry on top of them.
class LocalRegistryTest : public SecureFsTest {
 protected:
  int LinesWith(const std::string& s) { return log_.Count(s); }
  static Registration Reg(const std::string& host) {
    return Registration{.topic = "compute", .host = host, .endpoint = "tcp://127.0.0.1:1"};
  }

  ::zrpc::testing::LogCapture log_;
};

TEST_F(LocalRegistryTest, RefusesAnUnsafeDirectoryWithTheReason) {
  const std::string dir = root_ + "/reg";
  ASSERT_EQ(mkdir(dir.c_str(), 0700), 0);
  ASSERT_EQ(chmod(dir.c_str(), 0777), 0);
  ZRPC_EXPECT_ERROR(CreateMatchmaker("local://" + dir), absl::StatusCode::kFailedPrecondition,
                    "local matchmaker: " + dir + " can be written by every user");
  ZRPC_EXPECT_ERROR(CreateMatchmaker("local://" + dir + "?color=red"),
                    absl::StatusCode::kInvalidArgument, "?group=NAME");
  ZRPC_EXPECT_ERROR(CreateMatchmaker("local://" + dir + "?group=no-such-group-zrpc"),
                    absl::StatusCode::kNotFound, "does not exist");
}

TEST_F(LocalRegistryTest, SkipsPlantedFifosLinksAndForeignNamesQuicklyAndLogsEachOnce) {
  const std::string dir = root_ + "/reg";
  absl::StatusOr<std::unique_ptr<Matchmaker>> mm = CreateMatchmaker("local://" + dir);
  ZRPC_ASSERT_OK(mm);
  ZRPC_ASSERT_OK((*mm)->Register(Reg("node1")));
  ASSERT_EQ(mkfifo((dir + "/99998-0.json").c_str(), 0600), 0);
  ASSERT_EQ(symlink("/dev/zero", (dir + "/99999-0.json").c_str()), 0);
  Write(dir + "/evil.json", "{}");
  Write(dir + "/99997-0.json", std::string(2 << 20, ' '));  // over the 1 MiB cap
  const absl::Time start = absl::Now();
  for (int i = 0; i < 3; ++i) {
    absl::StatusOr<std::vector<Registration>> found = (*mm)->Resolve("openstack", "compute");
    ZRPC_ASSERT_OK(found);
    ASSERT_EQ(found->size(), 1u);
    EXPECT_EQ((*found)[0].host, "node1");
    absl::SleepFor(absl::Milliseconds(300));  // past the listing cache: read again
  }
  EXPECT_LT(absl::Now() - start, absl::Seconds(3));
  EXPECT_EQ(LinesWith(dir + "/99998-0.json is a FIFO"), 1);
  EXPECT_EQ(LinesWith(dir + "/99999-0.json is a symbolic link"), 1);
  EXPECT_EQ(LinesWith(dir + "/evil.json: it is not named as zrpc names registry files"), 1);
  EXPECT_EQ(LinesWith(dir + "/99997-0.json is 2097152 bytes long"), 1);
}

TEST_F(LocalRegistryTest, HeartbeatRewritesItsFileWhenReplacedOrRemoved) {
  const std::string dir = root_ + "/reg";
  absl::StatusOr<std::unique_ptr<Matchmaker>> mm = CreateMatchmaker("local://" + dir);
  ZRPC_ASSERT_OK(mm);
  ZRPC_ASSERT_OK((*mm)->Register(Reg("node1")));
  std::string own;
  for (const auto& e : std::filesystem::directory_iterator(dir)) own = e.path();
  ASSERT_THAT(own, HasSubstr(std::to_string(getpid()) + "-"));
  EXPECT_EQ(ModeOf(own), 0600u);
  // Same contents, another file: the inode tells.
  Write(dir + "/copy", Read(own));
  ASSERT_EQ(rename((dir + "/copy").c_str(), own.c_str()), 0);
  struct stat before;
  ASSERT_EQ(lstat(own.c_str(), &before), 0);
  ZRPC_ASSERT_OK((*mm)->Heartbeat());
  struct stat after;
  ASSERT_EQ(lstat(own.c_str(), &after), 0);
  EXPECT_NE(after.st_ino, before.st_ino);
  EXPECT_EQ(LinesWith("was removed or replaced; writing it again"), 1);
  ZRPC_ASSERT_OK((*mm)->Heartbeat());  // ours again: nothing to do
  EXPECT_EQ(LinesWith("was removed or replaced; writing it again"), 1);
  ASSERT_EQ(unlink(own.c_str()), 0);
  ZRPC_ASSERT_OK((*mm)->Heartbeat());
  EXPECT_THAT(Read(own), HasSubstr("node1"));
}

}  // namespace
}  // namespace zrpc::internal
