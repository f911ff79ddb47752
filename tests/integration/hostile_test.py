#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""The hostile-input suite: a raw ZeroMQ peer sends the reference service what docs/PROTOCOL.md
forbids, one class of input per case, and checks that the service

  1. answers with a clear error, or drops the input with a log line (its stderr is captured),
  2. still answers a normal call afterwards, and
  3. lost nothing else: a well-behaved client's call in flight during the attack is answered.

Run by CTest, one test per case:  /usr/bin/python3 hostile_test.py PATH/TO/zrpc-service [CASE...]
(no CASE: every case). Needs Debian's python3-zmq. Every check prints '[ OK ]' or '[FAIL]' with
its case's name; the run ends with 'N passed, N failed' and exits non-zero on any failure. Every
wait is bounded; each case starts its own service and stops only that process.
"""
import contextlib
import json
import os
import re
import resource
import socket
import sys
import time
import uuid

import zmq
from zmq.utils.monitor import recv_monitor_message

from zrpc_wire import RESULTS, Client, Service, check, envelope, failure

SERVICE = None  # the zrpc-service binary (argv[1])
MAX_MESSAGE = 4 << 20  # the service's default max_message_size
PROMPT_S = 2.0  # a normal call during or after an attack is answered within this
RSS_BOUND_KIB = 64 << 10  # an attack may grow the service by at most this much
if os.environ.get("ASAN_OPTIONS") is not None:
    # Under AddressSanitizer (tools/setup.sh sanitize) freed memory waits in its quarantine and
    # every allocation has shadow and redzones: resident size overstates what the service holds,
    # and a burst of libzmq buffers showed up as +75 MiB once in seven runs. The plain run keeps
    # the real bound.
    RSS_BOUND_KIB = 192 << 10

# The behaviour a check relies on, named in its failure message.
LEAD_JSON = "JsonLimits: members and values capped, the rules applied to the whole document"
LEAD_XPUB = "subscriptions validated (bad ones logged and counted) and capped (1,024 distinct; the socket resets beyond)"
LEAD_FDS = "the soft open-file limit is raised to the hard limit at start"

CASES = {}


def case(fn):
    CASES[fn.__name__] = fn
    return fn


def gather(wanted, timeout_s):
    """Waits (bounded) for the final reply of each (client, msg_id) in `wanted`, on every client at
    once. Returns {msg_id: (arrival time, reply)} for those that arrived."""
    got = {}
    poller = zmq.Poller()
    by_sock = {}
    for client, msg_id in wanted:
        by_sock.setdefault(client.sock, (client, set()))[1].add(msg_id)
        poller.register(client.sock, zmq.POLLIN)
    # Replies another wait put aside first.
    for client, ids in by_sock.values():
        for msg_id in list(ids):
            for frames in client.stash.pop(msg_id, []):
                reply = json.loads(json.loads(frames[1])["oslo.message"])
                if reply["ending"]:
                    got[msg_id] = (time.time(), reply)
    deadline = time.time() + timeout_s
    while len(got) < len(wanted) and time.time() < deadline:
        for sock, _ in poller.poll(max(1, int((deadline - time.time()) * 1000))):
            client, ids = by_sock[sock]
            while sock.poll(0):
                frames = sock.recv_multipart()
                words = frames[0].decode(errors="replace").split(" ")
                if len(frames) != 2 or words[1] != "reply":
                    continue  # beats
                reply = json.loads(json.loads(frames[1])["oslo.message"])
                if words[2] in ids:
                    if reply["ending"]:
                        got[words[2]] = (time.time(), reply)
                else:
                    client.stash.setdefault(words[2], []).append(frames)
    return got


def prompt_call(name, client, what, method="whoami", args=None, expect=None, note=""):
    """A normal call from `client`: checks it is answered with `expect` within PROMPT_S. `note`
    is added to the failure message."""
    start = time.time()
    try:
        reply = client.call("compute", method, args, timeout_s=PROMPT_S)
    except TimeoutError as e:
        return check(f"{name}: {what}", False, f"{e} {note}")
    took = time.time() - start
    return check(f"{name}: {what}", reply["failure"] is None and (expect is None or reply["result"] == expect),
                 f"{reply} after {took:.2f} s {note}")


@contextlib.contextmanager
def attacked(name, args=(), env=None, bystander_ms=500, preexec_fn=None):
    """Starts a service for one case, with a bystander: a well-behaved client whose slow call is in
    flight while the case attacks. On exit checks the service survived, the bystander's call was
    answered, a new client's call is answered promptly and SIGTERM still stops the service."""
    ctx = zmq.Context()
    svc = Service(SERVICE, ["--host", "hostile", *args], capture_stderr=True, env=env,
                  preexec_fn=preexec_fn)
    failed_before = RESULTS["failed"]
    try:
        if not check(f"{name}: service starts", svc.endpoint is not None, svc.ready):
            raise RuntimeError("no service")
        bystander = Client(svc.endpoint, ctx)
        prompt_call(name, bystander, "bystander's first call is answered", expect="hostile")
        slow = bystander.request("call", "compute", "sleep", {"ms": bystander_ms})
        yield svc, ctx
        check(f"{name}: the service is still running", svc.alive(), f"exit code {svc.proc.returncode}")
        got = gather([(bystander, slow)], bystander_ms / 1000 + 10)
        check(f"{name}: the bystander's call in flight during the attack is answered",
              slow in got and got[slow][1]["result"] == "hostile", got.get(slow))
        prompt_call(name, Client(svc.endpoint, ctx), "a new client's call afterwards is answered promptly",
                    expect="hostile")
        lines = svc.log_since()
        check(f"{name}: every log line is one escaped zrpc line (nothing forged, no raw control bytes)",
              all(LOG_LINE.match(line) and line.isprintable() for line in lines),
              [Service.printable(line) for line in lines
               if not (LOG_LINE.match(line) and line.isprintable())][:3])
    finally:
        code = svc.stop()
        check(f"{name}: the service stops cleanly on SIGTERM", code == 0, f"exit code {code}")
        ctx.destroy(linger=0)
        if RESULTS["failed"] > failed_before:
            print(f"--- {name}: the service's log (last 30 lines)")
            for line in svc.log_since()[-30:]:
                print("    " + Service.printable(line))


# A zrpc log line (src/base/log.cc): RFC 3339 UTC time, zrpc[pid:thread], level, message.
LOG_LINE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z zrpc\[\d+:\d+\] (DEBUG|INFO|WARNING|ERROR): ")
DROP_LINE = r'zrpc\[\d+:\d+\] WARNING: dropping a (message|"\w+" frame)'
SUMMARY_LINE = r"WARNING: (\d+) more lines? like this suppressed in the last second \(server_engine"


@case
def HeaderWords(name="HeaderWords"):
    """Header words that break the grammar are dropped with one log line each; a request without a
    body is answered; the MSG_ID that aborted the service (not UTF-8) is harmless."""
    with attacked(name) as (svc, ctx):
        a = Client(svc.endpoint, ctx)
        body = envelope({"method": "add", "args": {"a": 1, "b": 2}, "version": "1.3", "_msg_id": "x"})
        dropped = {
            "call, MSG_ID not UTF-8": [b"zrpc1 call openstack compute \xff\xfe\xfd", body],
            "multicall, MSG_ID not UTF-8": [b"zrpc1 multicall openstack compute \xc3\x28", body],
            "call to an unknown target, MSG_ID not UTF-8": [b"zrpc1 call openstack storage \xff", body],
            "MSG_ID of 129 bytes": [b"zrpc1 call openstack compute " + b"a" * 129, body],
            "MSG_ID with a newline and a terminal escape":
                [b"zrpc1 call openstack compute ab\nzrpc\x1b[31mFORGED", body],
            "MSG_ID with a NUL byte": [b"zrpc1 call openstack compute ab\x00cd", body],
            "exchange not UTF-8": [b"zrpc1 call open\xffstack compute abc", body],
            "exchange with a control byte": [b"zrpc1 call open\x07stack compute abc", body],
            "target with a slash": [b"zrpc1 call openstack comp/ute abc", body],
            "target of 256 bytes": [b"zrpc1 call openstack " + b"t" * 256 + b" abc", body],
            "cast to a target with a newline": [b"zrpc1 cast openstack comp\nute -", body],
            "empty exchange (two spaces)": [b"zrpc1 call  compute abc", body],
            "header longer than 1024 bytes": [b"zrpc1 call openstack compute " + b"i" * 1100, body],
            "one frame that is no header": [b"hello"],
            "one empty frame": [b""],
            "three frames": [b"zrpc1 call openstack compute three", body, b"extra"],
            "four frames": [b"zrpc1 call openstack compute four", body, b"x", b"y"],
            "an unknown verb": [b"zrpc1 frob openstack compute abc", body],
            "a reply sent to a service": [b"zrpc1 reply abc", body],
            "another protocol (zrpc2)": [b"zrpc2 call openstack compute abc", body],
            "a call header with a missing word": [b"zrpc1 call openstack compute", body],
        }
        mark = svc.mark()
        for frames in dropped.values():
            a.sock.send_multipart(frames)
        # Answered: a request without a body frame, and one with an empty body.
        header_only, empty_body = uuid.uuid4().hex, uuid.uuid4().hex
        a.sock.send_multipart([f"zrpc1 call openstack compute {header_only}".encode()])
        a.sock.send_multipart([f"zrpc1 call openstack compute {empty_body}".encode(), b""])
        for msg_id, what in ((header_only, "a call without a body frame"), (empty_body, "a call with an empty body")):
            got = gather([(a, msg_id)], PROMPT_S)
            f = failure(got[msg_id][1]) if msg_id in got else None
            check(f"{name}: {what} is answered 'invalid JSON: empty text' (INVALID_ARGUMENT)",
                  f is not None and f["kwargs"].get("code") == 3 and "empty" in f["message"], f)
        # The attacker's own connection still serves it; requests on one connection are handled
        # in order, so every drop above has been logged once this is answered.
        prompt_call(name, a, "the attacker's next normal call is answered", "add", {"a": 40, "b": 2}, 42)
        # One line each up to the log's limit of 20 lines a second per source; the rest are counted
        # in that source's summary line once the second is over (src/base/log_internal.h).
        def logged():
            lines = svc.log_since(mark)
            summed = [re.search(SUMMARY_LINE, line) for line in lines]
            return svc.count_log(DROP_LINE, mark), sum(int(m.group(1)) for m in summed if m)
        deadline = time.time() + 3
        while sum(logged()) < len(dropped) and time.time() < deadline:
            time.sleep(0.01)
        n, summed = logged()
        check(f"{name}: each of the {len(dropped)} bad headers is dropped with one log line, or counted in a summary past 20 a second",
              n + summed == len(dropped) and n >= min(20, len(dropped)),
              f"{n} drop lines, {summed} summed up: {svc.log_since(mark)}")
        check(f"{name}: the drop lines say what is wrong",
              svc.count_log(r"msg_id must be", mark) >= 6 and svc.count_log(r"not allowed", mark) >= 4
              and svc.count_log(r"frames", mark) == 2 and svc.count_log(r"unknown frame kind", mark) == 1,
              svc.log_since(mark))
        check(f"{name}: nothing is echoed back for a dropped header",
              set(a.stash) <= {header_only, empty_body} and a.sock.poll(200) == 0, list(a.stash))


def body_cases():
    """(what, body, predicate on the failure, lead change it needs or None)."""
    base = {"method": "add", "args": {"a": 1, "b": 2}, "version": "1.3"}
    msg = json.dumps(base)
    code3 = lambda *words: (lambda f: f["kwargs"].get("code") == 3 and all(w in f["message"] for w in words))
    return [
        ("malformed JSON", b'{"oslo.version": "2.0", "oslo.message": ', code3("invalid JSON"), None),
        ("trailing JSON after the envelope", envelope(base) + b" {}", code3("invalid JSON"), None),
        ("trailing garbage after the envelope", envelope(base) + b"xyz", code3("invalid JSON"), None),
        ("duplicate keys in the envelope",
         b'{"oslo.version": "2.0", "oslo.version": "2.0", "oslo.message": ' + json.dumps(msg).encode() + b"}",
         code3("duplicate key", "oslo.version"), None),
        ("duplicate keys in the message",
         json.dumps({"oslo.version": "2.0", "oslo.message": '{"method":"add","method":"echo"}'}).encode(),
         code3("duplicate key", "method"), None),
        ("duplicate keys in args",
         json.dumps({"oslo.version": "2.0", "oslo.message": '{"method":"echo","args":{"a":1,"a":2}}'}).encode(),
         code3("duplicate key", '"a"'), None),
        ("duplicate keys in a member zrpc ignores",
         json.dumps({"oslo.version": "2.0", "oslo.message": json.dumps({"method": "whoami"})})[:-1].encode()
         + b', "x": {"k": 1, "k": 2}}', code3("duplicate key"), LEAD_JSON),
        ("nesting deeper than 64 in args", envelope({"method": "echo", "args": {"x": json.loads("[" * 70 + "]" * 70)}}),
         code3("nesting deeper than 64"), None),
        ("nesting 1000 deep in a member zrpc ignores",
         b'{"method": "whoami", "x": ' + b"[" * 1000 + b"]" * 1000 + b"}", code3("nesting deeper than 64"), LEAD_JSON),
        ("nesting 100,000 deep", b'{"method": "whoami", "x": ' + b"[" * 100000 + b"]" * 100000 + b"}",
         code3("nesting deeper than 64"), None),
        ("an unknown envelope version (9.0)", json.dumps({"oslo.version": "9.0", "oslo.message": msg}).encode(),
         lambda f: f["class"] == "UnsupportedRpcEnvelopeVersion" and f["kwargs"].get("version") == "9.0"
         and f["kwargs"].get("code") == 9, None),
        ("oslo.message an object, not a string", json.dumps({"oslo.version": "2.0", "oslo.message": base}).encode(),
         code3("oslo.message", "string"), None),
        ("oslo.message not JSON text", json.dumps({"oslo.version": "2.0", "oslo.message": "not json"}).encode(),
         code3("invalid JSON"), None),
        ("the body a JSON array", b"[1, 2, 3]", code3("object"), None),
        ("invalid UTF-8 in the body", b'{"method": "\xff\xfe"}', code3("UTF-8"), None),
        ("an integer beyond 64 bits", b'{"method": "whoami", "_timeout": 1180591620717411303424}',
         code3("out of range"), None),
        ("a missing method", envelope({"args": {}}), code3("method"), None),
        ("an empty method", envelope({"method": ""}), code3("method"), None),
        ("a method that is not a string", envelope({"method": 5}), code3("method", "string"), None),
        ("args not an object", envelope({"method": "echo", "args": [1]}), code3("args", "object"), None),
        ("a negative _timeout", envelope({"method": "whoami", "_timeout": -5}), code3("_timeout"), None),
        ("an unknown method", envelope({"method": "frob"}),
         lambda f: f["class"] == "NoSuchMethod" and f["kwargs"].get("method") == "frob", None),
        ("a wrong API version", envelope({**base, "version": "2.0"}),
         lambda f: f["class"] == "UnsupportedRpcVersion" and f["kwargs"].get("version") == "2.0", None),
        ("an API version that does not parse", envelope({**base, "version": "x.y"}), code3("version"), None),
    ]


@case
def Bodies(name="Bodies"):
    """Bad request bodies get a clear failure naming what is wrong; huge but legal ones are answered
    in bounded time while another client's calls stay prompt."""
    with attacked(name) as (svc, ctx):
        a, b = Client(svc.endpoint, ctx), Client(svc.endpoint, ctx)
        for what, body, ok, lead in body_cases():
            msg_id = uuid.uuid4().hex
            a.send("call", "compute", body, msg_id)
            got = gather([(a, msg_id)], PROMPT_S)
            f = failure(got[msg_id][1]) if msg_id in got else None
            detail = got[msg_id][1] if f is None and msg_id in got else f
            check(f"{name}: {what} gets a clear failure", f is not None and ok(f),
                  f"{detail}" + (f" [{lead}]" if lead else ""))
        check(f"{name}: a bad body is answered, not logged as a drop", svc.count_log(DROP_LINE) == 0,
              svc.log_since())

        # Huge but under the size limit: answered (a result or a failure) within 5 s each, while
        # another client's normal calls are answered within 2 s.
        keys = {f"k{i}": i for i in range(200000)}
        huge = {
            "200,000 kwargs": envelope({"method": "echo", "args": keys}),
            "200,000 members in the envelope": json.dumps(
                {"oslo.version": "2.0", "oslo.message": json.dumps({"method": "whoami"}), **keys}).encode(),
            "200,000 members in a bare message": json.dumps({"method": "whoami", **keys}).encode(),
            "an array of 1,000,000 elements": b'{"method": "echo", "args": {"x": [' + b"0," * 999999 + b"0]}}",
        }
        for what, body in huge.items():
            assert len(body) < MAX_MESSAGE, (what, len(body))
        sent = []
        for what, body in huge.items():
            msg_id = uuid.uuid4().hex
            a.send("call", "compute", body, msg_id)
            sent.append((what, msg_id, time.time()))
        normal = b.request("call", "compute", "add", {"a": 1, "b": 1})
        start = time.time()
        got_b = gather([(b, normal)], PROMPT_S)
        check(f"{name}: another client's call while {len(huge)} huge requests are decoded is answered within {PROMPT_S:.0f} s",
              normal in got_b and got_b[normal][1]["result"] == 2,
              f"after {time.time() - start:.2f} s: {got_b.get(normal)}")
        got = gather([(a, msg_id) for _, msg_id, _ in sent], 5 * len(huge))
        for what, msg_id, t0 in sent:
            took = got[msg_id][0] - t0 if msg_id in got else None
            check(f"{name}: {what} ({len(huge[what]) >> 10} KiB) is answered within 5 s",
                  took is not None and took < 5, f"took {took} s" + (f" [{LEAD_JSON}]" if took else ""))


@case
def OversizedMessage(name="OversizedMessage"):
    """A message over max_message_size is refused with RESOURCE_EXHAUSTED; one far over it makes
    libzmq drop that connection; others keep being served and memory stays bounded."""
    with attacked(name) as (svc, ctx):
        rss0 = svc.rss_kib()
        a = Client(svc.endpoint, ctx)
        mon = a.sock.get_monitor_socket(zmq.EVENT_DISCONNECTED | zmq.EVENT_HANDSHAKE_SUCCEEDED)
        prompt_call(name, a, "the attacker's first call is answered")
        while mon.poll(100):
            recv_monitor_message(mon)
        msg_id = uuid.uuid4().hex
        a.send("call", "compute", b"x" * (MAX_MESSAGE + 1000), msg_id)
        got = gather([(a, msg_id)], PROMPT_S)
        f = failure(got[msg_id][1]) if msg_id in got else None
        check(f"{name}: a call just over the limit gets RESOURCE_EXHAUSTED naming the limit",
              f is not None and f["kwargs"].get("code") == 8 and str(MAX_MESSAGE) in f["message"], f)
        mark = svc.mark()
        a.sock.send_multipart([b"zrpc1 cast openstack compute -", b"x" * (MAX_MESSAGE + 1000)])
        check(f"{name}: a cast just over the limit is dropped with a log line",
              svc.wait_for_log(r"dropping cast to compute: message of \d+ bytes exceeds", mark) == 1,
              svc.log_since(mark))
        # Far over the limit (beyond libzmq's guard, the limit plus 64 KiB): the connection goes.
        msg_id = uuid.uuid4().hex
        a.send("call", "compute", b"x" * (MAX_MESSAGE + (1 << 20)), msg_id)
        events = []
        deadline = time.time() + 3
        while zmq.EVENT_DISCONNECTED not in events and time.time() < deadline:
            if mon.poll(100):
                events.append(recv_monitor_message(mon)["event"])
        check(f"{name}: a message 1 MiB over the limit makes libzmq drop that connection",
              zmq.EVENT_DISCONNECTED in events, events)
        check(f"{name}: and it is not answered", not gather([(a, msg_id)], 0.3), a.stash.keys())
        for _ in range(4):  # again and again, from fresh connections
            c = Client(svc.endpoint, ctx)
            c.send("call", "compute", b"x" * (MAX_MESSAGE + (1 << 20)), uuid.uuid4().hex)
        # The attacker's DEALER reconnects by itself; its next call is served.
        prompt_call(name, a, "the attacker, reconnected, is served again")
        a.sock.disable_monitor()
        mon.close()
        grown = svc.rss_kib() - rss0
        check(f"{name}: the service's memory stays bounded (grew {grown >> 10} MiB)", grown < RSS_BOUND_KIB,
              f"VmRSS grew {grown} KiB")


def zmtp_connect(endpoint, socket_type):
    """A raw TCP connection that has done the ZMTP 3.0 NULL handshake as `socket_type`."""
    host, port = endpoint[len("tcp://"):].rsplit(":", 1)
    s = socket.create_connection((host.strip("[]"), int(port)), timeout=3)
    s.sendall(b"\xff" + b"\x00" * 8 + b"\x7f" + b"\x03\x00" + b"NULL".ljust(20, b"\x00") + b"\x00" * 32)
    greeting = b""
    while len(greeting) < 64:
        chunk = s.recv(64 - len(greeting))
        if not chunk:
            raise ConnectionError("the peer closed during the ZMTP greeting")
        greeting += chunk
    ready = b"\x05READY" + b"\x0bSocket-Type" + len(socket_type).to_bytes(4, "big") + socket_type
    s.sendall(b"\x04" + bytes([len(ready)]) + ready)
    return s


def zmtp_send(s, frame):
    """Sends one single-frame ZMTP message (long form); False when the peer cut the connection
    while it was being sent."""
    try:
        s.sendall(b"\x02" + len(frame).to_bytes(8, "big") + frame)
        return True
    except (ConnectionError, socket.timeout):
        return False


def zmtp_closed_by_peer(s, timeout_s):
    """Whether the peer closes the connection within `timeout_s` (what it sends is discarded)."""
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        s.settimeout(max(0.01, deadline - time.time()))
        try:
            if not s.recv(65536):
                return True
        except socket.timeout:
            return False
        except ConnectionError:
            return True
    return False


def subscription(i):
    """The i-th subscription of the flood: junk bytes, or a long well-formed TOPIC.PRIORITY."""
    if i % 2:
        return os.urandom(250) + b"\x00"
    return b"t" + os.urandom(120).hex().encode() + b".info"


@case
def SubscriptionFlood(name="SubscriptionFlood"):
    """The notification (XPUB) socket: an 8 MiB subscription frame costs its sender the connection;
    a flood of subscriptions leaves the service's memory bounded; notifications still flow."""
    with attacked(name) as (svc, ctx):
        pub = svc.pub_endpoint()
        # A well-behaved listener, subscribed before the attack.
        listener = ctx.socket(zmq.SUB)
        listener.setsockopt(zmq.LINGER, 0)
        listener.setsockopt(zmq.SUBSCRIBE, b"notifications.info")
        listener.connect(pub)
        rss0 = svc.rss_kib()

        # Raw ZMTP: a libzmq XSUB would keep the 8 MiB subscription itself (and overflow its own
        # stack freeing it); the attacker needs no library.
        raw = zmtp_connect(pub, b"SUB")
        sent_whole = zmtp_send(raw, b"\x01" + b"n" * (8 << 20))
        check(f"{name}: an 8 MiB subscription frame makes the service drop that connection",
              not sent_whole or zmtp_closed_by_peer(raw, 3), "the connection stayed open for 3 s")
        raw.close()
        grown = svc.rss_kib() - rss0
        check(f"{name}: the 8 MiB subscription does not grow the service (grew {grown >> 10} MiB)",
              grown < RSS_BOUND_KIB, f"VmRSS grew {grown} KiB")

        # A flood: 20,000 subscriptions of about 250 bytes from one peer, stopped early once the
        # service has grown past the bound (so that a service without the cap is not pushed far).
        # Measured from here: what the 8 MiB frame left resident (under AddressSanitizer its
        # buffers sit in the quarantine) was checked above and is not the flood's.
        rss0 = svc.rss_kib()
        mark = svc.mark()
        y = ctx.socket(zmq.XSUB)
        y.setsockopt(zmq.LINGER, 0)
        y.setsockopt(zmq.SNDHWM, 0)
        y.connect(pub)
        grown, sent = 0, 0
        for batch in range(20):
            for i in range(1000):
                y.send(b"\x01" + subscription(sent + i))
            sent += 1000
            time.sleep(0.05)
            grown = svc.rss_kib() - rss0
            if grown > RSS_BOUND_KIB:
                break
        settle = time.time() + 0.5  # let the service take what is still queued
        while time.time() < settle and grown <= RSS_BOUND_KIB:
            time.sleep(0.05)
            grown = svc.rss_kib() - rss0
        check(f"{name}: {sent} subscriptions from one peer leave the service's memory bounded "
              f"(grew {grown >> 10} MiB, bound {RSS_BOUND_KIB >> 10} MiB)", grown <= RSS_BOUND_KIB,
              f"VmRSS grew {grown} KiB [{LEAD_XPUB}]")
        check(f"{name}: malformed or excess subscriptions are logged",
              svc.wait_for_log(r"(?i)subscri", mark, timeout_s=1) >= 1, f"no log line [{LEAD_XPUB}]")
        y.close()

        # The listener still gets the service's notifications.
        emitter = Client(svc.endpoint, ctx)
        event = None
        deadline = time.time() + 5
        while event is None and time.time() < deadline:  # re-emit until the listener's turn
            emitter.call("compute", "emit", {"event_type": "hostile.after", "priority": "info", "payload": 1},
                         timeout_s=PROMPT_S)
            if listener.poll(200):
                topic, body = listener.recv_multipart()
                event = (topic, json.loads(json.loads(body)["oslo.message"])["args"]["event_type"])
        check(f"{name}: a listener subscribed before the flood still receives notifications",
              event == (b"notifications.info", "hostile.after"), event)
        listener.close()


def rejections(replies):
    """The msg_ids among `replies` answered RESOURCE_EXHAUSTED."""
    out = set()
    for msg_id, (_, reply) in replies.items():
        f = failure(reply)
        if f and f["kwargs"].get("code") == 8:
            out.add(msg_id)
    return out


@case
def Admission(name="Admission"):
    """One client beyond max_in_flight_per_peer: its extra calls get a retryable RESOURCE_EXHAUSTED
    at once and its extra casts are dropped with a log line, while another client is served fairly.
    Then two clients beyond max_queued_requests together: the excess is refused the same way.
    Without keys a caller is its address, so each client connects from an address of its own
    (127.0.0.x: connections from one address share one caller's limits)."""
    limit, total, sleep_ms = 4, 6, 600
    args = ["--threads", "2", "--max-in-flight-per-peer", str(limit), "--max-queued-requests", str(total)]
    def From(source):  # the service's endpoint, connected to from `source`
        return svc.endpoint.replace("tcp://", f"tcp://{source}:0;", 1)
    with attacked(name, args=args, bystander_ms=50) as (svc, ctx):
        a, b = Client(From("127.0.0.2"), ctx), Client(From("127.0.0.3"), ctx)
        admitted = [a.request("call", "compute", "sleep", {"ms": sleep_ms}) for _ in range(limit)]
        extra = [a.request("call", "compute", "sleep", {"ms": sleep_ms}) for _ in range(8)]
        mark = svc.mark()
        for _ in range(5):  # casts beyond the limit (the limit counts casts too)
            a.send("cast", "compute", {"method": "note", "args": {"kind": "flood"}, "_unique_id": uuid.uuid4().hex})
        quick = b.request("call", "compute", "whoami")
        got = gather([(a, i) for i in admitted + extra] + [(b, quick)], 3 * sleep_ms / 1000 + 5)
        refused = rejections({i: got[i] for i in extra if i in got})
        texts = {failure(got[i][1])["message"] for i in refused}
        check(f"{name}: each call beyond {limit} in flight gets RESOURCE_EXHAUSTED",
              refused == set(extra), f"{len(refused)} of {len(extra)}: {[got.get(i) for i in extra[:2]]}")
        check(f"{name}: its text says why and that it is retryable",
              len(texts) == 1 and all("too many requests" in t and "retry" in t and str(limit) in t for t in texts),
              texts)
        first_run = min((got[i][0] for i in admitted if i in got), default=float("inf"))
        check(f"{name}: the refusals come at once (before any admitted call finishes)",
              all(got[i][0] < first_run for i in refused), "")
        check(f"{name}: the admitted calls all complete",
              all(i in got and got[i][1]["result"] == "hostile" for i in admitted),
              [got.get(i) for i in admitted])
        # Fairness: the attacker runs one sleep at a time (max_workers_per_caller: half of the 2
        # threads) while its other 3 wait. The other
        # client waits for one handler slot, not for the attacker's backlog: it is answered before
        # the attacker's 3rd and 4th calls (first come, first served would answer it after them).
        finishes = sorted(got[i][0] for i in admitted if i in got)
        check(f"{name}: another client's call is answered before the attacker's backlog",
              quick in got and got[quick][1]["result"] == "hostile" and len(finishes) == limit
              and got[quick][0] < finishes[2],
              f"{got.get(quick)}; {[round(t - got[quick][0], 3) for t in finishes] if quick in got else '-'} s "
              "between its answer and the attacker's")
        check(f"{name}: the 5 casts beyond the limit are dropped, each with a log line",
              svc.wait_for_log(r"dropping cast to compute: too many requests", mark, count=5) == 5,
              svc.log_since(mark))
        # Under the limit again: casts run (the dropped ones never did).
        for _ in range(2):
            a.send("cast", "compute", {"method": "note", "args": {"kind": "flood"}, "_unique_id": uuid.uuid4().hex})
        notes = {}
        deadline = time.time() + 3
        while notes.get("flood") != 2 and time.time() < deadline:
            notes = a.call("compute", "stats", timeout_s=PROMPT_S)["result"]["notes"]
            time.sleep(0.02)
        check(f"{name}: admitted casts run and the dropped ones never did", notes.get("flood") == 2, notes)
        health = a.call("compute", "health", timeout_s=PROMPT_S, extra={"namespace": "_zrpc"})["result"]
        check(f"{name}: _zrpc.health counts the 5 dropped casts",
              health.get("load", {}).get("dropped_casts") == 5, health)
        prompt_call(name, a, "the attacker is served again once under its limit")

        # Two clients, each within its own limit, together beyond the service's.
        c1, c2 = Client(From("127.0.0.4"), ctx), Client(From("127.0.0.5"), ctx)
        calls = [(c, c.request("call", "compute", "sleep", {"ms": 300})) for c in (c1, c2) for _ in range(limit)]
        got = gather(calls, 4 * 0.3 + 5)
        refused = rejections(got)
        texts = {failure(got[i][1])["message"] for i in refused}
        check(f"{name}: {len(calls)} requests against max_queued_requests {total}: the excess gets RESOURCE_EXHAUSTED",
              len(got) == len(calls) and len(refused) == len(calls) - total, f"{len(refused)} refused of {len(got)}")
        check(f"{name}: its text says the service is overloaded and to retry",
              len(texts) == 1 and all("overloaded" in t and "retry" in t for t in texts), texts)
        check(f"{name}: the admitted ones complete",
              all(got[i][1]["result"] == "hostile" for _, i in calls if i in got and i not in refused), "")


@case
def ClientGoneWithQueuedCalls(name="ClientGoneWithQueuedCalls"):
    """A client that leaves with a long stream running and calls queued: the service notices at
    its next reply, logs it, stops the stream, skips the queued calls and serves others."""
    env = {"ZRPC_LOG_LEVEL": "debug"}  # "the client is gone" is a debug line
    with attacked(name, args=["--threads", "1"], env=env, bystander_ms=100) as (svc, ctx):
        b = Client(svc.endpoint, ctx)
        prompt_call(name, b, "the other client's first call is answered")
        d = Client(svc.endpoint, ctx)
        stream = d.request("multicall", "compute", "count", {"n": 100000, "delay_ms": 5})  # 500 s
        queued = [d.request("call", "compute", "sleep", {"ms": 3000}) for _ in range(3)]
        first = d.sock.poll(int(PROMPT_S * 1000)) and d.sock.recv_multipart()
        check(f"{name}: the stream is running", bool(first) and stream.encode() in first[0], first)
        mark = svc.mark()
        d.close()  # gone, with the only worker streaming to it and 3 calls queued behind
        prompt_call(name, b, "another client's call is answered (the stream stopped)")
        # One worker: were any of the gone client's 3-second calls started, these would wait for it.
        for i in range(3):
            prompt_call(name, b, f"another client's call #{i + 2} is answered (the gone client's queue skipped)")
        gone = r"dropping a reply: the client is gone"
        check(f"{name}: the service logs that the client is gone",
              svc.wait_for_log(gone, mark) >= 1, svc.log_since(mark)[-5:])
        n = svc.count_log(gone, mark)
        time.sleep(0.3)  # a stream that still ran would add a line every 5 ms
        later = svc.count_log(gone, mark)
        check(f"{name}: the gone client's work stops (no more replies attempted)",
              later == n and later <= 10, f"{n} then {later} lines")


@case
def IdleConnections(name="IdleConnections"):
    """300 idle connections (150 raw TCP that never greet, 150 zrpc clients that called once) do not
    stop a new client from calling. The service starts with a soft fd limit of 256 (hard limit
    unchanged), as one started by a default shell would with 1,100 connections."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    # (With a hard limit this low there is nothing to raise to: the service keeps what it gets.)
    low_soft_limit = None
    if hard == resource.RLIM_INFINITY or hard >= 1024:
        low_soft_limit = lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))
    with attacked(name, preexec_fn=low_soft_limit) as (svc, ctx):
        host, port = svc.endpoint[len("tcp://"):].rsplit(":", 1)
        raws = [socket.create_connection((host.strip("[]"), int(port)), timeout=2) for _ in range(150)]
        idle = [Client(svc.endpoint, ctx) for _ in range(150)]
        ids = [(c, c.request("call", "compute", "whoami")) for c in idle]
        got = gather(ids, 5)
        fds = len(os.listdir(f"/proc/{svc.proc.pid}/fd"))
        check(f"{name}: 150 clients beside 150 silent TCP connections are all answered",
              len(got) == len(ids), f"{len(got)} answered; the service holds {fds} fds [{LEAD_FDS}]")
        prompt_call(name, Client(svc.endpoint, ctx), "a new client's call with 300 idle connections open is answered",
                    note=f"[{LEAD_FDS}]")
        again = idle[0].request("call", "compute", "whoami")
        check(f"{name}: an idle client is still served", gather([(idle[0], again)], PROMPT_S), f"[{LEAD_FDS}]")
        for r in raws:
            r.close()


def main():
    global SERVICE
    SERVICE = sys.argv[1]
    names = sys.argv[2:] or list(CASES)
    unknown = [n for n in names if n not in CASES]
    if unknown:
        print(f"unknown case(s) {unknown}; cases: {', '.join(CASES)}")
        return 2
    for n in names:
        start = time.time()
        print(f"=== {n}", flush=True)
        try:
            CASES[n]()
        except Exception as e:  # a case that breaks is a failure, and the next case still runs
            check(f"{n}: runs to the end", False, f"{type(e).__name__}: {e}")
        print(f"=== {n} took {time.time() - start:.1f} s", flush=True)
    print(f"{RESULTS['passed']} passed, {RESULTS['failed']} failed")
    return 1 if RESULTS["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
