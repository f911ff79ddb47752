#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Checks the installed systemd units in ROOT without systemd: every line is a comment, a
# [Section] systemd knows, or Key=value with a key of that section used by zrpc's units; and the
# settings the documentation promises are there (Type=notify, RuntimeDirectory=zrpc, the socket's
# group and mode, the template's --topic %i, binaries that exist in ROOT).
set -euo pipefail
root="$1"
dir="$root/usr/lib/systemd/system"
fail() { echo "FAIL: $*"; exit 1; }
check_syntax() {
  local file="$1" section="" n=0 line key
  while IFS= read -r line || [[ -n "$line" ]]; do
    n=$((n + 1))
    [[ -z "$line" || "$line" == \#* || "$line" == \;* ]] && continue
    if [[ "$line" =~ ^\[(Unit|Service|Install)\]$ ]]; then section="${BASH_REMATCH[1]}"; continue; fi
    [[ "$line" =~ ^([A-Za-z]+)=(.*)$ ]] || fail "$file:$n: not Key=value: $line"
    key="${BASH_REMATCH[1]}"
    case "$section:$key" in
      Unit:Description|Unit:Documentation|Unit:After|Unit:Wants|Unit:Requires) ;;
      Service:Type|Service:NotifyAccess|Service:User|Service:Group|Service:DynamicUser) ;;
      Service:SupplementaryGroups|Service:RuntimeDirectory|Service:RuntimeDirectoryMode) ;;
      Service:EnvironmentFile|Service:ExecStart|Service:TimeoutStopSec|Service:Restart) ;;
      Service:RestartSec|Service:NoNewPrivileges|Service:ProtectSystem|Service:ProtectHome) ;;
      Service:PrivateTmp|Service:PrivateDevices|Service:ProtectKernelTunables) ;;
      Service:ProtectControlGroups|Service:RestrictAddressFamilies|Service:LimitNOFILE) ;;
      Install:WantedBy) ;;
      :*) fail "$file:$n: $key= outside a section" ;;
      *) fail "$file:$n: $key= is not a known key of [$section]" ;;
    esac
  done < "$file"
  local exec
  exec="$(sed -n 's/^ExecStart=\([^ ]*\).*/\1/p' "$file")"
  [[ -n "$exec" ]] || fail "$file has no ExecStart="
  [[ "$exec" == /* && -x "$root$exec" ]] || fail "$file starts $exec, which is not in the package"
}
need() { grep -qxF -- "$2" "$1" || fail "$(basename "$1") lacks the line: $2"; }
needs_arg() { grep -q -- "^ExecStart=.* $2\( \|$\)" "$1" || fail "$(basename "$1")'s ExecStart lacks $2"; }

mm="$dir/zrpc-matchmaker.service"
svc="$dir/zrpc-service@.service"
[[ -f "$mm" && -f "$svc" ]] || fail "the units are not installed in $dir"
check_syntax "$mm"
check_syntax "$svc"
need "$mm" "Type=notify"
need "$mm" "RuntimeDirectory=zrpc"
need "$mm" "RuntimeDirectoryMode=0750"
need "$mm" "User=zrpc"
needs_arg "$mm" "--endpoint ipc:///run/zrpc/matchmaker.sock"
needs_arg "$mm" "--socket-group zrpc"
needs_arg "$mm" "--socket-mode 0660"
needs_arg "$svc" "--topic %i"
needs_arg "$svc" "--matchmaker ipc:///run/zrpc/matchmaker.sock"
need "$svc" "SupplementaryGroups=zrpc"
need "$svc" "Wants=zrpc-matchmaker.service network-online.target"
grep -q "^u zrpc " "$root/usr/lib/sysusers.d/zrpc.conf" || fail "sysusers.d/zrpc.conf makes no zrpc user"
echo "check_units: zrpc-matchmaker.service and zrpc-service@.service are well-formed"
