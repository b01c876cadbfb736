"""`tradewind run` as a subprocess whose stderr goes to a file, never to an unread pipe: a
bot that logs more than a pipe holds (DEBUG, a slow machine) would block on its next write."""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(slots=True)
class BotProcess:
    process: asyncio.subprocess.Process
    stderr_path: Path
    returncode: int | None = field(default=None)

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")


@asynccontextmanager
async def tradewind_run(env: Mapping[str, str], workdir: Path) -> AsyncIterator[BotProcess]:
    """Start `tradewind run`; on exit stop it with SIGINT (as Ctrl-C) and wait for it."""
    path = workdir / "stderr.log"
    with path.open("wb") as stderr:
        process = await asyncio.create_subprocess_exec(
            str(Path(sys.executable).parent / "tradewind"),
            "run",
            env=dict(env),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=stderr,
        )
    bot = BotProcess(process, path)
    try:
        yield bot
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGINT)
        bot.returncode = await asyncio.wait_for(process.wait(), timeout=30)
