"""Start-up time of `tradewind run` to the first answered update, console and polling.

Usage: .venv/bin/python -m scripts.bench_startup [--runs N]

Console: a fresh process reads '/start' from a pipe; the clock stops when the greeting is
printed. Polling: a fresh process polls a local HTTP Bot API (127.0.0.1) holding one
'/start' update; the clock stops when the greeting's sendMessage arrives. Each run uses a new
database, so migrations and key creation are included.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bot.offline_updates import make_message_update
from scripts._results import Row, add_json_argument, emit
from tests.botapi_server import BotApiServer

TRADEWIND = str(Path(sys.executable).parent / "tradewind")
TOKEN = "123456789:BENCH-token-for-the-local-bot-api-server"


def _env(db_dir: str) -> dict[str, str]:
    env = {**os.environ, "TRADEWIND_DB": f"{db_dir}/tradewind.db", "TRADEWIND_METRICS_ADDR": ""}
    env.pop("TELEGRAM_BOT_TOKEN", None)
    env.pop("TRADEWIND_MASTER_KEY", None)
    return env


async def console_run() -> float:
    with tempfile.TemporaryDirectory() as db_dir:
        started = time.perf_counter()
        process = await asyncio.create_subprocess_exec(
            TRADEWIND, "run", env=_env(db_dir),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        assert process.stdin is not None and process.stdout is not None
        process.stdin.write(b"/start\n")
        await process.stdin.drain()
        while b"Welcome to Tradewind" not in await process.stdout.readline():
            pass
        elapsed = time.perf_counter() - started
        process.stdin.close()
        await process.wait()
        return elapsed


async def polling_run() -> float:
    with tempfile.TemporaryDirectory() as db_dir:
        async with BotApiServer() as server:
            env = {**_env(db_dir), "TELEGRAM_BOT_TOKEN": TOKEN}
            env["TELEGRAM_API_BASE_URL"] = server.base_url
            server.push_update(make_message_update(1, 42, "/start"))
            started = time.perf_counter()
            process = await asyncio.create_subprocess_exec(
                TRADEWIND, "run", env=env,
                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
            )  # fmt: skip
            await server.wait_for_call("sendMessage", timeout=30)
            elapsed = time.perf_counter() - started
            process.terminate()
            await process.wait()
            return elapsed


async def main(runs: int) -> list[Row]:
    rows = []
    for name, run in (
        ("console (piped /start)", console_run),
        ("polling (local Bot API)", polling_run),
    ):
        samples = [await run() for _ in range(runs)]
        rows.append((name, statistics.median(samples), min(samples), max(samples)))
    print(f"Start-up to the first answered update, {runs} runs each, fresh database per run:")
    print("| mode | median (ms) | min (ms) | max (ms) |")
    print("|---|---:|---:|---:|")
    for name, median, low, high in rows:
        print(f"| {name} | {median * 1000:.0f} | {low * 1000:.0f} | {high * 1000:.0f} |")
    # Each run waited for the greeting (console) or the sendMessage (polling): it answered.
    return [
        Row(f"start-up to the first answered update, {name}", "fresh database",
            median * 1000, "ms", f"{runs} runs answered /start", True)
        for name, median, _, _ in rows
    ]  # fmt: skip


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    add_json_argument(parser)
    args = parser.parse_args()
    emit(args.json, asyncio.run(main(args.runs)))
