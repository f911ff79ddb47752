// SPDX-License-Identifier: Apache-2.0
// zrpc/errors.h — zrpc's error kinds (the seed's RPC exceptions) as absl::Status values.
//
// Every public zrpc function reports failure as an absl::Status. The RPC-specific failures carry
// a kind and named fields in the status payload, with the seed's message texts:
//
//   absl::Status s = zrpc::TimeoutError("compute", "add", "no reply");
//   // s.code() == DEADLINE_EXCEEDED, s.message() == 'Timeout while waiting on RPC response -
//   //   topic: "compute", RPC method: "add" info: "no reply"'
//   if (zrpc::IsErrorKind(s, zrpc::ErrorKind::kTimeout)) log(zrpc::GetErrorField(s, "topic"));
//
// On the wire a failure is the seed's JSON {class, module, message, tb, args, kwargs}
// (SerializeRemoteException / DeserializeRemoteException). zrpc's own kinds travel as module
// "zrpc" and come back as the same kind with IsRemote() true; anything else comes back as a
// RemoteError. The failure's `args` and `kwargs` are kept (RemoteErrorArgs/RemoteErrorKwargs)
// and sent on again when a handler returns the status to its own caller.
//
// Printing: absl's Status::ToString() and operator<< append every payload, zrpc's internal one
// included ("[zrpc.dev/zrpc.Error='{...}']"). Show errors to people with FormatError(status)
// (or status.message()); the payload is not a stable format. Thread-safe (all functions are pure).
#ifndef ZRPC_ERRORS_H_
#define ZRPC_ERRORS_H_

#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "zrpc/value.h"

namespace zrpc {

// The kinds of RPC failure. The status code of each is fixed (see DESIGN §5 / README).
enum class ErrorKind {
  kRpcException,                   // INTERNAL       "An unknown RPC related exception occurred."
  kRemoteError,                    // UNKNOWN or the remote's code; fields exc_type, value, traceback
  kTimeout,                        // DEADLINE_EXCEEDED; fields topic, method, info
  kNoConsumer,                     // NOT_FOUND; field topic
  kPeerLost,                       // UNAVAILABLE; fields topic, host
  kNoSuchMethod,                   // UNIMPLEMENTED; field method
  kUnsupportedRpcVersion,          // FAILED_PRECONDITION; field version
  kUnsupportedRpcEnvelopeVersion,  // FAILED_PRECONDITION; field version
  kRpcVersionCapError,             // FAILED_PRECONDITION; field version_cap
  kDuplicateMessage,               // ALREADY_EXISTS; field msg_id
  kInvalidRpcConnectionReuse,      // FAILED_PRECONDITION
  kTransportClosed,                // CANCELLED: the transport was closed while waiting
  kNotAuthorized,                  // PERMISSION_DENIED; fields identity, method: nothing ran
};

// The kind's class name on the wire: "RPCException", "RemoteError", "Timeout", "NoConsumer",
// "PeerLost", "NoSuchMethod", "UnsupportedRpcVersion", "UnsupportedRpcEnvelopeVersion",
// "RpcVersionCapError", "DuplicateMessageError", "InvalidRPCConnectionReuse", "TransportClosed",
// "NotAuthorized".
std::string_view ErrorKindName(ErrorKind kind);
// The kind whose name is `name`, if any.
std::optional<ErrorKind> ErrorKindFromName(std::string_view name);

// Constructors, one per kind. Texts are the seed's (later form).
// An empty `message` gives "An unknown RPC related exception occurred.".
absl::Status RpcExceptionError(std::string_view message = {});
// "Remote error: <exc_type> <value>\n<traceback>." with `code` (UNKNOWN unless the remote sent one).
absl::Status RemoteError(std::string_view exc_type, std::string_view value,
                         std::string_view traceback,
                         absl::StatusCode code = absl::StatusCode::kUnknown);
// Empty fields print as "<unknown>", as in the seed.
absl::Status TimeoutError(std::string_view topic, std::string_view method, std::string_view info);
// `detail`, when given, is appended in parentheses (e.g. which ring file was asked).
absl::Status NoConsumerError(std::string_view topic, std::string_view detail = {});
// `detail`, when given, is appended in parentheses (e.g. an authentication failure).
absl::Status PeerLostError(std::string_view topic, std::string_view host,
                           std::string_view detail = {});
absl::Status NoSuchMethodError(std::string_view method);
// With `served` (e.g. "1.3, 2.0"), the text goes on to say what is served:
// 'Specified RPC version, 2.1, not supported by this endpoint. This service serves namespace ""
// at 1.3.' (fields version, and namespace and served when given).
absl::Status UnsupportedRpcVersionError(std::string_view version, std::string_view ns = {},
                                        std::string_view served = {});
// A NoSuchMethod for a request in a namespace no endpoint serves; `served` lists the namespaces
// that are ('"", "admin"'): 'Endpoint does not support RPC method m: namespace "x" is not
// served here (it serves "", "admin")' (fields method, namespace, served).
absl::Status NamespaceNotServedError(std::string_view ns, std::string_view method,
                                     std::string_view served);
absl::Status UnsupportedRpcEnvelopeVersionError(std::string_view version);
absl::Status RpcVersionCapError(std::string_view version_cap);
absl::Status DuplicateMessageError(std::string_view msg_id);
absl::Status InvalidRpcConnectionReuseError();
absl::Status TransportClosedError();
// The caller `identity` ("" when unauthenticated) may not call `method` (Endpoint::allowed).
absl::Status NotAuthorizedError(std::string_view identity, std::string_view method);

// A handler failure that came from a C++ exception: travels with the exception's type
// (module "std", class "runtime_error") and arrives at the caller as a RemoteError.
absl::Status ExceptionError(std::string_view module, std::string_view class_name,
                            std::string_view what);

// The kind of `status`, or nullopt for OK and for statuses zrpc did not classify.
std::optional<ErrorKind> GetErrorKind(const absl::Status& status);
inline bool IsErrorKind(const absl::Status& status, ErrorKind kind) {
  return GetErrorKind(status) == kind;
}
// A named field of a zrpc error ("topic", "method", "exc_type", ...); empty when absent.
std::string GetErrorField(const absl::Status& status, std::string_view field);
// True when the error was raised in another process and rebuilt here.
bool IsRemote(const absl::Status& status);

// Marks an error as expected (the seed's client_exceptions): the server returns it to the
// caller without logging it as a server error.
absl::Status MarkExpected(absl::Status status);
bool IsExpected(const absl::Status& status);

// The `args` (an array) and `kwargs` (an object) of a failure received from a remote, as it
// sent them (zrpc's own kinds send their fields and "code" in kwargs); an empty array or object
// for other statuses, unless set by WithErrorArgs.
Value RemoteErrorArgs(const absl::Status& status);
Value RemoteErrorKwargs(const absl::Status& status);
// Returns `status` carrying `args` and `kwargs`: they travel in its failure JSON (for callers in
// other languages, e.g. the seed's klass(*args, **kwargs)). OK stays OK.
absl::Status WithErrorArgs(absl::Status status, Array args, Object kwargs);

// A status as text for people, without zrpc's internal payload:
//   a remote error: "<exc_type>: <value>", then its remote traceback, one line each;
//   a zrpc kind: "<Kind>: <message>" (e.g. "NoSuchMethod: Endpoint does not support ...");
//   a C++ exception from a handler: "<class>: <what>";
//   anything else: "<CODE>: <message>" (e.g. "INVALID_ARGUMENT: ..."); "OK" for OK.
std::string FormatError(const absl::Status& status);

// The seed's failure JSON for a non-OK status: {"class", "module", "message", "tb", "args",
// "kwargs"}. A status rebuilt from a remote keeps its original class and module; class and
// module that both end in "_Remote" lose that suffix (the seed's cell-hop rule).
std::string SerializeRemoteException(const absl::Status& status);
// Rebuilds the error a failure JSON describes (see the header comment). Never returns OK:
// malformed input gives an RPCException naming the problem.
absl::Status DeserializeRemoteException(std::string_view data);

}  // namespace zrpc

#endif  // ZRPC_ERRORS_H_
