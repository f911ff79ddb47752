# SPDX-License-Identifier: Apache-2.0
"""zrpc's wire protocol (docs/PROTOCOL.md) in Python with pyzmq, for the integration tests.

Shared by protocol_test.py (a client written from the document alone) and hostile_test.py (a
peer that sends what the document forbids). Needs Debian's python3-zmq (/usr/bin/python3).
"""
import ctypes
import json
import os
import re
import select
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import uuid

import zmq
from zmq.utils.monitor import recv_monitor_message

RESULTS = {"passed": 0, "failed": 0}


def check(name, condition, detail=""):
    """Records and prints one named check; returns the condition."""
    if condition:
        RESULTS["passed"] += 1
        print(f"[ OK ] {name}", flush=True)
    else:
        RESULTS["failed"] += 1
        print(f"[FAIL] {name} {detail}", flush=True)
    return bool(condition)


def envelope(message):
    return json.dumps({"oslo.version": "2.0", "oslo.message": json.dumps(message)}).encode()


def failure(reply):
    return json.loads(reply["failure"]) if reply["failure"] is not None else None


class Client:
    """A DEALER speaking zrpc1 to one service."""

    def __init__(self, endpoint, ctx=None, curve=None, monitor=False):
        """curve: (server_public, own_public, own_secret), Z85 bytes, to run CURVE (PROTOCOL §10).
        monitor: keep a monitor socket (self.monitor) for the connection's events."""
        self.ctx = ctx or zmq.Context.instance()
        self.sock = self.ctx.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        if curve:
            curve_client(self.sock, *curve)
        self.monitor = self.sock.get_monitor_socket() if monitor else None
        self.sock.connect(endpoint)
        self.beats = {}
        self.beat_intervals = set()
        self.stash = {}  # msg_id -> reply frames that arrived while another call was awaited

    def close(self):
        if self.monitor is not None:
            self.sock.disable_monitor()
            self.monitor.close(linger=0)
        self.sock.close(linger=0)

    def wait_for_event(self, event, timeout_s=3):
        """Waits (bounded) for a monitor event (e.g. zmq.EVENT_HANDSHAKE_FAILED_AUTH); returns the
        event's dict (its "value" is the ZAP status for an auth failure) or None."""
        deadline = time.time() + timeout_s
        while time.time() < deadline:
            if not self.monitor.poll(int((deadline - time.time()) * 1000) + 1):
                break
            got = recv_monitor_message(self.monitor)
            if got["event"] == event:
                return got
        return None

    def send(self, kind, target, message, msg_id=None, exchange="openstack"):
        header = f"zrpc1 {kind} {exchange} {target} {msg_id or '-'}"
        self.sock.send_multipart([header.encode(), envelope(message) if isinstance(message, dict) else message])

    def request(self, kind, target, method, args=None, version="1.3", extra=None):
        msg_id = uuid.uuid4().hex
        message = {"method": method, "args": args or {}, "version": version,
                   "_msg_id": msg_id, "_unique_id": uuid.uuid4().hex, "_timeout": 10000}
        message.update(extra or {})
        self.send(kind, target, message, msg_id)
        return msg_id

    def replies(self, msg_id, timeout_s=10):
        """Yields the reply objects of one call until the one with ending. Replies of other calls
        that arrive meanwhile are kept for their own replies() (late ones are never read)."""
        deadline = time.time() + timeout_s
        while True:
            stashed = self.stash.get(msg_id)
            if stashed:
                frames = stashed.pop(0)
            else:
                if time.time() >= deadline or not self.sock.poll(int((deadline - time.time()) * 1000) + 1):
                    break
                frames = self.sock.recv_multipart()
                assert len(frames) == 2, frames
                words = frames[0].decode().split(" ")
                assert words[0] == "zrpc1", words
                if words[2] != msg_id:
                    if words[1] == "reply":
                        self.stash.setdefault(words[2], []).append(frames)
                    continue
            words = frames[0].decode().split(" ")
            if words[1] == "beat":
                self.beats[msg_id] = self.beats.get(msg_id, 0) + 1
                if len(words) == 4:  # the service's announced interval (ms)
                    self.beat_intervals.add(int(words[3]))
                continue
            assert words[1] == "reply", words
            outer = json.loads(frames[1])
            reply = json.loads(outer["oslo.message"])
            yield reply
            if reply["ending"]:
                return
        raise TimeoutError(f"no reply for {msg_id} within {timeout_s} s")

    def final(self, msg_id, timeout_s=10):
        """The ending reply of one call (values of a multicall are skipped)."""
        return list(self.replies(msg_id, timeout_s))[-1]

    def call(self, target, method, args=None, timeout_s=10, **kw):
        replies = list(self.replies(self.request("call", target, method, args, **kw), timeout_s))
        assert len(replies) == 1 and replies[0]["ending"], replies
        return replies[0]


# CurveZMQ (PROTOCOL §10): keys as zrpc writes them, and the socket options of a CURVE client.

def curve_client(sock, server_public, public, secret):
    """Makes `sock` a CURVE client of the server whose public key is `server_public` (before
    connect). Keys are Z85 (str or bytes)."""
    as_bytes = lambda k: k.encode() if isinstance(k, str) else k
    sock.curve_secretkey = as_bytes(secret)
    sock.curve_publickey = as_bytes(public)
    sock.curve_serverkey = as_bytes(server_public)


def write_key_pair(directory, name):
    """Writes DIR/NAME.key (mode 0600: `public-key Z85` and `secret-key Z85` lines) and DIR/NAME.pub
    (`NAME Z85`), as `zrpc keygen` does, from a pyzmq key pair. Returns (public, secret) as str."""
    public, secret = (k.decode() for k in zmq.curve_keypair())
    fd = os.open(os.path.join(directory, name + ".key"), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(f"# {name}: CURVE key pair (keep secret)\npublic-key {public}\nsecret-key {secret}\n")
    with open(os.path.join(directory, name + ".pub"), "w") as f:
        f.write(f"{name} {public}\n")
    return public, secret


def write_authorized_keys(path, entries, group_roles=()):
    """entries: (identity, public_key, [groups]) -> `IDENTITY KEY [GROUP,GROUP]` lines;
    group_roles: (group, "role=PATTERN,... ...") -> `@GROUP ROLES` lines (PROTOCOL.md section 10)."""
    with open(path + ".tmp", "w") as f:
        f.write("# who may connect: IDENTITY PUBLIC-KEY [GROUPS] [ROLE=PATTERNS]\n")
        for identity, key, groups in entries:
            f.write(" ".join([identity, key] + ([",".join(groups)] if groups else [])) + "\n")
        for group, roles in group_roles:
            f.write(f"@{group} {roles}\n")
    os.chmod(path + ".tmp", 0o644)
    os.replace(path + ".tmp", path)  # readers see the old file or the new one, never half


def _child_setup(then=None):
    # The service gets SIGTERM when the test process dies (a crash, CTest's timeout), so a test
    # never leaves a service behind.
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if then:
        then()


PR_SET_PDEATHSIG = 1


class Service:
    """The reference service (tools/service.cc) in a process of its own, with a local:// registry
    in a temporary directory. With capture_stderr its log lines are kept (see wait_for_log)."""

    def __init__(self, binary, args=(), capture_stderr=False, env=None, preexec_fn=None,
                 ready_timeout_s=10):
        self.registry = tempfile.mkdtemp(prefix="zrpc-py-")
        self.lines = []
        self._lock = threading.Lock()
        self._reader = None
        full_env = dict(os.environ, **(env or {}))
        self.proc = subprocess.Popen(
            [binary, "--matchmaker", "local://" + self.registry, *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE if capture_stderr else None,
            env=full_env, preexec_fn=lambda: _child_setup(preexec_fn))
        if capture_stderr:
            self._reader = threading.Thread(target=self._read_stderr, daemon=True)
            self._reader.start()
        self.ready = self._read_ready(ready_timeout_s)
        self.endpoint = self.ready.split(" ", 1)[1] if self.ready.startswith("READY ") else None

    def _read_ready(self, timeout_s):
        # Bounded: a service that never prints READY fails the test instead of hanging it.
        line = b""
        deadline = time.time() + timeout_s
        fd = self.proc.stdout.fileno()
        while not line.endswith(b"\n") and time.time() < deadline:
            if select.select([fd], [], [], max(0.0, deadline - time.time()))[0]:
                chunk = os.read(fd, 1)
                if not chunk:
                    break
                line += chunk
        return line.decode(errors="backslashreplace").strip()

    def _read_stderr(self):
        # surrogateescape: a byte that is not UTF-8 stays distinguishable (str.isprintable() is
        # False for it) from the service's own escaping, which writes it as the text "\xNN".
        for raw in self.proc.stderr:
            with self._lock:
                self.lines.append(raw.decode(errors="surrogateescape").rstrip("\n"))

    def registrations(self):
        entries = []
        for name in os.listdir(self.registry):
            if name.endswith(".json"):
                with open(os.path.join(self.registry, name)) as f:
                    entries += json.load(f)["registrations"]
        return entries

    def pub_endpoint(self):
        return [e["pub_endpoint"] for e in self.registrations()
                if e["topic"].startswith("publisher~")][0]

    def alive(self):
        return self.proc.poll() is None

    def mark(self):
        """A position in the log: later calls look only at the lines after it."""
        with self._lock:
            return len(self.lines)

    def log_since(self, mark=0):
        with self._lock:
            return list(self.lines[mark:])

    @staticmethod
    def printable(line):
        """A log line as it can be printed: bytes that are not UTF-8 as \\xNN."""
        return line.encode(errors="surrogateescape").decode(errors="backslashreplace")

    def count_log(self, pattern, mark=0):
        return sum(1 for line in self.log_since(mark) if re.search(pattern, line))

    def wait_for_log(self, pattern, mark=0, count=1, timeout_s=3):
        """Waits (bounded) until `count` lines after `mark` match `pattern`; returns how many did."""
        deadline = time.time() + timeout_s
        while True:
            n = self.count_log(pattern, mark)
            if n >= count or time.time() >= deadline:
                return n
            time.sleep(0.01)

    def rss_kib(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def stop(self):
        """Stops this service (only the process this object started) and removes its registry."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self._reader:
            self._reader.join(timeout=5)
        self.proc.stdout.close()
        shutil.rmtree(self.registry, ignore_errors=True)
        return self.proc.returncode
