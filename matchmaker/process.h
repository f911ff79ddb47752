// SPDX-License-Identifier: Apache-2.0
// Whether a process of this machine is still running, guarded against pid reuse by its start
// time. Shared by local:// (files of exited processes are ignored) and the sidecar (registrations
// of exited local services are dropped).
#ifndef ZRPC_MATCHMAKER_PROCESS_H_
#define ZRPC_MATCHMAKER_PROCESS_H_

#include <sys/types.h>

#include <cstdint>

namespace zrpc::internal {

// The process's start time in clock ticks since boot (field 22 of /proc/<pid>/stat), or 0 when
// there is no such process (or /proc cannot be read).
uint64_t ProcessStartTime(pid_t pid);

// False when `pid` has exited (also while it is a zombie, not yet reaped) or now names another
// process than the one that started at `start_time` (0 = do not check). Does not block.
bool ProcessAlive(pid_t pid, uint64_t start_time);

}  // namespace zrpc::internal

#endif  // ZRPC_MATCHMAKER_PROCESS_H_
