#!/usr/bin/env python3
"""The like journal's loss window under kill -9, and the POST like latency, measured on one gateway.

Usage: loadtest/journal-window.py [--delay-us N] [--seconds S] [--workers W] [--bin PATH]

Starts the gateway binary (embedded mode: SQLite, no Redis) on a free loopback port with a fresh data
dir, the like sync slowed to 1 h so that acknowledged likes live only in the buffer and the journal.
With --delay-us N the gateway runs under `strace -f -e inject=fdatasync:delay_enter=N -e inject=fsync:delay_enter=N`
(every fdatasync/fsync of the process takes N µs longer: a slow disk). W client threads POST likes
(distinct pairs) for S seconds and keep a ledger of every 200; then the gateway is killed with SIGKILL,
started again on the same data dir (no strace), which replays the journal into SQLite, and the ledger is
compared with the `character_likes` table.

Prints one line: acknowledged, lost, p50/p99 of the POST like latency (ms), requests per second.
Exit 0 when nothing acknowledged was lost, 1 otherwise, 2 when it could not run. Every process it
starts is stopped by PID; every wait has a deadline.
"""
import argparse
import http.client
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def start(binary, data_dir, port, log_name, delay_us):
    env = dict(os.environ)
    for k in ("MAPLE_REDIS_URL", "MAPLE_DATABASE_URL", "NEXON_API_KEY", "MAPLE_REDIS_SENTINELS"):
        env.pop(k, None)
    env.update(
        MAPLE_LISTEN=f"127.0.0.1:{port}",
        MAPLE_DATA_DIR=data_dir,
        MAPLE_INSTANCE_ID="jw",
        MAPLE_LIKE_SYNC_MS="3600000",
        MAPLE_MAX_CONCURRENCY="4096",
        MAPLE_CLIENT_RPS="0",
    )
    cmd = [binary]
    if delay_us:
        cmd = [
            "strace", "-f", "-qq", "-o", "/dev/null",
            "-e", "trace=fdatasync,fsync",
            "-e", f"inject=fdatasync:delay_enter={delay_us}",
            "-e", f"inject=fsync:delay_enter={delay_us}",
        ] + cmd
    log = open(os.path.join(data_dir, log_name), "w")
    return subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)


def wait_ready(port, proc, deadline_s=60):
    end = time.time() + deadline_s
    while time.time() < end:
        if proc.poll() is not None:
            return False
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            c.request("GET", "/health/ready")
            if c.getresponse().status == 200:
                return True
        except OSError:
            pass
        time.sleep(0.2)
    return False


def gateway_pid(proc, delay_us):
    """The gateway's PID (under strace, its child)."""
    if not delay_us:
        return proc.pid
    end = time.time() + 10
    while time.time() < end:
        try:
            out = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout.split()
            if out:
                return int(out[0])
        except OSError:
            pass
        time.sleep(0.05)
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--delay-us", type=int, default=0)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--workers", type=int, default=32)
    ap.add_argument("--bin", default="target/debug/maple-gateway")
    a = ap.parse_args()
    if not os.path.exists(a.bin):
        print(f"cannot run: {a.bin} not built", file=sys.stderr)
        return 2
    data_dir = tempfile.mkdtemp(prefix="journal-window.")
    port = free_port()
    gw = start(a.bin, data_dir, port, "first.log", a.delay_us)
    try:
        if not wait_ready(port, gw):
            print(f"cannot run: gateway did not get ready (log in {data_dir})", file=sys.stderr)
            return 2
        pid = gateway_pid(gw, a.delay_us)
        ledger, lat, lock = [], [], threading.Lock()
        stop_at = time.time() + a.seconds

        def worker(w):
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            i = 0
            while time.time() < stop_at:
                ch, liker = f"Char{(w * 7 + i) % 50}", f"w{w}-{i}"
                i += 1
                t0 = time.perf_counter()
                try:
                    c.request("POST", f"/api/v2/characters/{ch}/like", headers={"x-liker-id": liker})
                    r = c.getresponse()
                    r.read()
                except OSError:
                    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                    continue
                dt = (time.perf_counter() - t0) * 1000
                if r.status == 200:
                    with lock:
                        ledger.append((ch.lower(), liker))
                        lat.append(dt)

        threads = [threading.Thread(target=worker, args=(w,), daemon=True) for w in range(a.workers)]
        for t in threads:
            t.start()
        time.sleep(a.seconds)
        # Kill while the load still runs: the acknowledged set is frozen at the kill.
        os.kill(pid, signal.SIGKILL)
        with lock:
            acknowledged = set(ledger)
            latencies = sorted(lat)
        gw.wait(timeout=10)
        for t in threads:
            t.join(timeout=35)
        with lock:
            # Answers that raced the kill (sent before it, read after) are acknowledged too.
            acknowledged |= set(ledger)
        gw = start(a.bin, data_dir, port, "second.log", 0)
        if not wait_ready(port, gw):
            print(f"cannot run: restarted gateway did not get ready (log in {data_dir})", file=sys.stderr)
            return 2
        db = sqlite3.connect(os.path.join(data_dir, "maple.db"))
        stored = set(db.execute("SELECT character_name, liker FROM character_likes"))
        lost = acknowledged - stored
        n = len(latencies)
        p = lambda q: latencies[min(n - 1, int(q * n))] if n else float("nan")
        print(
            f"delay_us={a.delay_us} workers={a.workers} seconds={a.seconds}: acknowledged={len(acknowledged)} "
            f"lost={len(lost)} stored={len(stored)} post_like_ms p50={p(0.5):.1f} p99={p(0.99):.1f} "
            f"max={latencies[-1] if n else float('nan'):.1f} rps={n / a.seconds:.0f}"
        )
        return 0 if not lost else 1
    finally:
        if gw.poll() is None:
            gw.send_signal(signal.SIGKILL)
            gw.wait(timeout=10)


if __name__ == "__main__":
    sys.exit(main())
