#!/usr/bin/env python3
"""TCP flow churn for the soak test (scripts/soak): flows opened and closed at a fixed rate.

  churn.py server ADDR PORT
      Accept connections; read each until EOF, then close it.
  churn.py client ADDR PORT --rate 100 --duration 600 --log FILE [--long 1]
      Open RATE connections per second for DURATION seconds. Each sends 16 KiB every 50 ms for a random
      lifetime (0.3..2.5 s; one in ten 4..15 s, long enough to become a top flow of the diagnosis
      sampler and be sampled until it closes), then shuts down its sending side, waits for the server's FIN and closes:
      when close() returns the socket is in TIME-WAIT (no longer a flow for the exporter). `--long N` (default 1)
      keeps N bulk flows open for the whole run (steady top flows for the diagnosis sampler).
      Every finished flow is one JSON line in FILE: {"lport", "open", "close"} (wall-clock seconds),
      written after close() returned; still-open flows are written with "close": null at the end.
      A status line {"opened", "closed", "failed", "open"} goes to stdout every 10 s.
Standard library only (asyncio).
"""
import asyncio
import json
import random
import sys
import time

CHUNK = b"x" * 16384


async def serve(addr, port):
    async def handle(reader, writer):
        try:
            while await reader.read(65536):
                pass
        except OSError:
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, addr, port, backlog=4096, reuse_address=True)
    async with server:
        await server.serve_forever()


class Client:
    def __init__(self, addr, port, log):
        self.addr, self.port, self.log = addr, port, log
        self.opened = self.closed = self.failed = 0
        self.live = {}

    def record(self, lport, opened, closed):
        self.log.write(json.dumps({"lport": lport, "open": opened, "close": closed}) + "\n")
        self.log.flush()

    async def flow(self, lifetime, bulk=False):
        t_open = time.time()
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(self.addr, self.port), 5)
        except (OSError, asyncio.TimeoutError):
            self.failed += 1
            return
        lport = writer.get_extra_info("sockname")[1]
        self.opened += 1
        self.live[lport] = t_open
        try:
            end = time.monotonic() + lifetime
            while time.monotonic() < end:
                writer.write(CHUNK * (8 if bulk else 1))
                await writer.drain()
                await asyncio.sleep(0.01 if bulk else 0.05)
            writer.write_eof()
            await asyncio.wait_for(reader.read(), 10)  # the server's FIN
        except (OSError, asyncio.TimeoutError):
            self.failed += 1
        finally:
            writer.close()
            try:
                await writer.wait_closed()
            except OSError:
                pass
            self.live.pop(lport, None)
            self.closed += 1
            self.record(lport, t_open, time.time())

    async def run(self, rate, duration, long_flows):
        tasks = [asyncio.create_task(self.flow(duration + 1, bulk=True)) for _ in range(long_flows)]
        start = time.monotonic()
        n = 0
        next_status = start + 10
        while True:
            now = time.monotonic()
            if now - start >= duration:
                break
            due = int((now - start) * rate) + 1
            while n < due:
                tasks.append(asyncio.create_task(self.flow(random.uniform(4, 15) if random.random() < 0.1 else random.uniform(0.3, 2.5))))
                n += 1
            if now >= next_status:
                print(json.dumps({"opened": self.opened, "closed": self.closed, "failed": self.failed, "open": len(self.live)}), flush=True)
                next_status += 10
            tasks = [t for t in tasks if not t.done()]
            await asyncio.sleep(0.01)
        await asyncio.gather(*tasks, return_exceptions=True)
        for lport, t_open in list(self.live.items()):
            self.record(lport, t_open, None)
        print(json.dumps({"opened": self.opened, "closed": self.closed, "failed": self.failed, "open": len(self.live), "done": True}), flush=True)


def main(argv):
    if len(argv) >= 3 and argv[0] == "server":
        asyncio.run(serve(argv[1], int(argv[2])))
        return 0
    if len(argv) >= 3 and argv[0] == "client":
        opts = {"--rate": "100", "--duration": "600", "--log": "/dev/null", "--long": "1"}
        rest = argv[3:]
        for i in range(0, len(rest) - 1, 2):
            opts[rest[i]] = rest[i + 1]
        with open(opts["--log"], "a") as log:
            c = Client(argv[1], int(argv[2]), log)
            asyncio.run(c.run(float(opts["--rate"]), float(opts["--duration"]), int(opts["--long"])))
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
