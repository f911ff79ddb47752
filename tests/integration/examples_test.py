# SPDX-License-Identifier: Apache-2.0
"""examples/ end to end: the example service serves the example client, and stops cleanly.

    examples_test.py SERVICE CLIENT

Starts SERVICE with a private local:// registry (ZRPC_MATCHMAKER=local:///tmp/zex-.../reg), runs
CLIENT against it and checks its output, checks a client of a topic nobody serves fails with
exit code 4 and a clear message, then sends SIGTERM twice to the service and checks that it exits 0
and that its registrations are gone. Every wait is bounded; it stops only the service it started.
"""
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time

TOPIC = "extest"
HOST = "exhost"
DEADLINE_S = 20


def fail(message):
    print(f"FAIL: {message}", file=sys.stderr)
    sys.exit(1)


def read_line(proc, deadline):
    """One line of proc's stdout, or None at EOF or the deadline."""
    line = b""
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            break
        c = os.read(proc.stdout.fileno(), 1)
        if not c:
            return None
        if c == b"\n":
            return line.decode(errors="replace")
        line += c
    return None


def registrations(registry, pid):
    """The registry files of process `pid` (local:// names them <pid>-<n>.json)."""
    if not os.path.isdir(registry):
        return []
    return [f for f in os.listdir(registry) if f.startswith(f"{pid}-") and f.endswith(".json")]


def main():
    if len(sys.argv) != 3:
        fail("usage: examples_test.py SERVICE CLIENT")
    service_bin, client_bin = sys.argv[1], sys.argv[2]
    runtime = tempfile.mkdtemp(prefix="zex-")  # short: ipc paths are limited to 107 bytes
    os.chmod(runtime, 0o700)
    registry = os.path.join(runtime, "reg")
    env = dict(os.environ, XDG_RUNTIME_DIR=runtime, ZRPC_MATCHMAKER=f"local://{registry}")
    service = subprocess.Popen([service_bin, TOPIC, HOST], stdout=subprocess.PIPE, env=env)
    try:
        deadline = time.monotonic() + DEADLINE_S
        ready = read_line(service, deadline)
        if ready is None or not ready.startswith(f"ready {TOPIC} {HOST} tcp://127.0.0.1:"):
            fail(f"the service did not print 'ready {TOPIC} {HOST} tcp://...' (got {ready!r})")
        regs = registrations(registry, service.pid)
        if not regs:
            fail(f"no registration of pid {service.pid} in {registry} while the service runs")

        client = subprocess.run([client_bin, TOPIC, "tester"], env=env, capture_output=True,
                                text=True, timeout=DEADLINE_S)
        expected = [
            f'hello: "hello tester, from {HOST}"',
            "add: 42",
            "count: 0 1 2",
            "cast and fanout: sent",
        ]
        if client.returncode != 0 or client.stdout.splitlines() != expected:
            fail(f"client: exit {client.returncode}, stdout {client.stdout!r} (expected "
                 f"{expected!r}), stderr {client.stderr!r}")

        nobody = subprocess.run([client_bin, "nobody"], env=env, capture_output=True, text=True,
                                timeout=DEADLINE_S)
        if (nobody.returncode != 4 or nobody.stdout
                or 'No consumer registered for topic "nobody"' not in nobody.stderr
                or f"(matchmaker local://{registry} holds " not in nobody.stderr
                or "is examples/service running" not in nobody.stderr):
            fail(f"client of an unserved topic: exit {nobody.returncode} (expected 4), stdout "
                 f"{nobody.stdout!r}, stderr {nobody.stderr!r}")

        usage = subprocess.run([client_bin, "--help"], env=env, capture_output=True, text=True,
                               timeout=DEADLINE_S)
        if usage.returncode != 2 or "usage:" not in usage.stderr:
            fail(f"client --help: exit {usage.returncode} (expected 2), stderr {usage.stderr!r}")

        # A second SIGTERM (while the first is handled, or during Close) must not kill it.
        service.send_signal(signal.SIGTERM)
        service.send_signal(signal.SIGTERM)
        try:
            code = service.wait(timeout=DEADLINE_S)
        except subprocess.TimeoutExpired:
            fail(f"the service did not exit within {DEADLINE_S} s of SIGTERM")
        if code != 0:
            fail(f"the service exited with {code} after SIGTERM (expected 0)")
        left = registrations(registry, service.pid)
        if left:
            fail(f"registrations left behind in {registry} after a clean stop: {left}")
        print(f"ok: client output as expected; service exit 0; {len(regs)} registration file(s) "
              "removed")
    finally:
        if service.poll() is None:
            service.kill()
            service.wait()
        shutil.rmtree(runtime, ignore_errors=True)


if __name__ == "__main__":
    main()
