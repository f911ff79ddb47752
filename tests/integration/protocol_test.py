#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""A zrpc client in Python, written from docs/PROTOCOL.md alone, against the C++ reference service.

Run by CTest as: /usr/bin/python3 protocol_test.py PATH/TO/zrpc-service [--curve]
With --curve it checks section 10 (CurveZMQ) instead: keys made with pyzmq in zrpc's formats, a
keyed service, the server key read from the registry, authentication and authorization.
The wire helpers it uses (zrpc_wire.py, beside it) are written from the document too.
Needs Debian's python3-zmq. Prints 'N passed, N failed' and exits non-zero on any failure.
"""
import json
import os
import re
import shutil
import sys
import tempfile
import time
import uuid

import zmq

from zrpc_wire import (RESULTS, Client, Service, check, curve_client, failure, write_authorized_keys,
                       write_key_pair)


def curve_main(binary):
    """Section 10: a CURVE client, keys from pyzmq, against a keyed service."""
    keys = tempfile.mkdtemp(prefix="zrpc-py-keys-")
    service = None
    try:
        svc_public, _ = write_key_pair(keys, "svc")
        py_public, py_secret = write_key_pair(keys, "pyclient")
        stranger_public, stranger_secret = write_key_pair(keys, "stranger")  # not authorized
        caller_public, caller_secret = write_key_pair(keys, "caller")  # admitted, no role
        authorized = [("svc", svc_public, ["services"]), ("pyclient", py_public, ["py", "ops"]),
                      ("caller", caller_public, [])]
        roles = [("services", "serve=* publish=*"), ("ops", "listen=notifications")]
        write_authorized_keys(os.path.join(keys, "authorized_keys"), authorized, roles)
        service = Service(binary, ["--host", "pyhost", "--key-file", os.path.join(keys, "svc.key"),
                                   "--authorized-keys", os.path.join(keys, "authorized_keys"),
                                   "--restrict", "note=admin;echo=ops"],
                          capture_stderr=True)
        if not check("keyed service starts and prints READY", service.endpoint is not None, service.ready):
            print("\n".join(service.log_since()[-10:]))
            raise SystemExit(1)
        endpoint = service.endpoint

        # Section 7/7.1: every registration carries the service's public key.
        entries = service.registrations()
        server_keys = {e.get("public_key") for e in entries}
        check("registrations carry the service's public_key", server_keys == {svc_public}, server_keys)
        server_key = entries[0]["public_key"]
        me = (server_key, py_public, py_secret)

        c = Client(endpoint, curve=me)
        r = c.call("compute", "add", {"a": 2, "b": 40})
        check("CURVE call returns its result", r["result"] == 42 and r["failure"] is None, r)
        r = c.call("compute", "caller")
        check("caller is the Python client's identity from authorized_keys", r["result"] == "pyclient", r)
        r = c.call("compute", "ping", extra={"namespace": "_zrpc"})
        check("_zrpc ping answers an authenticated peer", r["result"] and r["result"]["pong"] is True, r)
        r = c.call("compute", "echo", {"x": 1})
        check("a method restricted to a group the caller is in answers", r["result"] == {"x": 1}, r)

        # Authorization: note is restricted to "admin"; the call fails and the handler never runs.
        f = failure(c.call("compute", "note", {"kind": "curvepy"}))
        check("restricted method answers a NotAuthorized failure",
              f and f["class"] == "NotAuthorized" and f["kwargs"].get("identity") == "pyclient"
              and f["kwargs"].get("method") == "note" and f["kwargs"].get("code") == 7, f)
        notes = c.call("compute", "stats")["result"]["notes"]
        check("the refused handler did not run", "curvepy" not in notes, notes)

        # An unknown key: the handshake is refused, nothing is delivered, the service logs the
        # key's fingerprint (its first 12 Z85 characters).
        mark = service.mark()
        stranger = Client(endpoint, curve=(server_key, stranger_public, stranger_secret), monitor=True)
        stranger.request("call", "compute", "whoami")
        failed = stranger.wait_for_event(zmq.EVENT_HANDSHAKE_FAILED_AUTH)
        check("unknown key: handshake fails with ZAP status 400", failed and failed["value"] == 400, failed)
        check("unknown key: nothing arrives within 1 s", stranger.sock.poll(1000) == 0)
        fingerprint = stranger_public[:12]
        n = service.wait_for_log("refused CURVE key " + re.escape(fingerprint), mark)
        check("service logs the refusal with the key's fingerprint", n >= 1, service.log_since(mark)[-5:])
        check("the log line does not hold the whole key",
              service.count_log(re.escape(stranger_public), mark) == 0)
        stranger.close()

        # A plain (NULL) client and a client with the wrong server key get nothing either.
        plain = Client(endpoint)
        plain.request("call", "compute", "whoami")
        check("plain client to a keyed service: nothing arrives within 1 s", plain.sock.poll(1000) == 0)
        plain.close()
        wrong = Client(endpoint, curve=(stranger_public, py_public, py_secret))
        wrong.request("call", "compute", "whoami")
        check("wrong server key: nothing arrives within 1 s", wrong.sock.poll(1000) == 0)
        wrong.close()

        # The authorized client is still served.
        r = c.call("compute", "whoami")
        check("service keeps serving its authorized client", r["result"] == "pyhost", r)

        # Notifications: a CURVE SUB with an authorized key receives events; a stranger's does not.
        pub = [e["pub_endpoint"] for e in entries if e["topic"] == "publisher~notifications"][0]
        subs = {}
        for who, pair in (("pyclient", (py_public, py_secret)), ("stranger", (stranger_public, stranger_secret)),
                          ("caller", (caller_public, caller_secret))):
            sub = c.ctx.socket(zmq.SUB)
            sub.setsockopt(zmq.LINGER, 0)
            curve_client(sub, server_key, *pair)
            sub.setsockopt(zmq.SUBSCRIBE, b"notifications.info")
            sub.connect(pub)
            subs[who] = sub
        time.sleep(0.5)  # PUB/SUB: the subscription must arrive first
        c.call("compute", "emit", {"event_type": "py.curve", "priority": "info", "payload": {"k": 2}})
        event = None
        if subs["pyclient"].poll(3000):
            topic, body = subs["pyclient"].recv_multipart()
            event = json.loads(json.loads(body)["oslo.message"])["args"]["event_type"]
        check("an authorized CURVE listener receives the notification", event == "py.curve", event)
        check("a listener with an unknown key receives nothing", subs["stranger"].poll(500) == 0)
        check("an admitted key without a listen= role receives nothing (ZAP domain zrpc-listen)",
              subs["caller"].poll(500) == 0)
        for sub in subs.values():
            sub.close()
        caller = Client(endpoint, curve=(server_key, caller_public, caller_secret))
        r = caller.call("compute", "caller")
        check("an admitted key without roles may still call", r["result"] == "caller", r)
        caller.close()

        # Revocation: the service re-reads authorized_keys; pyclient's open connection (the same
        # socket) is refused from then on, and nothing runs.
        write_authorized_keys(os.path.join(keys, "authorized_keys"),
                              [a for a in authorized if a[0] != "pyclient"], roles)
        deadline = time.time() + 5
        f = None
        while time.time() < deadline:
            f = failure(c.call("compute", "caller"))
            if f:
                break
            time.sleep(0.1)
        check("a removed key's open connection gets a failure with code 7 (PERMISSION_DENIED)",
              f is not None and f["kwargs"].get("code") == 7 and "no longer" in f["message"], f)
        c.close()
    finally:
        if service:
            service.stop()
        shutil.rmtree(keys, ignore_errors=True)
    print(f"{RESULTS['passed']} passed, {RESULTS['failed']} failed")
    return 1 if RESULTS["failed"] else 0


def main():
    if "--curve" in sys.argv[2:]:
        return curve_main(sys.argv[1])
    service = Service(sys.argv[1], ["--host", "pyhost", "--heartbeat-ms", "200"])
    try:
        check("service starts and prints READY", service.endpoint is not None, service.ready)
        endpoint = service.endpoint
        c = Client(endpoint)

        # Section 7.1: the local:// registry lists the service.
        entries = service.registrations()
        keys = sorted((e["topic"], e["fanout"]) for e in entries)
        check("registry lists topic, topic.host, fanout and the notification publisher",
              keys == [("compute", False), ("compute", True), ("compute.pyhost", False),
                       ("publisher~notifications", False)], keys)
        check("registry endpoint is the ROUTER", all(e["endpoint"] == endpoint for e in entries))

        # Section 4: a call gets exactly one reply with ending.
        r = c.call("compute", "add", {"a": 2, "b": 40})
        check("call returns its result", r["result"] == 42 and r["failure"] is None, r)
        r = c.call("compute.pyhost", "echo", {"x": [1, "two", None], "y": {"z": 1.5}})
        check("direct topic echoes args", r["result"] == {"x": [1, "two", None], "y": {"z": 1.5}}, r)

        # Envelope 1.0 (a bare message object) is accepted too.
        msg_id = uuid.uuid4().hex
        c.send("call", "compute", json.dumps({"method": "whoami", "_msg_id": msg_id}).encode(), msg_id)
        r = list(c.replies(msg_id))[-1]
        check("bare 1.0 message is accepted", r["result"] == "pyhost", r)

        # Multicall: one reply per value, then an ending reply with null result.
        replies = list(c.replies(c.request("multicall", "compute", "count", {"n": 3})))
        check("multicall streams values then ending",
              [x["result"] for x in replies] == [0, 1, 2, None]
              and [x["ending"] for x in replies] == [False, False, False, True], replies)

        # Beats arrive for a slow call (heartbeat 200 ms, handler 700 ms).
        msg_id = c.request("call", "compute", "sleep", {"ms": 700})
        replies = list(c.replies(msg_id))
        check("slow call completes", replies[-1]["result"] == "pyhost", replies)
        check("beats arrive while the call runs", c.beats.get(msg_id, 0) >= 2, c.beats)
        check("beats announce the service's interval", c.beat_intervals == {200}, c.beat_intervals)

        # _timeout reaches the handler.
        r = c.call("compute", "deadline", extra={"_timeout": 3000})
        check("handler sees the caller's deadline", 2000 < r["result"] <= 3000, r)

        # Failures (section 5).
        f = failure(c.call("compute", "nosuch"))
        check("unknown method is NoSuchMethod",
              f and f["class"] == "NoSuchMethod" and f["module"] == "zrpc" and f["kwargs"]["method"] == "nosuch", f)
        f = failure(c.call("compute", "add", {"a": 1, "b": 2}, version="2.0"))
        check("wrong version is UnsupportedRpcVersion",
              f and f["class"] == "UnsupportedRpcVersion" and f["kwargs"]["version"] == "2.0"
              and f["message"] == "Specified RPC version, 2.0, not supported by this endpoint."
              " This service serves namespace \"\" at 1.3."
              and f["kwargs"]["served"] == "1.3", f)
        f = failure(c.call("compute", "fail", {"message": "boom"}))
        check("handler exception keeps its type",
              f and f["class"] == "runtime_error" and f["module"] == "std" and f["message"] == "boom", f)
        f = failure(c.call("compute", "add", {"a": "x", "b": 2}))
        check("bad argument is INVALID_ARGUMENT naming it",
              f and f["kwargs"].get("code") == 3 and '"a"' in f["message"], f)
        f = failure(c.call("storage", "add"))
        check("unknown target is NoConsumer", f and f["class"] == "NoConsumer" and f["kwargs"]["code"] == 5, f)

        msg_id = uuid.uuid4().hex
        c.send("call", "compute", b"{not json", msg_id)
        f = failure(list(c.replies(msg_id))[-1])
        check("malformed JSON gets an INVALID_ARGUMENT failure", f and f["kwargs"].get("code") == 3, f)
        msg_id = uuid.uuid4().hex
        c.send("call", "compute", json.dumps({"oslo.version": "8675309.0", "oslo.message": "{}"}).encode(), msg_id)
        f = failure(list(c.replies(msg_id))[-1])
        check("unknown envelope version is refused",
              f and f["class"] == "UnsupportedRpcEnvelopeVersion" and f["kwargs"]["version"] == "8675309.0", f)

        # Casts and fanout: no reply; their effect shows in stats.
        c.send("cast", "compute", {"method": "note", "args": {"kind": "py"}, "_unique_id": "dup-1"})
        c.send("cast", "compute", {"method": "note", "args": {"kind": "py"}, "_unique_id": "dup-1"})
        c.send("cast", "fanout~compute", {"method": "note", "args": {"kind": "pyfan"}, "_unique_id": uuid.uuid4().hex})
        notes = {}
        for _ in range(100):
            notes = c.call("compute", "stats")["result"]["notes"]
            if notes.get("py") and notes.get("pyfan"):
                break
            time.sleep(0.02)
        check("cast and fanout are handled, the duplicate is dropped",
              notes.get("py") == 1 and notes.get("pyfan") == 1, notes)

        # Cancel stops a multicall: no more values after the ending (or silence).
        msg_id = c.request("multicall", "compute", "count", {"n": 1000, "delay_ms": 20})
        got = []
        for reply in c.replies(msg_id):
            got.append(reply)
            if len(got) == 2:
                c.sock.send_multipart([f"zrpc1 cancel {msg_id}".encode(), b""])
        check("cancel ends a multicall early", len(got) < 50 and got[-1]["ending"], len(got))

        # Notifications (section 9): SUB to the publisher's pub_endpoint, subscribe topic.priority.
        pub = [e["pub_endpoint"] for e in entries if e["topic"] == "publisher~notifications"][0]
        sub = c.ctx.socket(zmq.SUB)
        sub.setsockopt(zmq.LINGER, 0)
        sub.setsockopt(zmq.SUBSCRIBE, b"notifications.info")
        sub.connect(pub)
        time.sleep(0.3)  # PUB/SUB: the subscription must arrive first
        c.call("compute", "emit", {"event_type": "py.event", "priority": "info", "payload": {"k": 1}})
        event = None
        if sub.poll(3000):
            topic, body = sub.recv_multipart()
            event = (topic.decode(), json.loads(json.loads(body)["oslo.message"]))
        ok = (event is not None and event[0] == "notifications.info"
              and event[1]["method"] == "notify" and event[1]["args"]["event_type"] == "py.event"
              and event[1]["args"]["priority"] == "INFO" and event[1]["args"]["payload"] == {"k": 1}
              and event[1]["args"]["publisher_id"] == "compute.pyhost")
        check("notification arrives on the publisher's PUB", ok, event)
        sub.close()

        # A request whose _timeout is 0 is dropped unstarted; the next one is answered.
        dropped = c.request("call", "compute", "whoami", extra={"_timeout": 0})
        r = c.call("compute", "whoami")
        check("expired request is dropped, service keeps serving", r["result"] == "pyhost", r)
        check("no reply to the expired request", c.sock.poll(300) == 0 or
              c.sock.recv_multipart()[0].decode().split(" ")[2] != dropped)
    finally:
        service.stop()
    print(f"{RESULTS['passed']} passed, {RESULTS['failed']} failed")
    return 1 if RESULTS["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
