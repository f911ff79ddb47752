#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# A second, unprivileged local user tries to hijack a root service's runtime directories (issue 9,
# item 5), with the real binaries:
#   (a) pre-creating the victim's registry, ipc and sidecar socket directories (or a symlink in
#       their place): the victim refuses to start and says why;
#   (b) planting "<pid>-0.json.tmp" and "<pid>-0.json" symlinks to a victim's file in a shared
#       group registry it may write: the file is untouched, the registration is written anyway;
#   (c) planting a FIFO and a symlink to /dev/zero named "*.json" there: a lookup completes at
#       once, skips them and logs each;
#   (d) reaching a root sidecar: its ipc socket (mode 0600) refuses the attacker; over its TCP
#       endpoint the attacker may look a registration up but not unregister it (PERMISSION_DENIED,
#       the registration stays).
# Needs root (it creates the user and a group, and removes them at exit). Not root: exit 77
# (CTest: skipped), or a failure when CI=true, where it must run.
#
# usage: second_user_test.sh ZRPC_SERVICE ZRPC_CLI ZRPC_MATCHMAKER
set -uo pipefail

SERVICE=$1
CLI=$2
MATCHMAKER=$3

if [[ $(id -u) != 0 ]]; then
  if [[ "${CI:-}" == true ]]; then
    echo "FAIL: the second-user test must run as root in CI (it creates an unprivileged user)" >&2
    exit 1
  fi
  echo "SKIPPED: the second-user test needs root (it creates an unprivileged user with useradd);" \
       "nothing was tested" >&2
  exit 77
fi
for tool in useradd userdel groupadd groupdel runuser mkfifo timeout stat; do
  command -v "$tool" >/dev/null || { echo "FAIL: $tool is missing" >&2; exit 1; }
done

ATTACKER="zrpcatk$$"
GROUP="zrpcgrp$$"
W=$(mktemp -d /tmp/zrpc-2u.XXXXXX)
PIDS=()
FAILURES=0

cleanup() {
  for pid in "${PIDS[@]}"; do
    kill "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
  done
  userdel "$ATTACKER" 2>/dev/null
  groupdel "$GROUP" 2>/dev/null
  rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 1' INT TERM  # so that cleanup runs when CTest stops the test

pass() { echo "PASS: $*"; }
fail() { echo "FAIL: $*" >&2; FAILURES=$((FAILURES + 1)); }

groupadd "$GROUP" || { echo "FAIL: groupadd $GROUP" >&2; exit 1; }
useradd -M -N -G "$GROUP" -s /usr/sbin/nologin "$ATTACKER" || { echo "FAIL: useradd" >&2; exit 1; }
ATTACKER_UID=$(id -u "$ATTACKER")
as_attacker() { timeout 10 runuser -u "$ATTACKER" -- "$@"; }

chmod 0711 "$W"                        # the attacker may pass through, not list or write
mkdir -m 1777 "$W/pub"                 # a directory everyone may write, as /tmp is
chmod 1777 "$W/pub"
mkdir -m 0700 "$W/victim-reg"          # a good registry of the victim's

# expect_refused NAME EXPECTED_TEXT COMMAND...: COMMAND exits non-zero within 20 s, saying that.
expect_refused() {
  local name=$1 expected=$2
  shift 2
  local out
  out=$(timeout 20 "$@" </dev/null 2>&1)
  local rc=$?
  if [[ $rc == 0 || $rc == 124 ]]; then
    fail "$name: expected a refusal, got exit code $rc: $out"
  elif [[ "$out" != *"$expected"* ]]; then
    fail "$name: the error does not say \"$expected\": $out"
  else
    pass "$name: refused: $out"
  fi
}

# wait_for_line FILE TEXT: up to 20 s for TEXT to appear in FILE.
wait_for_line() {
  for _ in $(seq 200); do
    grep -q "$2" "$1" 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}

# --- (a) directories created first by the attacker ---------------------------------------------
as_attacker mkdir -m 0777 "$W/pub/reg-a"
expect_refused "(a) registry directory created by another user" \
  "is owned by uid $ATTACKER_UID ($ATTACKER), not you (uid 0 (root)): another user may have created it" \
  "$SERVICE" --host victim-a --matchmaker "local://$W/pub/reg-a"
[[ -z "$(ls -A "$W/pub/reg-a")" ]] && pass "(a) nothing was written into it" ||
  fail "(a) the victim wrote into the attacker's directory: $(ls -A "$W/pub/reg-a")"

as_attacker mkdir -m 0700 "$W/pub/att-target"
as_attacker ln -s "$W/pub/att-target" "$W/pub/reg-link"
expect_refused "(a) registry directory replaced by a symlink" \
  "$W/pub/reg-link is a symbolic link (to $W/pub/att-target), not a directory" \
  "$SERVICE" --host victim-a --matchmaker "local://$W/pub/reg-link"

mkdir -m 0777 "$W/open" && chmod 0777 "$W/open"
expect_refused "(a) registry under a directory others may write without the sticky bit" \
  "can be written by every user (mode 0777) without the sticky bit" \
  "$SERVICE" --host victim-a --matchmaker "local://$W/open/reg"

as_attacker mkdir -m 0777 "$W/pub/ipc-a"
expect_refused "(a) ipc directory created by another user" \
  "service ipc_dir: $W/pub/ipc-a is owned by uid $ATTACKER_UID" \
  "$SERVICE" --host victim-a --matchmaker "local://$W/victim-reg" --ipc-dir "$W/pub/ipc-a"

as_attacker mkdir -m 0777 "$W/pub/mm-a"
expect_refused "(a) sidecar socket directory created by another user" \
  "socket directory of ipc://$W/pub/mm-a/mm.sock: $W/pub/mm-a is owned by uid $ATTACKER_UID" \
  "$MATCHMAKER" --endpoint "ipc://$W/pub/mm-a/mm.sock"

# The sidecar creates its socket directory and gives its sockets the mode (and group) asked for.
"$MATCHMAKER" --endpoint "ipc://$W/sock/mm.sock" --socket-group "$GROUP" --socket-mode 0660 \
  >"$W/mm.out" 2>&1 &
PIDS+=($!)
if wait_for_line "$W/mm.out" READY; then
  got="$(stat -c '%a %G' "$W/sock") / $(stat -c '%a %G' "$W/sock/mm.sock") / $(stat -c '%a %G' "$W/sock/mm.sock.pub")"
  want="2750 $GROUP / 660 $GROUP / 660 $GROUP"
  [[ "$got" == "$want" ]] && pass "(a) sidecar socket directory and sockets: $got" ||
    fail "(a) sidecar socket directory and sockets are \"$got\", not \"$want\""
else
  fail "(a) the sidecar did not start: $(cat "$W/mm.out")"
fi
"$MATCHMAKER" --endpoint "ipc://$W/sock2/mm.sock" >"$W/mm2.out" 2>&1 &
PIDS+=($!)
if wait_for_line "$W/mm2.out" READY; then
  got="$(stat -c '%a' "$W/sock2") $(stat -c '%a' "$W/sock2/mm.sock")"
  [[ "$got" == "700 600" ]] && pass "(a) sidecar defaults: directory 700, socket 600" ||
    fail "(a) sidecar defaults are \"$got\", not \"700 600\""
else
  fail "(a) the sidecar did not start: $(cat "$W/mm2.out")"
fi

# --- (b) planted symlinks in a shared group registry the attacker may write --------------------
install -d -m 2770 -g "$GROUP" "$W/shared"
SHARED="local://$W/shared?group=$GROUP"
echo precious >"$W/precious"
chmod 0644 "$W/precious"
mkfifo "$W/go"
# The service's pid is known before it starts: the subshell waits, then becomes the service.
( read -r _ <"$W/go"; exec "$SERVICE" --host victim-b --matchmaker "$SHARED" ) >"$W/b.out" 2>"$W/b.err" &
VICTIM=$!
PIDS+=("$VICTIM")
as_attacker ln -s "$W/precious" "$W/shared/$VICTIM-0.json.tmp"
as_attacker ln -s "$W/precious" "$W/shared/$VICTIM-0.json"
timeout 10 bash -c 'echo go >"$1"' _ "$W/go" || fail "(b) the victim's wrapper did not wait"
if wait_for_line "$W/b.out" READY; then
  [[ "$(cat "$W/precious")" == precious ]] && pass "(b) the symlinks' target is untouched" ||
    fail "(b) the victim wrote through a planted symlink: $(cat "$W/precious")"
  got=$(stat -c '%F %U %G %a' "$W/shared/$VICTIM-0.json")
  [[ "$got" == "regular file root $GROUP 640" ]] && pass "(b) the registry file is the victim's own: $got" ||
    fail "(b) the registry file is \"$got\""
else
  fail "(b) the victim did not start: $(cat "$W/b.err")"
fi

# --- (c) a FIFO and a link to /dev/zero named *.json -------------------------------------------
as_attacker mkfifo "$W/shared/99998-0.json"
as_attacker ln -s /dev/zero "$W/shared/99999-0.json"
start=$(date +%s%N)
out=$(ZRPC_LOG_LEVEL=warning timeout 20 "$CLI" call compute whoami --matchmaker "$SHARED" 2>"$W/c.err")
rc=$?
elapsed_ms=$((($(date +%s%N) - start) / 1000000))
if [[ $rc == 0 && "$out" == '"victim-b"' && $elapsed_ms -lt 5000 ]]; then
  pass "(c) the lookup answered in ${elapsed_ms} ms: $out"
else
  fail "(c) the lookup gave exit code $rc, \"$out\" after ${elapsed_ms} ms: $(cat "$W/c.err")"
fi
for expected in "$W/shared/99998-0.json is a FIFO" "$W/shared/99999-0.json is a symbolic link"; do
  grep -qF "$expected" "$W/c.err" && pass "(c) logged: $expected" ||
    fail "(c) no log line \"$expected\": $(cat "$W/c.err")"
done

# --- (d) the sidecar: another user's connection cannot unregister the victim ---------------------
PORT=$((20000 + $$ % 20000))
"$MATCHMAKER" --endpoint "ipc://$W/sockd/mm.sock" --tcp "tcp://127.0.0.1:$PORT" >"$W/mmd.out" 2>&1 &
PIDS+=($!)
if ! wait_for_line "$W/mmd.out" READY; then
  fail "(d) the sidecar did not start: $(cat "$W/mmd.out")"
else
  "$SERVICE" --host victim-d --matchmaker "ipc://$W/sockd/mm.sock" >"$W/d.out" 2>"$W/d.err" &
  PIDS+=($!)
  wait_for_line "$W/d.out" READY || fail "(d) the victim did not start: $(cat "$W/d.err")"
  out=$(as_attacker "$CLI" topics --timeout 2 --matchmaker "ipc://$W/sockd/mm.sock" 2>&1)
  [[ "$out" != *victim-d* ]] && pass "(d) the sidecar's ipc socket refuses the attacker" ||
    fail "(d) the attacker listed the victim through the ipc socket: $out"
  out=$(as_attacker timeout 10 python3 - "$PORT" <<'PY' 2>&1
import json, sys, zmq
s = zmq.Context().socket(zmq.DEALER)
s.setsockopt(zmq.RCVTIMEO, 3000)
s.setsockopt(zmq.LINGER, 0)
s.connect("tcp://127.0.0.1:%s" % sys.argv[1])
def ask(op, body):
    s.send_multipart([("zmm1 %s 1" % op).encode(), json.dumps(body).encode()])
    return json.loads(s.recv_multipart()[1])
regs = ask("resolve", {"exchange": "openstack", "key": "compute"})["result"]["registrations"]
victim = [r for r in regs if r["host"] == "victim-d"][0]
print(json.dumps(ask("unregister", {"client": "forged", "registration": victim})))
PY
)
  if [[ "$out" == *'"ok": false'* && "$out" == *'"code": 7'* ]]; then
    pass "(d) the attacker's unregister is refused: $out"
  else
    fail "(d) the attacker's unregister was not refused with PERMISSION_DENIED: $out"
  fi
  out=$(timeout 20 "$CLI" call compute whoami --matchmaker "ipc://$W/sockd/mm.sock" 2>&1)
  [[ "$out" == '"victim-d"' ]] && pass "(d) the victim's registration stays: $out" ||
    fail "(d) the victim's registration is gone: $out"
fi

if [[ $FAILURES != 0 ]]; then
  echo "$FAILURES check(s) failed" >&2
  exit 1
fi
echo "all checks passed"
