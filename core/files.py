"""Private files: the data directory is 0700 and what Tradewind writes in it is 0600.

The database holds encrypted secrets and the log holds user ids and trading activity; neither
is anybody else's business on a shared machine. Each is created private before its first
byte is written (SQLite gives the -wal and -shm files the mode of the database file), and a
file left readable by an older version is tightened on the next start.
"""

from __future__ import annotations

import os
from pathlib import Path

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600


def private_dir(path: Path) -> None:
    """Create `path` (and missing parents) as 0700; an existing directory is left as it is."""
    path.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)


def private_file(path: Path) -> None:
    """Create `path` empty as 0600 if missing, in a private directory; tighten it if readable."""
    private_dir(path.parent)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, PRIVATE_FILE)
    try:
        if os.fstat(fd).st_mode & 0o077:
            os.fchmod(fd, PRIVATE_FILE)
    finally:
        os.close(fd)


def tighten(path: Path) -> None:
    """Make an existing file 0600 if others can read it; a missing file is fine."""
    try:
        if path.stat().st_mode & 0o077:
            path.chmod(PRIVATE_FILE)
    except FileNotFoundError:
        pass
