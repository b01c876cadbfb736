"""Backups under write load: `tradewind db backup` (a separate process) copies a database
that this process keeps writing to, round after round; every copy is checked.

Usage: .venv/bin/python -m scripts.soak_backup [--rounds N]

Each write commits two rows in one table and one in another, so a copy taken at one point
in time holds exactly twice as many rows in the first, with no batch missing below its last.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

from db.store import Store
from tests.integration.test_backup import BATCH_SQL, PAIRS_SQL, WriteLoad, _inspect

TRADEWIND = str(Path(sys.executable).parent / "tradewind")


async def soak(rounds: int) -> int:
    with tempfile.TemporaryDirectory(prefix="tw-backup-") as tmp:
        return await _soak(Path(tmp), rounds)


async def _soak(workdir: Path, rounds: int) -> int:
    path, copy = workdir / "tradewind.db", workdir / "copy.db"
    env = {**os.environ, "TRADEWIND_DB": str(path), "TRADEWIND_METRICS_ADDR": ""}
    good, during, seconds = 0, [], []
    async with Store(path) as store:
        await store.execute("soak.pairs", PAIRS_SQL)
        await store.execute("soak.batches", BATCH_SQL)
        load = WriteLoad(store)
        writer = asyncio.create_task(load.run())
        for _ in range(rounds):
            await load.reach(load.written + 300)  # the database grows between rounds
            first, start = load.written, time.perf_counter()
            backup = await asyncio.create_subprocess_exec(
                TRADEWIND, "db", "backup", str(copy), env=env,
                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
            )  # fmt: skip
            code = await backup.wait()
            seconds.append(time.perf_counter() - start)
            during.append(load.written - first)
            check, _, pairs, batches, last = _inspect(copy)
            if code == 0 and check == "ok" and pairs == 2 * batches == 2 * last >= 2 * first:
                good += 1
        load.stop()
        await writer
    size = copy.stat().st_size / 1e6
    print(f"{good}/{rounds} copies sound and one point in time; the writer committed "
          f"{min(during)}-{max(during)} batches during a backup; a backup took "
          f"{min(seconds):.2f}-{max(seconds):.2f} s; last copy {size:.1f} MB")  # fmt: skip
    return 0 if good == rounds else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    return asyncio.run(soak(parser.parse_args().rounds))


if __name__ == "__main__":
    raise SystemExit(main())
