#!/usr/bin/env python3
"""One TCP flow between two lab nodes with a chosen limit, for tests that need exactly one connection per
service port (iperf3 adds a control connection on the same port).

    lab-flows.py server PORT [RCVBUF]          listen on PORT (SO_RCVBUF = RCVBUF before listen, so the
                                               window is small from the SYN on); read every connection
                                               as fast as possible until EOF
    lab-flows.py client HOST PORT SECONDS [PACING]
                                               connect with CUBIC, cap SO_MAX_PACING_RATE at PACING
                                               bytes/s when given, write for SECONDS, close

Each prints "ready" once it listens / is connected.
"""
import socket
import sys
import threading
import time

SO_MAX_PACING_RATE = 47
TCP_CONGESTION = 13


def reader(conn):
    try:
        while conn.recv(1 << 20):
            pass
    except OSError:
        pass
    conn.close()


def server(port, rcvbuf):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.bind(("0.0.0.0", port))
    s.listen(16)
    print("ready", flush=True)
    while True:
        conn, _ = s.accept()
        threading.Thread(target=reader, args=(conn,), daemon=True).start()


def client(host, port, seconds, pacing):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.IPPROTO_TCP, TCP_CONGESTION, b"cubic")
    if pacing:
        s.setsockopt(socket.SOL_SOCKET, SO_MAX_PACING_RATE, pacing)
    s.connect((host, port))
    print("ready", flush=True)
    chunk = b"\x5a" * 65536
    end = time.monotonic() + seconds
    try:
        while time.monotonic() < end:
            s.send(chunk)
    except OSError:
        pass
    s.close()


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "server":
        server(int(sys.argv[2]), int(sys.argv[3]) if len(sys.argv) > 3 else 0)
    elif mode == "client":
        client(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5]) if len(sys.argv) > 5 else 0)
    else:
        sys.exit("usage: lab-flows.py server PORT [RCVBUF] | client HOST PORT SECONDS [PACING]")
