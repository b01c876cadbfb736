"""Logging set-up: one format everywhere; in the console chat, logs go to a file."""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path

from core.clock import Clock
from core.files import private_file
from core.redaction import redact

_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


# The libraries' request dumps: every Bot API call with its parameters and result (message
# texts), every exchange request with its headers, every SQL statement. Wanted only when
# debugging the wire itself (TRADEWIND_LOG_WIRE=1), and masked even then.
WIRE_LOGGERS = (
    "httpx",
    "httpcore",
    "telegram.Bot",
    "telegram.ext.ExtBot",
    "telegram.request",
    "ccxt",
    "aiosqlite",
)


def configure_logging(level: str, log_file: Path | None = None, *, wire: bool = False) -> None:
    """Log at `level`; with `log_file`, only warnings reach stderr (the chat stays readable).

    Every handler masks secrets (`RedactingFilter`); the libraries' request dumps stay at
    WARNING unless `wire` asks for them.
    """
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
    for handler in root.handlers:
        handler.addFilter(RedactingFilter())
    for name in WIRE_LOGGERS:
        logging.getLogger(name).setLevel(logging.NOTSET if wire else logging.WARNING)
    logging.getLogger("apscheduler").setLevel(logging.WARNING)


class RedactingFilter(logging.Filter):
    """Mask secrets in a record's message, traceback and stack before any handler writes it.

    On a handler, not a logger: a logger's filters never see records propagated from the
    libraries' loggers. The record is rewritten in place, so every handler gets the masked
    text and the work is done once.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "tradewind_redacted", False):
            return True
        record.msg = redact(record.getMessage())
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        record.tradewind_redacted = True
        return True


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
