# SPDX-License-Identifier: Apache-2.0
"""CTest smoke checks of zrpc's benchmarks: each runs briefly and its output is well formed.

    check_bench_output.py codec build/bench/zrpc_codec_benchmark
    check_bench_output.py e2e build/bench/zrpc-e2e-bench

No speed is asserted: the machine may be loaded. Exits 0 when the output is as documented,
1 (saying what is wrong) otherwise. Standard library only (run with /usr/bin/python3).
"""
import json
import math
import os
import signal
import subprocess
import sys
import tempfile

PAYLOADS = (100, 1024, 65536)
CODEC_BENCHMARKS = ("BM_EncodeCall", "BM_DecodeCall", "BM_EncodeReply", "BM_DecodeReply",
                    "BM_ParseJsonOnly")
TIMEOUT_S = 50  # below the CTest timeout (60 s), so that this script reports a hang itself


def fail(why):
    print("FAIL: " + why)
    sys.exit(1)


def run(argv):
    """Runs argv in its own process group (killed whole on a timeout); returns (rc, stdout)."""
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        fail("%s did not finish within %d s" % (" ".join(argv), TIMEOUT_S))
    return proc.returncode, out


def number(record, key, where):
    value = record.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        fail("%s: %r is not a finite number: %r" % (where, key, value))
    if value < 0:
        fail("%s: %r is negative: %r" % (where, key, value))
    return value


def check_codec(binary):
    rc, out = run([binary, "--benchmark_min_time=0.001", "--benchmark_format=json"])
    if rc != 0:
        fail("the codec benchmark exited with %d" % rc)
    try:
        report = json.loads(out)
    except ValueError as e:
        fail("the codec benchmark's output is not JSON: %s" % e)
    seen = {}
    for b in report.get("benchmarks", []):
        if b.get("error_occurred"):
            fail("%s failed: %s" % (b.get("name"), b.get("error_message")))
        seen[b.get("name")] = b
    for name in CODEC_BENCHMARKS:
        for payload in PAYLOADS:
            key = "%s/payload:%d" % (name, payload)
            if key not in seen:
                fail("no result for %s (got %s)" % (key, sorted(seen)))
            b = seen[key]
            if number(b, "bytes_per_second", key) <= 0 or number(b, "iterations", key) <= 0:
                fail("%s: no bytes per second or iterations" % key)
            if number(b, "wire_bytes", key) <= payload:
                fail("%s: wire_bytes %r does not hold the %d-byte payload" %
                     (key, b["wire_bytes"], payload))
    print("codec benchmark: %d results, all well formed" % len(seen))


# (bench, impl, payload) of the lines the quick e2e run must write.
def expected_e2e_lines():
    lines = []
    for payload in (100, 1024):
        lines += [("call_latency", "raw", payload), ("call_latency", "zrpc", payload),
                  ("call_latency_pool", "zrpc", payload), ("pipelined", "raw", payload),
                  ("pipelined", "zrpc", payload), ("pipelined_async", "zrpc", payload)]
    lines += [("cast", "raw", 100), ("cast", "zrpc", 100), ("cast_pushpull", "raw", 100)]
    return lines


LATENCY_BENCHES = {"call_latency", "call_latency_pool", "open_loop", "long_tail"}


def check_e2e(binary):
    with tempfile.TemporaryDirectory(prefix="zrpc-bench-check-") as tmp:
        path = os.path.join(tmp, "figures.jsonl")
        argv = [binary, "--quick", "--no-curve", "--via", "ipc", "--json", path]
        rc, out = run(argv)
        print(out)
        if rc != 0:
            fail("%s exited with %d" % (" ".join(argv), rc))
        for heading in ("| measure", "Open loop", "Long tail"):
            if heading not in out:
                fail("the output lacks its %r table" % heading)
        with open(path) as f:
            text = f.read()
    records = []
    for n, line in enumerate(text.splitlines(), 1):
        try:
            record = json.loads(line)
        except ValueError as e:
            fail("JSON line %d does not parse (%s): %r" % (n, e, line))
        if not isinstance(record, dict):
            fail("JSON line %d is not an object: %r" % (n, line))
        where = "line %d (%s)" % (n, record.get("bench"))
        for key in ("bench", "impl", "transport"):
            if not isinstance(record.get(key), str):
                fail("%s: %r missing or not a string" % (where, key))
        if record["impl"] not in ("zrpc", "raw"):
            fail("%s: impl %r" % (where, record["impl"]))
        if record["transport"] != "ipc":
            fail("%s: transport %r in an ipc-only run" % (where, record["transport"]))
        number(record, "payload", where)
        if number(record, "rounds", where) != 1:
            fail("%s: a --quick run has 1 round, not %r" % (where, record["rounds"]))
        if record["bench"] in LATENCY_BENCHES:
            if number(record, "p50_us", where) > number(record, "p99_us", where):
                fail("%s: p50 above p99" % where)
        else:
            rate_key = "msg_s" if record["bench"].startswith("cast") else "rps"
            if number(record, rate_key, where) <= 0:
                fail("%s: no %s" % (where, rate_key))
        for key in ("cpu_client_us", "cpu_server_us"):
            if key in record:
                number(record, key, where)
        # Sequential, pipelined and cast figures cannot lose calls on loopback; the open loop
        # may, when the machine is too loaded to keep its timetable.
        if record["bench"] != "open_loop" and number(record, "errors", where) != 0:
            fail("%s: %r calls failed" % (where, record["errors"]))
        records.append(record)
    have = {(r["bench"], r["impl"], r["payload"]) for r in records}
    for want in expected_e2e_lines():
        if want not in have:
            fail("no JSON line for %s (have %s)" % (want, sorted(have)))
    loads = {(r["impl"], r.get("max_of"), r.get("load")) for r in records if r["bench"] == "open_loop"}
    for load in (0.25, 0.5, 0.75):
        for impl, of in (("zrpc", "zrpc"), ("raw", "raw"), ("raw", "zrpc")):
            if (impl, of, load) not in loads:
                fail("no open_loop line for %s at %s of %s's maximum" % (impl, load, of))
    variants = {r.get("variant") for r in records if r["bench"] == "long_tail"}
    if variants != {"baseline", "slow"}:
        fail("long_tail lines: variants %s, want baseline and slow" % sorted(variants))
    print("e2e benchmark: %d JSON lines, all well formed" % len(records))


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in ("codec", "e2e"):
        fail("usage: check_bench_output.py codec|e2e BINARY")
    if sys.argv[1] == "codec":
        check_codec(sys.argv[2])
    else:
        check_e2e(sys.argv[2])


if __name__ == "__main__":
    main()
