"""`tradewind run` as a real process, polling a local HTTP Bot API over the network stack."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from bot.offline_updates import make_message_update
from tests.botapi_server import BotApiServer
from tests.e2e.process import tradewind_run

pytestmark = pytest.mark.e2e

TOKEN = "123456789:E2E-token-for-the-local-bot-api-server"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


async def test_polling_bot_answers_start_and_serves_health(tmp_path: Path) -> None:
    metrics_port = _free_port()
    async with BotApiServer() as server:
        env = {
            **os.environ,
            "TELEGRAM_BOT_TOKEN": TOKEN,
            "TELEGRAM_API_BASE_URL": server.base_url,
            "TRADEWIND_DB": str(tmp_path / "tradewind.db"),
            "TRADEWIND_METRICS_ADDR": f"127.0.0.1:{metrics_port}",
            "TRADEWIND_ADMIN_IDS": "99",
        }
        env.pop("TRADEWIND_MASTER_KEY", None)
        started = time.perf_counter()
        async with tradewind_run(env, tmp_path) as bot:
            server.push_update(make_message_update(1, 42, "/start", first_name="Alice"))
            call = await server.wait_for_call(
                "sendMessage", lambda c: c.params.get("chat_id") == 42, timeout=30
            )
            answered_after = time.perf_counter() - started
            assert isinstance(call.result, dict)
            assert str(call.result["text"]).startswith("Welcome to Tradewind, Alice!")
            assert "keyboard" in call.params["reply_markup"]

            status, body = await asyncio.to_thread(_get, f"http://127.0.0.1:{metrics_port}/health")
            health = json.loads(body)
            assert status == 200 and health["checks"] == {"db": "ok"}
            status, body = await asyncio.to_thread(_get, f"http://127.0.0.1:{metrics_port}/metrics")
            assert status == 200 and b'tradewind_command_seconds_count{command="start"}' in body
        assert bot.returncode == 0, bot.stderr[-2000:]
        assert "Traceback" not in bot.stderr, bot.stderr[-2000:]
        assert (tmp_path / "master.key").stat().st_mode & 0o777 == 0o600
        print(f"first update answered {answered_after * 1000:.0f} ms after process start")


async def test_bad_configuration_stops_with_one_line(tmp_path: Path) -> None:
    env = {**os.environ, "TRADEWIND_SCAN_INTERVAL": "soon", "TRADEWIND_DB": str(tmp_path / "x.db")}
    process = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).parent / "tradewind"),
        "run",
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, stderr = await asyncio.wait_for(process.communicate(), timeout=30)
    assert process.returncode == 2
    lines = stderr.decode().strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("tradewind: TRADEWIND_SCAN_INTERVAL: 'soon' is not a number")


async def test_console_chat_answers_piped_input(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "TRADEWIND_DB": str(tmp_path / "tradewind.db"),
        "TRADEWIND_METRICS_ADDR": "",
    }
    env.pop("TELEGRAM_BOT_TOKEN", None)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        env=env,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(
        process.communicate(b"/start\n/help\n:1\n:user 5 Bob\n/perf\n"), timeout=30
    )
    out = stdout.decode()
    assert process.returncode == 0, stderr.decode()
    assert "bot> Welcome to Tradewind, Console!" in out
    assert "bot> Commands" in out and "/perf" in out  # the console user is an admin
    assert "(no button 1" in out
    assert "(now acting as user 5, Bob)" in out
    assert "bot> This command is for admins." in out
    assert stderr.decode() == ""


async def test_paper_only_process_never_imports_ccxt(tmp_path: Path) -> None:
    """ccxt costs ~70 MB; the console on the paper exchange must run without it."""
    script = (
        "import io, sys\n"
        "from bot.cli import main\n"
        "sys.stdin = io.StringIO('/start\\n/help\\n')\n"
        "code = main(['run'])\n"
        "print('ccxt loaded:', any(m == 'ccxt' or m.startswith('ccxt.') for m in sys.modules),"
        " file=sys.stderr)\n"
        "sys.exit(code)\n"
    )
    env = {**os.environ, "TRADEWIND_DB": str(tmp_path / "t.db"), "TRADEWIND_METRICS_ADDR": ""}
    env.pop("TELEGRAM_BOT_TOKEN", None)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", script, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=30)
    assert process.returncode == 0, stderr.decode()
    assert b"Welcome to Tradewind" in stdout
    assert "ccxt loaded: False" in stderr.decode()
