"""Logging set-up: one format everywhere; in the console chat, logs go to a file."""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path

from core.clock import Clock
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


class FailureLog:
    """One line per failure; the traceback once per distinct error per `window_s`.

    A job that fails every second against an exchange answering garbage would otherwise
    bury the log in identical tracebacks. An error is the same when its class and the line
    that raised it are: the message may carry changing numbers.
    """

    def __init__(self, logger: logging.Logger, clock: Clock, window_s: float = 3600.0) -> None:
        self._log = logger
        self._clock = clock
        self._window_s = window_s
        self._shown: dict[tuple[str, str, int], float] = {}

    def failed(self, what: str, error: BaseException) -> None:
        """Log `what failed: Class: message`, with the traceback if not shown lately."""
        now = self._clock.monotonic()
        key = _error_key(error)
        shown = self._shown.get(key)
        first = shown is None or now - shown >= self._window_s
        if first:
            self._shown[key] = now
        message = " ".join(str(error).split())[:500]
        self._log.error(
            "%s failed: %s: %s%s",
            what,
            type(error).__name__,
            message,
            "" if first else " (repeated; its traceback was logged earlier)",
            exc_info=error if first else None,
        )


def _error_key(error: BaseException) -> tuple[str, str, int]:
    frame = error.__traceback__
    while frame is not None and frame.tb_next is not None:
        frame = frame.tb_next
    if frame is None:
        return type(error).__qualname__, "", 0
    return type(error).__qualname__, frame.tb_frame.f_code.co_filename, frame.tb_lineno
