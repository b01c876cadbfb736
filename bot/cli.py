"""The `tradewind` command: run the bot, or maintain its keys."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from telegram import Update

from bot.app import build_application
from bot.console import run_console
from bot.logs import configure_logging
from bot.maintenance import backup_database, check_database, rotate_key
from core.config import Settings, load_settings
from core.crypto import generate_key
from core.errors import ConfigError, StoreError


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tradewind", description="Tradewind trading bot")
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("run", help="start the bot (console chat when TELEGRAM_BOT_TOKEN is unset)")
    sub.add_parser("rotate-key", help="add a new master key and re-encrypt every stored secret")
    sub.add_parser("gen-key", help="print a new master key for TRADEWIND_MASTER_KEY")
    db = sub.add_parser("db", help="database maintenance")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    db_sub.add_parser("check", help="run SQLite's full integrity check on TRADEWIND_DB")
    backup = db_sub.add_parser("backup", help="copy TRADEWIND_DB, even while the bot runs")
    backup.add_argument("path", type=Path, help="the backup file (or a directory for it)")
    args = parser.parse_args(argv)
    # python-telegram-bot 22: RetryAfter.retry_after as a timedelta (the future default).
    os.environ.setdefault("PTB_TIMEDELTA", "1")

    if args.command == "gen-key":
        print(generate_key().decode())
        return 0
    try:
        settings = load_settings(os.environ)
    except ConfigError as exc:
        print(f"tradewind: {exc}", file=sys.stderr)
        return 2
    if args.command == "rotate-key":
        configure_logging(settings.log_level)
        return asyncio.run(rotate_key(settings))
    if args.command == "db":
        configure_logging(settings.log_level)
        if args.db_command == "backup":
            target: Path = args.path
            if target.is_dir():
                target = target / settings.db_path.name
            try:
                return asyncio.run(backup_database(settings, target))
            except (StoreError, OSError) as exc:
                print(f"tradewind: backup failed: {exc}", file=sys.stderr)
                return 1
        return asyncio.run(check_database(settings))
    return run(settings)


def run(settings: Settings) -> int:
    """Start polling Telegram, or the console chat when there is no token."""
    if settings.console_mode:
        log_file = settings.db_path.parent / "tradewind.log"
        configure_logging(settings.log_level, log_file, wire=settings.log_wire)
        return asyncio.run(run_console(settings, sys.stdin, sys.stdout))
    configure_logging(settings.log_level, wire=settings.log_wire)
    app = build_application(settings)
    app.run_polling(allowed_updates=Update.ALL_TYPES)
    return 0
