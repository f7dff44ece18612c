"""A fault-injecting TCP proxy: collectors reach the analyst and Redis through it, the suite cuts or slows it.

Runs as its own process (`python -m tests.faults.proxy --listen PORT --target HOST:PORT --control PORT`)
so that the workload's threads never compete with it for the GIL. Modes, set over the control port
with one text line (answer: ``ok <mode>``):

- ``pass``          forward bytes both ways (the default);
- ``delay S``       forward, but hold every chunk S seconds in each direction (a slow, congested link);
- ``cut``           close every open connection and refuse new ones at once (a link that is down, RST);
- ``blackhole``     keep connections open but forward nothing, accept new ones and never answer
                    (a partition: the other side sees timeouts, not errors);
- ``status``        answer the mode and the number of open connections.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import socket

CHUNK = 64 * 1024


class Proxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.mode = "pass"
        self.delay = 0.0
        self.writers: set[asyncio.StreamWriter] = set()
        self.flowing = asyncio.Event()
        self.flowing.set()

    def set_mode(self, line: str) -> str:
        parts = line.split()
        if not parts:
            return "error empty"
        if parts[0] == "status":
            return f"ok {self.mode} {self.delay} {len(self.writers) // 2}"
        if parts[0] not in ("pass", "delay", "cut", "blackhole"):
            return f"error unknown mode {parts[0]}"
        self.mode = parts[0]
        self.delay = float(parts[1]) if parts[0] == "delay" and len(parts) > 1 else 0.0
        if self.mode == "blackhole":
            self.flowing.clear()
        else:
            self.flowing.set()
        if self.mode == "cut":
            for writer in list(self.writers):
                with contextlib.suppress(Exception):
                    sock = writer.get_extra_info("socket")
                    if sock is not None:  # RST rather than FIN: the peer sees the link die
                        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                    writer.close()
            self.writers.clear()
        return f"ok {self.mode}"

    async def pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                data = await reader.read(CHUNK)
                if not data:
                    break
                await self.flowing.wait()
                if self.delay:
                    await asyncio.sleep(self.delay)
                if self.mode == "cut":
                    break
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError, asyncio.CancelledError):
            pass
        finally:
            with contextlib.suppress(Exception):
                writer.close()

    async def handle(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        if self.mode == "cut":
            client_writer.close()
            return
        try:
            server_reader, server_writer = await asyncio.wait_for(asyncio.open_connection(*self.target), 5)
        except (OSError, TimeoutError):
            client_writer.close()
            return
        self.writers.update((client_writer, server_writer))
        try:
            await asyncio.gather(self.pump(client_reader, server_writer), self.pump(server_reader, client_writer))
        finally:
            self.writers.discard(client_writer)
            self.writers.discard(server_writer)

    async def control(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = (await asyncio.wait_for(reader.readline(), 5)).decode().strip()
            writer.write((self.set_mode(line) + "\n").encode())
            await writer.drain()
        finally:
            writer.close()


async def _main(listen: int, target: str, control: int) -> None:
    host, _, port = target.rpartition(":")
    proxy = Proxy(host, int(port))
    data = await asyncio.start_server(proxy.handle, "127.0.0.1", listen, backlog=256)
    ctl = await asyncio.start_server(proxy.control, "127.0.0.1", control)
    async with data, ctl:
        await asyncio.gather(data.serve_forever(), ctl.serve_forever())


def command(control_port: int, line: str, timeout: float = 5.0) -> str:
    """Send one control line to a running proxy; returns its answer."""
    with socket.create_connection(("127.0.0.1", control_port), timeout=timeout) as sock:
        sock.sendall(line.encode() + b"\n")
        sock.settimeout(timeout)
        answer = b""
        while not answer.endswith(b"\n"):
            chunk = sock.recv(1024)
            if not chunk:
                break
            answer += chunk
    return answer.decode().strip()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--listen", type=int, required=True)
    parser.add_argument("--target", required=True, help="host:port")
    parser.add_argument("--control", type=int, required=True)
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_main(args.listen, args.target, args.control))


if __name__ == "__main__":
    main()
