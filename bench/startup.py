#!/usr/bin/env python3
"""Start-up time of a server: spawn it, then ask for one request until the
first 200; print the milliseconds from spawn to that answer.

    startup.py --port PORT --path PATH --body JSON [--timeout S] -- CMD ARGS...

Polls a raw loopback socket every 0.5 ms (no client library, no fork per
try), so the figure is the server's, not the poller's. The server is sent
SIGTERM (then SIGKILL) once answered; its stderr goes to --log.
"""
import argparse
import os
import signal
import socket
import subprocess
import sys
import time


def one_request(port, path, body):
    """Status of one POST, or None when the server is not there yet."""
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
    except OSError:
        return None
    try:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        req = (
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            "Connection: close\r\n\r\n"
        ).encode() + body
        s.sendall(req)
        data = b""
        while b"\r\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                return None
            data += chunk
        parts = data.split(b" ", 2)
        return int(parts[1]) if len(parts) > 1 else None
    except OSError:
        return None
    finally:
        s.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--path", required=True)
    ap.add_argument("--body", required=True)
    ap.add_argument("--timeout", type=float, default=30.0)
    ap.add_argument("--log", default=os.devnull)
    ap.add_argument("cmd", nargs=argparse.REMAINDER)
    a = ap.parse_args()
    cmd = a.cmd[1:] if a.cmd and a.cmd[0] == "--" else a.cmd
    body = a.body.encode()
    with open(a.log, "ab") as log:
        t0 = time.monotonic()
        proc = subprocess.Popen(cmd, stdout=log, stderr=log)
        elapsed = None
        last = None
        try:
            while time.monotonic() - t0 < a.timeout:
                if proc.poll() is not None:
                    print(f"server exited with {proc.returncode} before answering", file=sys.stderr)
                    return 1
                last = one_request(a.port, a.path, body)
                if last == 200:
                    elapsed = time.monotonic() - t0
                    break
                time.sleep(0.0005)
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    if elapsed is None:
        print(f"no 200 within {a.timeout}s (last status {last})", file=sys.stderr)
        return 1
    print(f"{elapsed * 1000:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
