"""The local HTTP Bot API server driven by a real python-telegram-bot `Bot` over HTTP."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import timedelta
from urllib.parse import urlsplit

import aiohttp
import pytest
import telegram
from telegram.error import BadRequest, InvalidToken, RetryAfter

from bot.offline_updates import make_message_update
from tests.botapi_server import BotApiServer, FloodLimiter
from tests.fakes.clock import FakeClock

TOKEN = "123:ABC"
USER = 42


@pytest.fixture
async def server() -> AsyncIterator[BotApiServer]:
    async with BotApiServer() as running:
        yield running


def make_bot(server: BotApiServer, token: str = TOKEN) -> telegram.Bot:
    return telegram.Bot(token, base_url=server.base_url)


async def wait_until_polling(server: BotApiServer, requests: int) -> None:
    """Wait (briefly, bounded) until the server has received ``requests`` requests."""
    async with asyncio.timeout(2):
        while server.requests < requests:  # noqa: ASYNC110 - a request counter, no event
            await asyncio.sleep(0.005)


async def test_binds_loopback_on_an_ephemeral_port(server: BotApiServer) -> None:
    url = urlsplit(server.base_url)
    assert url.hostname == "127.0.0.1"
    assert url.port == server.port
    assert server.port > 0
    assert url.path == "/bot"


async def test_get_updates_long_poll_returns_as_soon_as_an_update_is_pushed(
    server: BotApiServer,
) -> None:
    async with make_bot(server) as bot:
        loop = asyncio.get_running_loop()
        poll = asyncio.create_task(bot.get_updates(timeout=10))
        await wait_until_polling(server, 2)  # getMe + the waiting getUpdates
        started = loop.time()
        pushed = server.push_update(make_message_update(0, USER, "/start"))

        updates = await asyncio.wait_for(poll, 2)

        assert loop.time() - started < 1.0
        assert [u.update_id for u in updates] == [pushed["update_id"]]
        message = updates[0].message
        assert message is not None
        assert message.text == "/start"
        assert message.entities[0].type == "bot_command"
        # offset confirms; limit and allowed_updates are honoured
        server.push_update(make_message_update(0, USER, "a"))
        server.push_update(make_message_update(0, USER, "b"))
        first = await bot.get_updates(offset=updates[0].update_id + 1, limit=1, timeout=0)
        assert [u.message.text for u in first if u.message] == ["a"]
        assert await bot.get_updates(timeout=0, allowed_updates=["callback_query"]) == ()


async def test_send_message_is_recorded_and_wait_for_call_resolves(server: BotApiServer) -> None:
    async with make_bot(server) as bot:
        waiter = asyncio.create_task(server.wait_for_call("sendMessage", timeout=2))
        await asyncio.sleep(0)
        sent = await bot.send_message(USER, "<b>Filled</b> 0.1 BTC", parse_mode="HTML")

        call = await waiter
        assert call.params["chat_id"] == USER
        assert call.params["parse_mode"] == "HTML"
        assert isinstance(call.result, dict)
        assert call.result["message_id"] == sent.message_id
        assert call.result["entities"] == [{"type": "bold", "offset": 0, "length": 6}]
        assert sent.text == "Filled 0.1 BTC"
        assert sent.entities[0].type == "bold"
        with pytest.raises(BadRequest, match=r"(?i)message is too long"):
            await bot.send_message(USER, "x" * 4097)


async def test_flood_mode_answers_retry_after() -> None:
    async with BotApiServer(flood_limit=True) as flood_server, make_bot(flood_server) as bot:
        await bot.send_message(USER, "first")
        with pytest.raises(RetryAfter) as caught:
            await bot.send_message(USER, "second")
        retry = caught.value.retry_after  # int, or timedelta with PTB_TIMEDELTA=true
        assert (retry.total_seconds() if isinstance(retry, timedelta) else retry) == 1
        await bot.send_message(USER + 1, "another chat is fine")
        assert (flood_server.sent, flood_server.rejected_429) == (2, 1)
        assert [c.method for c in flood_server.calls] == ["getMe", "sendMessage", "sendMessage"]


def test_flood_limiter_windows_with_a_fake_clock() -> None:
    clock = FakeClock()
    limiter = FloodLimiter(global_rate=3, per_chat_rate=1, clock=clock.monotonic)
    for chat in "abc":
        limiter.check(chat)
    with pytest.raises(Exception, match="retry after 1") as per_chat:
        limiter.check("a")
    assert getattr(per_chat.value, "retry_after", None) == 1
    with pytest.raises(Exception, match="Too Many Requests"):
        limiter.check("d")  # global limit of 3 per second
    clock.advance(1.0)
    limiter.check("a")
    limiter.check("d")
    assert (limiter.sent, limiter.rejected_429) == (5, 2)


async def test_accepts_json_form_and_get_requests(server: BotApiServer) -> None:
    base = f"{server.base_url}{TOKEN}"
    markup = {"inline_keyboard": [[{"text": "ok", "callback_data": "ok"}]]}
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{base}/getMe") as response:
            assert response.status == 200
            assert (await response.json())["result"]["username"] == "tradewind_bot"
        payload = {"chat_id": USER, "text": "json", "reply_markup": markup}
        async with http.post(f"{base}/sendMessage", json=payload) as response:
            assert (await response.json())["result"]["reply_markup"] == markup
        form = {"chat_id": str(USER), "text": "123", "reply_markup": json.dumps(markup)}
        async with http.post(f"{base}/sendMessage", data=form) as response:
            assert (await response.json())["result"]["text"] == "123"  # stays a string
        multipart = aiohttp.FormData({"chat_id": str(USER), "text": "multi"})
        async with http.post(f"{base}/sendMessage", data=multipart) as response:
            assert (await response.json())["result"]["text"] == "multi"
        async with http.post(f"{base}/sendMessage", data={"chat_id": "1", "text": ""}) as response:
            assert response.status == 400
            body = await response.json()
            assert body == {
                "ok": False,
                "error_code": 400,
                "description": "Bad Request: message text is empty",
            }
    assert [c.params["text"] for c in server.state.calls_to("sendMessage")] == [
        "json",
        "123",
        "multi",
    ]


async def test_wrong_token_is_unauthorized_when_a_token_is_required() -> None:
    async with BotApiServer(token=TOKEN) as server:
        with pytest.raises(InvalidToken):
            async with make_bot(server, token="999:WRONG"):
                pass
        async with make_bot(server) as bot:
            assert bot.username == "tradewind_bot"


async def test_stop_ends_a_pending_long_poll_promptly() -> None:
    server = BotApiServer()
    await server.start()
    async with make_bot(server) as bot:
        poll = asyncio.create_task(bot.get_updates(timeout=30))
        await wait_until_polling(server, 2)
        loop = asyncio.get_running_loop()
        started = loop.time()
        await server.stop()
        assert await asyncio.wait_for(poll, 2) == ()
        assert loop.time() - started < 1.5
    with pytest.raises(RuntimeError, match="not running"):
        _ = server.base_url
