"""Logging set-up: one format everywhere; in the console chat, logs go to a file."""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path

from core.files import private_file

_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure_logging(level: str, log_file: Path | None = None) -> None:
    """Log at `level`; with `log_file`, only warnings reach stderr (the chat stays readable)."""
    root = logging.getLogger()
    root.handlers.clear()
    root.setLevel(level)
    stderr = logging.StreamHandler(sys.stderr)
    stderr.setFormatter(logging.Formatter(_FORMAT))
    if log_file is not None:
        private_file(log_file)
        to_file = logging.FileHandler(log_file, encoding="utf-8")
        to_file.setFormatter(logging.Formatter(_FORMAT))
        root.addHandler(to_file)
        stderr.setLevel(logging.WARNING)
    root.addHandler(stderr)
    # Every Bot API request is logged by httpx at INFO; that is noise, not news.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("apscheduler").setLevel(logging.WARNING)


class _ShutdownCancellation(logging.Filter):
    """Drop APScheduler's "Error running job" for a job cancelled by shutdown.

    A job due in the instant between python-telegram-bot waiting for running jobs and the
    scheduler shutting down is cancelled, and APScheduler logs that as an error with a
    traceback (https://github.com/agronholm/apscheduler/issues/675). Nothing failed.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        return not isinstance(error, asyncio.CancelledError)


def quiet_shutdown_cancellations() -> None:
    """Install the filter on APScheduler's executor loggers (idempotent)."""
    executors = logging.getLogger("apscheduler.executors.default")
    if not any(isinstance(f, _ShutdownCancellation) for f in executors.filters):
        executors.addFilter(_ShutdownCancellation())
