// SPDX-License-Identifier: Apache-2.0
#include "matchmaker/process.h"

#include <signal.h>

#include <cerrno>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace zrpc::internal {
namespace {

struct Stat {
  char state = 0;
  uint64_t start_time = 0;
};

// Fields 3 (state) and 22 (starttime) of /proc/<pid>/stat; false when it cannot be read.
bool ReadStat(pid_t pid, Stat* out) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/stat"));
  std::string line;
  if (!std::getline(in, line)) return false;
  // The command name (field 2) may hold spaces and parentheses: the fields start after the last
  // ')'.
  const size_t close = line.rfind(')');
  if (close == std::string::npos || close + 2 >= line.size()) return false;
  std::vector<absl::string_view> fields =
      absl::StrSplit(absl::string_view(line).substr(close + 2), ' ');
  // fields[0] is field 3 (state), so field 22 is fields[19].
  if (fields.size() <= 19 || fields[0].empty()) return false;
  out->state = fields[0][0];
  return absl::SimpleAtoi(fields[19], &out->start_time);
}

}  // namespace

uint64_t ProcessStartTime(pid_t pid) {
  Stat st;
  return pid > 0 && ReadStat(pid, &st) ? st.start_time : 0;
}

bool ProcessAlive(pid_t pid, uint64_t start_time) {
  if (pid <= 0) return false;
  if (kill(pid, 0) != 0 && errno == ESRCH) return false;
  Stat st;
  if (!ReadStat(pid, &st)) return false;
  // A killed process that is not reaped yet still answers kill(); its state is 'Z' (or 'X').
  if (st.state == 'Z' || st.state == 'X') return false;
  return start_time == 0 || st.start_time == start_time;
}

}  // namespace zrpc::internal
