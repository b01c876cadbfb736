"""Run the fake Bybit (or Binance USDⓈ-M, or OKX) by hand or for benchmarks.

    python -m tests.exchange_server --port 8765 --symbols 530 --latency-ms 25
        --account bench-key:bench-secret:100000 --rate-limit 100
    python -m tests.exchange_server --venue okx --account key:secret:10000:passphrase

With `--moving`, `POST /test/tick?breakouts=10&listings=0&delistings=0&changes=0&walk=0.0005`
moves the market one step (see `mover`); without it the market only moves when told to.
Bybit only: `POST /test/key` with `{"api_key": ..., "read_only": false, "trade": true,
"withdraw": false, "ips": ["127.0.0.1"]}` sets what `/v5/user/query-api` says about a key.
Binds 127.0.0.1 only. Stop with Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from decimal import Decimal

from .binance import BinanceServer
from .faults import FaultKind
from .okx import OkxServer
from .server import ExchangeServer

SERVERS: dict[str, type[ExchangeServer]] = {
    "bybit": ExchangeServer,
    "binance": BinanceServer,
    "okx": OkxServer,
}


def _parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tests.exchange_server",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--venue", choices=list(SERVERS), default="bybit", help="wire format")
    parser.add_argument("--port", type=int, default=0, help="TCP port on 127.0.0.1 (0 = any)")
    parser.add_argument("--symbols", type=int, default=530, help="number of linear perpetuals")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--latency-ms", type=float, default=0.0, help="added to every request")
    parser.add_argument(
        "--rate-limit", type=float, default=None, help="global token bucket, requests/second"
    )
    parser.add_argument(
        "--rate-limit-response",
        default=FaultKind.RATE_LIMIT.value,
        choices=[FaultKind.RATE_LIMIT.value, FaultKind.HTTP_429.value, FaultKind.HTTP_403.value],
    )
    parser.add_argument(
        "--moving",
        action="store_true",
        help="accept POST /test/tick to move the market one step (benchmarks)",
    )
    parser.add_argument(
        "--control",
        action="store_true",
        help="serve /test/orders, /test/price, /test/chaos, /test/faults (soak drivers)",
    )
    parser.add_argument(
        "--account",
        action="append",
        default=[],
        metavar="KEY:SECRET[:USDT[:PASSPHRASE]]",
        help="create an account (repeatable); default 10000 USDT, OKX passphrase 'passphrase'",
    )
    return parser.parse_args(argv)


async def _serve(args: argparse.Namespace) -> None:
    server = SERVERS[args.venue](
        args.symbols,
        args.seed,
        args.latency_ms,
        port=args.port,
        rate_limit_per_s=args.rate_limit,
        rate_limit_response=args.rate_limit_response,
        moving=args.moving,
        control=args.control,
    )
    async with server:
        for spec in args.account:
            key, secret, *rest = spec.split(":")
            balance = Decimal(rest[0]) if rest else Decimal("10000")
            if isinstance(server, OkxServer):
                server.add_account(key, secret, balance, rest[1] if len(rest) > 1 else "passphrase")
            else:
                server.add_account(key, secret, balance)
        print(
            f"tests.exchange_server ({args.venue}) listening on {server.base_url} "
            f"({len(server.market.instruments)} symbols, latency {args.latency_ms} ms)",
            flush=True,
        )
        await asyncio.Event().wait()


def main(argv: list[str] | None = None) -> None:
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(_parse_args(argv)))


if __name__ == "__main__":
    main()
