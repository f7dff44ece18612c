"""A test relay for the mail gateway's replies: an SMTP server that keeps each mail it gets as a file.

    python -m localcluster.mail_relay --port 2526 --dir OUTBOX

Each mail becomes ``OUTBOX/<n>.eml`` (written whole, then renamed), so the demo's user and the tests
read what the gateway sent. It delivers nothing further: it stands in for a site's relay.
"""

from __future__ import annotations

import argparse
import itertools
import os
import signal
import threading
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller


class Outbox:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.numbers = itertools.count(len(list(folder.glob("*.eml"))) + 1)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        number = next(self.numbers)
        tmp = self.folder / f".{number}.tmp"
        tmp.write_bytes(envelope.original_content or envelope.content)
        os.replace(tmp, self.folder / f"{number:05d}.eml")
        return "250 OK"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--dir", type=Path, required=True)
    args = parser.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    controller = Controller(Outbox(args.dir), hostname="127.0.0.1", port=args.port)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    controller.start()
    stop.wait()
    controller.stop()


if __name__ == "__main__":
    main()
