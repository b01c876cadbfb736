"""Exchange benchmarks: pooled clients vs naive ones, and Bybit bulk tickers.

    .venv/bin/python -m scripts.bench_exchange --write-docs  # full run, updates PERFORMANCE.md
    .venv/bin/python -m scripts.bench_exchange --quick       # smaller counts, docs untouched

Against the local Bybit v5 server (`tests.exchange_server`, 127.0.0.1 only) in this parent
process; every measurement runs in a child process (`--child …`, one JSON line on stdout)
so one approach never pollutes another. Nothing asserts on time: tables compare one run.

1. Memory of 1,000 pooled clients (core's `CcxtVenue.client()` via `ClientPool`) vs naive
   stand-alone ccxt clients that each load markets and own a session.
2. First request of a new client, pooled and naive, against a warm one.
3. Core's `CcxtClient.fetch_tickers()` (Bybit: raw endpoint + `core.exchange.lean_tickers`)
   vs ccxt's generic path (`api.fetch_tickers()` + `ccxt_parse.ticker`), same tickers.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import ccxt
import ccxt.async_support as ccxt_async

from core.exchange import ccxt_parse as parse
from core.exchange.ccxt_venue import CcxtVenue
from core.exchange.credentials import ApiCredentials
from core.exchange.pool import ClientPool, PooledClient, PoolKey
from core.exchange.venues import VENUES
from scripts import _bench as bench
from scripts._bench_tickers import child_tickers, core_venue, part_tickers
from scripts._results import Row, add_json_argument, emit
from tests.exchange_server import FULL_SYMBOL_COUNT, ExchangeServer
from tests.exchange_server import make_ccxt_bybit as plain_bybit

HEADING = "## Exchanges (issue: client pool and bulk tickers)"
SEED = 7
LATENCY_TARGET_MS = 2.0
MEMORY_TARGET = 0.25  # pooled growth ≤ 25 % of naive
TARGET_CLIENTS = 1000  # the memory comparison is stated for this many users
POOLED = "pooled: core `CcxtVenue.client()` via `ClientPool`"
NAIVE = "naive: own ccxt.bybit + `load_markets()` + session"


@dataclass(frozen=True, slots=True)
class Sizes:
    pool_clients: int
    naive_clients: int
    latency_users: int
    naive_latency_users: int
    ticker_runs: int

    @property
    def accounts(self) -> int:
        return max(self.pool_clients, self.naive_clients, self.latency_users + 1) + 1


FULL = Sizes(1000, 200, 200, 50, 10)
QUICK = Sizes(200, 40, 50, 10, 3)


def credentials(user: int) -> ApiCredentials:
    return ApiCredentials(f"bench-key-{user}", f"bench-secret-{user}")


def balance_of(user: int) -> Decimal:
    """Each account has its own balance, so a client signing with the wrong key shows."""
    return Decimal(1000 + user)


def chunks(items: Sequence[int], size: int) -> Iterator[Sequence[int]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def pool_factory(venue: CcxtVenue) -> Callable[[PoolKey], Awaitable[PooledClient]]:
    async def factory(key: PoolKey) -> PooledClient:
        return await venue.client(key[2], credentials(key[0]))

    return factory


async def lease_balance(pool: ClientPool, user: int) -> bool:
    async with pool.lease(user, "bybit", "live") as client:
        return (await client.fetch_balance()).equity == balance_of(user)


def naive_client(base_url: str, user: int) -> Any:
    """What a bot without a venue does: default ccxt.bybit with its own session."""
    creds = credentials(user)
    return plain_bybit(base_url, creds.api_key, creds.secret)


async def naive_balance(api: Any, user: int) -> bool:
    await api.load_markets()
    return parse.balance(await api.fetch_balance()).equity == balance_of(user)


# ---- children ------------------------------------------------------------------------------


async def _warm_up_ccxt() -> None:
    """Construct (and close) one instance so one-off class-level work is in the baseline."""
    api = ccxt_async.bybit({"options": dict(VENUES["bybit"].options)})
    api.timeout_on_exit = 0
    await api.close()


async def child_memory(base_url: str, count: int, naive: bool) -> dict[str, Any]:
    await _warm_up_ccxt()
    baseline = bench.rss_mb()
    started = time.perf_counter()
    venue = core_venue(base_url)
    pool = ClientPool(pool_factory(venue), max_size=2000)
    clients: list[Any] = []  # naive ones
    ok = 0
    try:
        if naive:
            with_venue = baseline  # nothing is shared
            for batch in chunks(range(1, count + 1), 8):
                made = [naive_client(base_url, u) for u in batch]
                clients.extend(made)
                pairs = zip(made, batch, strict=True)
                ok += sum(await asyncio.gather(*(naive_balance(a, u) for a, u in pairs)))
        else:
            await venue.public()
            with_venue = bench.rss_mb()
            for batch in chunks(range(1, count + 1), 25):
                ok += sum(await asyncio.gather(*(lease_balance(pool, u) for u in batch)))
        build_s = time.perf_counter() - started
        after = bench.rss_mb()
        built = len(clients) if naive else pool.stats().size
    finally:
        for api in clients:
            await api.close()
        await pool.aclose()
        await venue.aclose()
    return {
        "clients": built,
        "verified": ok,
        "venue_mb": with_venue - baseline,
        "growth_mb": after - baseline,
        "per_client_kb": (after - with_venue) * 1024 / count,
        "build_s": build_s,
    }


def _spread(samples: Sequence[float]) -> dict[str, float]:
    p50, p95 = bench.percentile(samples, 50), bench.percentile(samples, 95)
    return {"p50": p50, "p95": p95, "n": len(samples)}


class Paired:
    """A new client's first request, each followed at once by the same on a warm client."""

    def __init__(self) -> None:
        self.new: list[float] = []
        self.warm: list[float] = []
        self.ok = 0

    async def sample(self, new: Awaitable[bool], warm: Callable[[], Awaitable[bool]]) -> None:
        start = time.perf_counter()
        self.ok += await new
        mid = time.perf_counter()
        self.ok += await warm()
        self.new.append(mid - start)
        self.warm.append(time.perf_counter() - mid)

    def result(self) -> dict[str, Any]:
        diff = [n - w for n, w in zip(self.new, self.warm, strict=True)]
        spreads = {"new": _spread(self.new), "warm": _spread(self.warm), "diff": _spread(diff)}
        return {**spreads, "verified": self.ok, "requests": 2 * len(self.new)}


async def _core_latency(base_url: str, users: int) -> dict[str, Any]:
    venue = core_venue(base_url)
    paired = Paired()
    try:
        async with ClientPool(pool_factory(venue), max_size=2000) as pool:
            for _ in range(10):
                await lease_balance(pool, 1)
            for user in range(2, users + 2):
                await paired.sample(lease_balance(pool, user), lambda: lease_balance(pool, 1))
    finally:
        await venue.aclose()
    return paired.result()


async def _naive_latency(base_url: str, users: int) -> dict[str, Any]:
    warm = naive_client(base_url, 1)
    paired = Paired()
    made: list[Any] = []

    async def first_request(user: int) -> bool:  # construction included, closing not
        made.append(api := naive_client(base_url, user))
        return await naive_balance(api, user)

    try:
        for _ in range(10):
            await naive_balance(warm, 1)
        for user in range(2, users + 2):
            await paired.sample(first_request(user), lambda: naive_balance(warm, 1))
            await made.pop().close()
    finally:
        for api in (warm, *made):
            await api.close()
    return paired.result()


async def child_latency(base_url: str, users: int, naive_users: int) -> dict[str, Any]:
    await _warm_up_ccxt()
    core = await _core_latency(base_url, users)
    return {"core": core, "naive": await _naive_latency(base_url, naive_users)}


# ---- parent: servers, children, tables -----------------------------------------------------


async def run_child(*argv: str) -> dict[str, Any]:
    command = (sys.executable, "-m", "scripts.bench_exchange", "--child", *argv)
    pipe = asyncio.subprocess.PIPE
    process = await asyncio.create_subprocess_exec(
        *command, cwd=bench.REPO, stdout=pipe, stderr=pipe
    )
    out, err = await process.communicate()
    if err.strip():  # a leak warning from a child must be seen
        sys.stderr.write(f"[child {argv[0]} stderr]\n{err.decode(errors='replace')}")
    if process.returncode != 0:
        raise RuntimeError(f"child {' '.join(argv)} failed with exit code {process.returncode}")
    result: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    return result


async def part_memory(base_url: str, sizes: Sizes) -> tuple[str, float]:
    runs: dict[str, dict[str, Any]] = {}
    for label, count in ((POOLED, sizes.pool_clients), (NAIVE, sizes.naive_clients)):
        args = ("--base-url", base_url, "--count", str(count))
        runs[label] = await run_child("naive" if label == NAIVE else "pool", *args)
    scales = {label: TARGET_CLIENTS / run["clients"] for label, run in runs.items()}
    at_target = {  # one-off venue cost + linear per-client cost
        label: run["venue_mb"] + (run["growth_mb"] - run["venue_mb"]) * scales[label]
        for label, run in runs.items()
    }
    naive = at_target[NAIVE]
    rows = []
    for label, run in runs.items():
        scale = scales[label]
        basis = "measured" if scale == 1 else f"extrapolated linearly ×{scale:g}"
        venue = f"{run['venue_mb']:,.1f}" if label == POOLED else "n/a (per client)"
        rows.append(
            bench.cols(
                f"{label} | {run['clients']:,} | {run['growth_mb']:,.1f} | {venue}"
                f" | {run['per_client_kb']:,.0f} | {at_target[label]:,.1f} | {basis}"
                f" | {at_target[label] / naive:.1%} | {run['build_s']:.1f}"
                f" | {run['verified']:,}/{run['clients']:,}"
            )
        )
    headers = bench.cols(
        "Approach | Clients measured | RSS growth, measured (MB) | of which venue + markets (MB)"
        f" | Per client (KB) | Growth at {TARGET_CLIENTS:,} clients (MB)"
        f" | {TARGET_CLIENTS:,} figure is | % of naive | Build (s) | Balances verified"
    )
    return bench.table(headers, rows), at_target[POOLED] / naive


async def part_latency(base_url: str, sizes: Sizes) -> tuple[str, dict[str, Any]]:
    result = await run_child(
        "latency",
        *("--base-url", base_url, "--count", str(sizes.latency_users)),
        *("--naive-count", str(sizes.naive_latency_users)),
    )
    ms = bench.ms
    rows = []
    for key, label in (("core", POOLED), ("naive", NAIVE)):
        new, warm, diff = (result[key][part] for part in ("new", "warm", "diff"))
        met = "yes" if diff["p50"] * 1000 <= LATENCY_TARGET_MS else "no"
        rows.append(
            bench.cols(
                f"{label} | {new['n']:,} | {ms(warm['p50'])} | {ms(new['p50'])} | {ms(new['p95'])}"
                f" | {ms(diff['p50'])} | {ms(diff['p95'])} | {met}"
                f" | {result[key]['verified']:,}/{result[key]['requests']:,}"
            )
        )
    headers = bench.cols(
        "Approach | New users | Warm request p50 (ms) | New client + 1st request p50 (ms)"
        " | p95 (ms) | Overhead new − warm p50 (ms) | p95 (ms)"
        f" | p50 ≤ {LATENCY_TARGET_MS:g} ms | Balances verified"
    )
    return bench.table(headers, rows), result


def reading(ratio: float, latency: dict[str, Any], tickers: list[dict[str, Any]]) -> str:
    """Target verdicts computed from this run's numbers."""
    core, naive = latency["core"]["diff"], latency["naive"]["diff"]
    p50 = core["p50"] * 1000
    lines = [
        f"- Memory: pooled clients grow RSS by {ratio:.1%} of the naive approach at "
        f"{TARGET_CLIENTS:,} users — target ≤ {MEMORY_TARGET:.0%}: "
        f"{'met' if ratio <= MEMORY_TARGET else 'NOT met'}.",
        f"- First request of a new pooled client: client-side overhead p50 {p50:.2f} ms, "
        f"p95 {core['p95'] * 1000:.2f} ms — target ≤ {LATENCY_TARGET_MS:g} ms: "
        f"{'met' if p50 <= LATENCY_TARGET_MS else 'NOT met'} (a naive client: p50 "
        f"{naive['p50'] * 1000:.1f} ms: its own ccxt instance, SSL context and markets).",
    ]
    for r in tickers:
        m = r["median"]
        lines.append(
            f"- Tickers, {r['symbols']:,} symbols: core {m['core'] * 1000:.0f} ms vs generic "
            f"{m['generic'] * 1000:.0f} ms end to end ({m['generic'] / m['core']:.1f}×), of "
            f"which {m['raw_get'] * 1000:.0f} ms is the bare GET; parsing one response "
            f"{m['lean_parse'] * 1000:.1f} ms vs {m['generic_parse'] * 1000:.1f} ms "
            f"({m['generic_parse'] / m['lean_parse']:.1f}×)"
            f"{', identical tickers' if r['mismatches'] == 0 else ', TICKERS DIFFER'}."
        )
    return "\n".join(lines)


NOTES = """\
How it is measured: against `tests.exchange_server` (a local Bybit v5 on 127.0.0.1) in the
parent process, every measurement in a fresh child process; the venue's shared limiter is
opened up (`TokenBucket(1e6)`): this measures clients, not Bybit's 100/s.

- **Memory.** RSS is `VmRSS` after `gc.collect()`, after importing everything and building
  one throwaway ccxt instance. *Pooled*: `CcxtVenue(VENUES["bybit"])` loads the 530 markets
  once; each user's client is `venue.client("live", ApiCredentials)` (a clone of a
  configured template sharing one session and SSL context) through
  `ClientPool(max_size=2000)`, and makes one signed `fetch_balance` (one server account
  per user, distinct balances, each checked). *Naive*: plain `ccxt.async_support.bybit`
  (default options, own aiohttp session) per user, `load_markets()` then
  `fetch_balance()`; fewer are built and the 1,000 figure is extrapolated linearly.
- **First request.** Per new user, the new client's first `fetch_balance()` (pooled:
  `pool.lease(new_user)`; naive: construct + `load_markets()`), at once followed by the
  same on a warm client of that approach; percentiles of the paired difference, so the
  round trip cancels out. The overhead is event-loop CPU: every other user waits for it.
- **Bulk tickers.** *Core* is `CcxtClient.fetch_tickers()`: on Bybit, the raw endpoint
  `api.publicGetV5MarketTickers({'category': 'linear'})` through `client.call()`, parsed
  by `core.exchange.lean_tickers.tickers_from_bybit`. *Generic* is
  `client.call(api.fetch_tickers)` + `ccxt_parse.ticker` per linear USDT perpetual (the
  path other venues take). The last columns time, on one payload of the raw endpoint, one
  `json.loads` of the body and each parser. "Identical" compares every field but the
  timestamp, end to end and on the same payload (core stamps the response's server
  `time`; ccxt has none and `ccxt_parse.ticker` uses "now"). The raw aiohttp GET is the
  floor (latency, the fake server serialising every row in Python, transfer; on the real
  exchange, network); the rest of the wall time is client side, what our code controls.
"""


def report(sizes: Sizes, quick: bool, tables: Mapping[str, str], verdicts: str) -> str:
    command = ".venv/bin/python -m scripts.bench_exchange" + (" --quick" if quick else "")
    return f"""\
Machine: {bench.machine()}; ccxt {ccxt.__version__}, aiohttp {aiohttp.__version__}.
Date: {bench.today()}. Command (from the repo root): `{command}`.

### Client pool memory ({sizes.pool_clients:,} pooled vs {sizes.naive_clients:,} naive, 530 symbols)

{tables["memory"]}

### First request of a new client ({sizes.latency_users:,} pooled, \
{sizes.naive_latency_users:,} naive new users, no injected latency)

{tables["overhead"]}

### Bulk tickers (25 ms injected latency, median of {sizes.ticker_runs} runs)

{tables["tickers"]}

### Reading

{verdicts}

{NOTES}"""


def result_rows(
    sizes: Sizes, ratio: float, latency: Mapping[str, Any], tickers: Sequence[Mapping[str, Any]]
) -> list[Row]:
    """This run's figures as rows of the `make bench` table."""
    core, naive = latency["core"], latency["naive"]
    verified = core["verified"] == core["requests"] and naive["verified"] == naive["requests"]
    rows = [
        Row("pooled client memory at 1,000 users, % of naive", f"{sizes.pool_clients:,} "
            f"pooled, {sizes.naive_clients:,} naive (extrapolated)", ratio * 100, "%",
            "every pooled and naive client fetched and checked its own balance", True,
            target=MEMORY_TARGET * 100),
        Row("first request of a new pooled client, overhead p50",
            f"{sizes.latency_users:,} new users", core["diff"]["p50"] * 1000, "ms",
            f"{core['verified']:,}/{core['requests']:,} balances verified", verified,
            baselines={"naive ccxt client": naive["diff"]["p50"] * 1000},
            target=LATENCY_TARGET_MS),
    ]  # fmt: skip
    for r in tickers:
        m = r["median"]
        rows.append(Row(
            "bulk tickers, end to end", f"{r['symbols']:,} symbols, 25 ms latency",
            m["core"] * 1000, "ms",
            "identical tickers to ccxt's generic path" if r["mismatches"] == 0
            else f"{r['mismatches']} tickers differ", r["mismatches"] == 0,
            baselines={"ccxt generic": m["generic"] * 1000},
        ))  # fmt: skip
    return rows


async def run_parent(quick: bool, write_docs: bool, json_path: Path | None = None) -> int:
    sizes = QUICK if quick else FULL
    started = time.perf_counter()
    print(f"# Exchange benchmarks ({'quick' if quick else 'full'})\n\n{bench.machine()}\n")
    tables: dict[str, str] = {}
    async with ExchangeServer(symbols=FULL_SYMBOL_COUNT, seed=SEED) as server:
        for user in range(1, sizes.accounts + 1):
            creds = credentials(user)
            server.add_account(creds.api_key, creds.secret, balance_of(user))
        tables["memory"], ratio = await part_memory(server.base_url, sizes)
        print(f"## Client pool memory\n\n{tables['memory']}\n", flush=True)
        tables["overhead"], latency = await part_latency(server.base_url, sizes)
        print(f"## First request\n\n{tables['overhead']}\n", flush=True)
    tables["tickers"], tickers = await part_tickers(sizes.ticker_runs, run_child)
    print(f"## Bulk tickers\n\n{tables['tickers']}\n", flush=True)
    verdicts = reading(ratio, latency, tickers)
    print(f"## Reading\n\n{verdicts}\n")
    found = result_rows(sizes, ratio, latency, tickers)
    emit(json_path, found)
    if write_docs and not quick:
        bench.write_section(HEADING, report(sizes, quick, tables, verdicts))
        print(f"updated {bench.PERFORMANCE_MD} ({HEADING})")
    else:
        print("docs/PERFORMANCE.md not updated (ask with --write-docs, full sizes)")
    print(f"total {time.perf_counter() - started:.0f} s")
    return 0 if all(row.did_work for row in found) else 1


def run_child_main(args: argparse.Namespace) -> int:
    children: dict[str, Callable[[], Coroutine[Any, Any, dict[str, Any]]]] = {
        "pool": lambda: child_memory(args.base_url, args.count, naive=False),
        "naive": lambda: child_memory(args.base_url, args.count, naive=True),
        "latency": lambda: child_latency(args.base_url, args.count, args.naive_count),
        "tickers": lambda: child_tickers(args.base_url, args.runs),
    }
    print(json.dumps(asyncio.run(children[args.child]())), flush=True)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="smaller counts; docs untouched")
    parser.add_argument("--write-docs", action="store_true", help="update PERFORMANCE.md")
    parser.add_argument("--no-docs", action="store_true", help="(the default) no docs update")
    add_json_argument(parser)
    hidden = argparse.SUPPRESS
    parser.add_argument("--child", choices=("pool", "naive", "latency", "tickers"), help=hidden)
    parser.add_argument("--base-url", default="", help=hidden)
    for option in ("--count", "--naive-count", "--runs"):
        parser.add_argument(option, type=int, default=0, help=hidden)
    args = parser.parse_args(argv)
    if args.child:
        return run_child_main(args)
    return asyncio.run(run_parent(args.quick, args.write_docs, args.json))


if __name__ == "__main__":
    sys.exit(main())
