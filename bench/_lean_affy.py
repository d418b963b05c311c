"""A lean stand-in for AFFY, for throughput benchmarks: answers every tracking call with
a 201 after ``latency`` seconds, and does nothing else.

The sandbox checks, stores and lists every event (SQLite, one Python thread per
connection): at a few hundred events a second on two cores it competes for the CPU with
the relays it is measuring. This server keeps only what a throughput figure needs (the
number of distinct ``Idempotency-Key`` values accepted), on one asyncio loop, and speaks
the sandbox's admin routes the benchmarks use (``/_sandbox/stats``, ``reset``,
``faults`` with ``latency``), so it drops in for it::

    python bench/_lean_affy.py --port 0      # prints "listening on http://127.0.0.1:PORT"
"""

from __future__ import annotations

import argparse
import asyncio
import json

ANSWER = b'{"success":true,"leadId":1,"clickId":1}'


class LeanAffy:
    def __init__(self) -> None:
        self.keys: set[bytes] = set()
        self.latency = 0.0

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                line, *fields = head.decode("latin-1").split("\r\n")
                method, path, _ = line.split(" ", 2)
                headers = {}
                for field in fields:
                    if ":" in field:
                        name, value = field.split(":", 1)
                        headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                status, answer = await self.answer(method, path, headers, body)
                writer.write(
                    b"HTTP/1.1 %d X\r\nContent-Type: application/json\r\n"
                    b"Content-Length: %d\r\n\r\n%s" % (status, len(answer), answer)
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, ValueError):
            pass
        finally:
            writer.close()

    async def answer(
        self, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, bytes]:
        if path == "/_sandbox/stats":
            return 200, json.dumps({"events": len(self.keys)}).encode()
        if path == "/_sandbox/reset":
            self.keys.clear()
            return 200, b"{}"
        if path == "/_sandbox/faults":
            self.latency = float(json.loads(body or b"{}").get("latency", 0.0))
            return 200, b"{}"
        if self.latency:
            await asyncio.sleep(self.latency)
        self.keys.add(headers.get("idempotency-key", "").encode())
        return 201, ANSWER


async def main(port: int) -> None:
    affy = LeanAffy()
    server = await asyncio.start_server(affy.serve, "127.0.0.1", port)
    bound = server.sockets[0].getsockname()[1]
    print(f"listening on http://127.0.0.1:{bound}/", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=0)
    asyncio.run(main(parser.parse_args().port))
