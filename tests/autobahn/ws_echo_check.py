#!/usr/bin/env python3
"""Checks a WebSocket echo endpoint with the Python `websockets` client.

    ws_echo_check.py URL [--max-size BYTES] [--timeout SECONDS]

Opens one connection to URL, sends text and binary messages of sizes 0, 1, 125, 126, 127,
65535, 65536, 65537 and powers of two up to --max-size (default 1 MiB), each followed by
reading one message, and checks that every echo equals what was sent, in type and content.
Text messages include multi-byte UTF-8 characters. Prints one line per message and a summary;
exits 0 when everything matched, 1 on a mismatch, 2 on a connection or protocol error.

`websockets` is found on sys.path, or in $NETSTACK_PYWS_DIR (default
/opt/netstack-autobahn/py3, where .ci/run installs the pinned version).
"""

import argparse
import os
import random
import sys
import time

sys.path.insert(0, os.environ.get("NETSTACK_PYWS_DIR", "/opt/netstack-autobahn/py3"))

from websockets.sync.client import connect  # noqa: E402


def sizes(max_size):
    out = {0, 1, 125, 126, 127, 65535, 65536, 65537}
    p = 2
    while p <= max_size:
        out.add(p)
        p *= 2
    return sorted(s for s in out if s <= max_size)


def text_of(size, rng):
    # Mixes 1-, 2-, 3- and 4-byte UTF-8 characters, trimmed to exactly `size` bytes.
    alphabet = ["a", "z", "é", "ß", "€", "✓", "𝄞"]
    parts, n = [], 0
    while n < size:
        ch = rng.choice(alphabet)
        w = len(ch.encode("utf-8"))
        if n + w > size:
            ch, w = "x", 1
        parts.append(ch)
        n += w
    return "".join(parts)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("url")
    ap.add_argument("--max-size", type=int, default=1 << 20)
    ap.add_argument("--timeout", type=float, default=20.0)
    args = ap.parse_args()
    rng = random.Random(8)
    started = time.monotonic()
    mismatches = 0
    sent = 0
    try:
        with connect(
            args.url,
            max_size=args.max_size + 1024,
            open_timeout=args.timeout,
            close_timeout=args.timeout,
            compression=None,
        ) as ws:
            for size in sizes(args.max_size):
                for kind in ("text", "binary"):
                    if kind == "text":
                        msg = text_of(size, rng)
                    else:
                        msg = rng.randbytes(size)
                    ws.send(msg)
                    echo = ws.recv(timeout=args.timeout)
                    sent += 1
                    ok = type(echo) is type(msg) and echo == msg
                    print(f"{kind} {size} bytes: {'ok' if ok else 'MISMATCH'}")
                    if not ok:
                        mismatches += 1
    except Exception as e:  # connection refused, handshake or protocol error, timeout
        print(f"ERROR: {type(e).__name__}: {e}")
        return 2
    took = time.monotonic() - started
    print(f"summary: {sent} messages, {mismatches} mismatches, {took:.2f} s")
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
