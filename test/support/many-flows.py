#!/usr/bin/env python3
"""Many steady TCP flows between two network namespaces, for the fleet-scale tests.

    many-flows.py serve PORT                       accept connections on PORT, read everything
    many-flows.py connect HOST PORT N [--bind-port P] [--bytes B] [--interval S]

`connect` opens N connections (from local port P when given, N must then be 1), prints one JSON line
{"ports": [local ports]} once all are connected, then every S seconds (default 0.2) writes B bytes
(default 2000) on each, so every flow moves about the same small amount: steady flows whose ranking is
noise. It closes connection i when a line "close i" arrives on stdin, and exits when stdin closes or
on SIGTERM. One thread, one selector: a thousand sockets cost little CPU.
"""
import json
import selectors
import socket
import sys
import threading
import time


def serve(port):
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("0.0.0.0", port))
    ls.listen(4096)
    ls.setblocking(False)
    sel = selectors.DefaultSelector()
    sel.register(ls, selectors.EVENT_READ)
    print(json.dumps({"listening": port}), flush=True)
    while True:
        for key, _ in sel.select():
            s = key.fileobj
            if s is ls:
                try:
                    c, _ = ls.accept()
                except BlockingIOError:
                    continue
                c.setblocking(False)
                sel.register(c, selectors.EVENT_READ)
                continue
            try:
                data = s.recv(65536)
            except BlockingIOError:
                continue
            except ConnectionError:
                data = b""
            if data == b"":
                sel.unregister(s)
                s.close()


def connect(host, port, n, bind_port, nbytes, interval):
    socks = []
    for _ in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if bind_port is not None:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("0.0.0.0", bind_port))
        s.connect((host, port))
        s.setblocking(False)
        socks.append(s)
    print(json.dumps({"ports": [s.getsockname()[1] for s in socks]}), flush=True)
    lock = threading.Lock()

    def commands():
        for line in sys.stdin:
            parts = line.split()
            if len(parts) == 2 and parts[0] == "close":
                i = int(parts[1])
                with lock:
                    if socks[i] is not None:
                        socks[i].close()
                        socks[i] = None
                print(json.dumps({"closed": i}), flush=True)
        raise SystemExit(0)

    t = threading.Thread(target=commands, daemon=True)
    t.start()
    chunk = b"\x5a" * nbytes
    while t.is_alive():
        with lock:
            for s in socks:
                if s is None:
                    continue
                try:
                    s.send(chunk)
                except (BlockingIOError, ConnectionError):
                    pass
        time.sleep(interval)


def main(argv):
    if len(argv) >= 2 and argv[0] == "serve":
        serve(int(argv[1]))
    elif len(argv) >= 4 and argv[0] == "connect":
        opts = {"--bind-port": None, "--bytes": "2000", "--interval": "0.2"}
        rest = argv[4:]
        while rest:
            opts[rest[0]] = rest[1]
            rest = rest[2:]
        bind = None if opts["--bind-port"] is None else int(opts["--bind-port"])
        connect(argv[1], int(argv[2]), int(argv[3]), bind, int(opts["--bytes"]), float(opts["--interval"]))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
