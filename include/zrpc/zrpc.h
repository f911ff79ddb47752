// SPDX-License-Identifier: Apache-2.0
// zrpc/zrpc.h — includes every public zrpc header.
#ifndef ZRPC_ZRPC_H_
#define ZRPC_ZRPC_H_

#include "zrpc/context.h"     // IWYU pragma: export
#include "zrpc/dispatcher.h"  // IWYU pragma: export
#include "zrpc/errors.h"      // IWYU pragma: export
#include "zrpc/log.h"         // IWYU pragma: export
#include "zrpc/matchmaker.h"  // IWYU pragma: export
#include "zrpc/message.h"     // IWYU pragma: export
#include "zrpc/notifier.h"    // IWYU pragma: export
#include "zrpc/proxy.h"       // IWYU pragma: export
#include "zrpc/security.h"    // IWYU pragma: export
#include "zrpc/service.h"     // IWYU pragma: export
#include "zrpc/serializer.h"  // IWYU pragma: export
#include "zrpc/transport.h"   // IWYU pragma: export
#include "zrpc/value.h"       // IWYU pragma: export
#include "zrpc/version.h"     // IWYU pragma: export

#endif  // ZRPC_ZRPC_H_
