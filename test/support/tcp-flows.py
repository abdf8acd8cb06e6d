#!/usr/bin/env python3
"""Open loopback TCP flows with chosen properties, for live tests that compare flowpath with ss.

Node has no setsockopt(), so the options flowpath must observe (TCP_CONGESTION, SO_MAX_PACING_RATE,
SO_SNDBUF/SO_RCVBUF) are set here. Every flow is a client->server connection on loopback only; the client
sends. Usage:

    tcp-flows.py '<json list of flow specs>'

Spec keys: name, family ("4", "6" or "mapped": an AF_INET6 listener on ::ffff:127.0.0.1, so the accepted
socket is AF_INET6 with a v4-mapped address), cc ("cubic"/"bbr"/...), reader ("stalled": never reads,
"fast": reads everything, "none": nobody sends), pacing (bytes/s via SO_MAX_PACING_RATE on the sender),
sndbuf, rcvbuf (bytes), port (fixed server port, optional), client_port (fixed client port, optional),
close_after_bytes (sender stops writing after this many bytes).

Prints one JSON line {"pid":..., "flows":[{"name", "client":[ip,port], "server":[ip,port]}]} once every
flow is connected, then runs until stdin closes or it is killed. SIGSTOP/SIGCONT of this process freeze
and resume every sender and reader at once.
"""
import json
import os
import socket
import sys
import threading

SO_MAX_PACING_RATE = 47
TCP_CONGESTION = 13


def sender(sock, limit):
    chunk = b"\x5a" * 65536
    sent = 0
    try:
        while limit is None or sent < limit:
            n = sock.send(chunk if limit is None else chunk[: max(1, min(len(chunk), limit - sent))])
            sent += n
    except OSError:
        pass


def reader(sock):
    try:
        while sock.recv(1 << 20):
            pass
    except OSError:
        pass


def open_flow(spec, keep):
    fam = spec.get("family", "4")
    if fam == "4":
        lfam, laddr, cfam, caddr = socket.AF_INET, "127.0.0.1", socket.AF_INET, "127.0.0.1"
    elif fam == "6":
        lfam, laddr, cfam, caddr = socket.AF_INET6, "::1", socket.AF_INET6, "::1"
    elif fam == "mapped":
        lfam, laddr, cfam, caddr = socket.AF_INET6, "::ffff:127.0.0.1", socket.AF_INET, "127.0.0.1"
    else:
        raise SystemExit("bad family %r" % fam)
    lsock = socket.socket(lfam, socket.SOCK_STREAM)
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if lfam == socket.AF_INET6:
        lsock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    if spec.get("rcvbuf"):
        # Set on the listener so the accepted socket inherits it before the window scale is chosen.
        lsock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, int(spec["rcvbuf"]))
    lsock.bind((laddr, int(spec.get("port", 0))))
    lsock.listen(4)
    port = lsock.getsockname()[1]
    c = socket.socket(cfam, socket.SOCK_STREAM)
    if spec.get("cc"):
        c.setsockopt(socket.IPPROTO_TCP, TCP_CONGESTION, spec["cc"].encode())
    if spec.get("sndbuf"):
        c.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, int(spec["sndbuf"]))
    if spec.get("pacing"):
        c.setsockopt(socket.SOL_SOCKET, SO_MAX_PACING_RATE, int(spec["pacing"]))
    if spec.get("client_port"):
        c.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        c.bind((caddr, int(spec["client_port"])))
    c.connect((caddr, port))
    s, _ = lsock.accept()
    keep.extend([lsock, c, s])
    mode = spec.get("reader", "fast")
    if mode != "none":
        threading.Thread(target=sender, args=(c, spec.get("close_after_bytes")), daemon=True).start()
    if mode == "fast":
        threading.Thread(target=reader, args=(s,), daemon=True).start()
    cl = c.getsockname()
    sv = s.getsockname()
    return {"name": spec["name"], "client": [cl[0], cl[1]], "server": [sv[0], sv[1]]}


def main():
    specs = json.loads(sys.argv[1])
    keep = []
    flows = [open_flow(s, keep) for s in specs]
    sys.stdout.write(json.dumps({"pid": os.getpid(), "flows": flows}) + "\n")
    sys.stdout.flush()
    try:
        while sys.stdin.read(1):
            pass
    except (OSError, KeyboardInterrupt):
        pass
    os._exit(0)


if __name__ == "__main__":
    main()
