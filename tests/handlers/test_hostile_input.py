"""Hostile input through the real Application: random arguments to every command and
random data on every button prefix. Nothing may escape to the error handler, and every
answer must be one Telegram accepts (text ≤ 4,096 UTF-16 units, callback_data ≤ 64 bytes).

A fixed seed and a modest number of examples here; `TRADEWIND_FUZZ_EXAMPLES=100000` runs
the full count (see docs/RELIABILITY.md).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from db.repositories.licenses import LicenseRepository
from tests.handlers.hostile import (
    BotThread,
    business_state,
    examples,
    problems,
    registered_commands,
    registered_prefixes,
)

TRADER, ADMIN = 42, 99
SETTINGS = settings(
    max_examples=examples(120),
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)

# Telegram never delivers lone surrogates (they are not valid UTF-8) or NUL.
_TEXT = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), max_size=40)
_NUMBERS = st.sampled_from(
    ["0", "-1", "1", "5", "100", "1e9", "1e999", "NaN", "inf", "-0", "0.0000001", "1,5",
     "99999999999999999999", "2.5", "00012", "+7", "１２", "٣", "1_000", "0x10", "3.", ".5",
     "²", "①", "9223372036854775808", "99999999999999999999999"]
)  # fmt: skip
_WORDS = st.sampled_from(
    ["BTC", "btcusdt", "BTC/USDT:USDT", "ETH", "@", "x10", "10x", "%", "50%", "on", "off",
     "all", "pro", "trial", "tp", "sl", "<b>", "&amp;", "'", '"', "--", "🚀", "\u202e", "—"]
)  # fmt: skip
_TOKEN = st.one_of(_NUMBERS, _WORDS, _TEXT.filter(lambda t: t.strip() != ""))
_ARGS = st.lists(_TOKEN, max_size=6).map(" ".join)
_PART = st.one_of(_NUMBERS, _WORDS, st.text(max_size=12).map(lambda t: t.replace("\x00", "")))


@pytest.fixture(scope="module")
def driven(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BotThread]:
    with BotThread(Path(tmp_path_factory.mktemp("hostile"))) as thread:
        bot = thread.harness
        for user in (TRADER, ADMIN):
            thread.call(bot.send(user, "/start"))
            thread.call(bot.services.accounts.connect(user, "paper", "paper"))
        now = bot.services.clock.now()
        thread.call(LicenseRepository(bot.store).extend(TRADER, 30, "pro", "grant", now))
        yield thread


def _check(thread: BotThread, calls: list[Any], rejected_before: int, what: str) -> None:
    bot = thread.harness
    found = problems(calls, bot.state.rejected[rejected_before:])
    errors, thread.errors[:] = list(thread.errors), []
    assert not errors, f"{what}: {errors[0]!r}"
    assert not found, f"{what}: {found}"


def test_the_tables_cover_the_bot(driven: BotThread) -> None:
    bot = driven.harness
    assert {"long", "short", "close", "set", "grant", "promo_create"} <= set(
        registered_commands(bot)
    )
    assert {"ok", "no", "cl", "co", "sg", "tr", "pr", "or", "keys", "connect"} <= set(
        registered_prefixes(bot)
    )


@seed(17)
@SETTINGS
@given(data=st.data())
def test_random_arguments_to_every_command(driven: BotThread, data: st.DataObject) -> None:
    bot = driven.harness
    name = data.draw(st.sampled_from(registered_commands(bot)), label="command")
    args = data.draw(_ARGS, label="args")
    user = data.draw(st.sampled_from([TRADER, ADMIN]), label="user")
    text = f"/{name} {args}".strip()
    rejected = len(bot.state.rejected)
    calls = driven.call(bot.send(user, text))
    _check(driven, calls, rejected, f"{user}: {text!r}")


@seed(17)
@SETTINGS
@given(data=st.data())
def test_random_data_on_every_button(driven: BotThread, data: st.DataObject) -> None:
    bot = driven.harness
    prefix = data.draw(st.sampled_from(registered_prefixes(bot)), label="prefix")
    parts = data.draw(st.lists(_PART, max_size=5), label="parts")
    user = data.draw(st.sampled_from([TRADER, ADMIN]), label="user")
    payload = ":".join([prefix, *parts])
    while len(payload.encode()) > 64:  # Telegram delivers at most 64 bytes
        payload = payload[:-1]
    (sent,) = [c for c in driven.call(bot.send(user, "/help")) if c.method == "sendMessage"]
    rejected = len(bot.state.rejected)
    calls = driven.call(bot.press(user, sent.result, payload))
    _check(driven, calls, rejected, f"{user} pressed {payload!r}")
    assert any(c.method == "answerCallbackQuery" for c in calls), payload  # no spinner left


# Complete command lines that act; one more argument makes each a partial parse.
ACTING = [
    (TRADER, "/long BTC 100 5"),
    (TRADER, "/short ETH 50 3"),
    (TRADER, "/set leverage 7"),
    (TRADER, "/subscribe 0.7"),
    (TRADER, "/notify fills silent"),
    (ADMIN, "/grant 42 30 pro"),
    (ADMIN, "/promo_create FUZZ 30 5 10 pro"),
]
# str.split is how PTB cuts arguments; a unit after the number (`/set leverage 7 x`,
# `/set size_usdt 50 usdt`) is part of /set's syntax, not junk.
_UNITS = {"%", "x", "×", "usdt"}
_JUNK = _TOKEN.filter(lambda t: t.split() != [] and t.strip().lower() not in _UNITS)


def test_each_acting_line_acts_when_complete(tmp_path: Path) -> None:
    """The control for the test below: without the extra argument, each line acts."""
    with BotThread(tmp_path) as thread:
        bot = thread.harness
        for user in (TRADER, ADMIN):
            thread.call(bot.send(user, "/start"))
            thread.call(bot.services.accounts.connect(user, "paper", "paper"))
        now = bot.services.clock.now()
        thread.call(LicenseRepository(bot.store).extend(TRADER, 30, "pro", "grant", now))
        for user, line in ACTING:
            before = thread.call(business_state(bot.store))
            thread.call(bot.send(user, line))
            assert thread.call(business_state(bot.store)) != before, line


@seed(17)
@SETTINGS
@given(data=st.data())
def test_no_action_on_a_partial_parse(driven: BotThread, data: st.DataObject) -> None:
    bot = driven.harness
    user, line = data.draw(st.sampled_from(ACTING), label="line")
    junk = data.draw(st.lists(_JUNK, min_size=1, max_size=3), label="junk")
    text = " ".join([line, *junk])
    before = driven.call(business_state(bot.store))
    rejected = len(bot.state.rejected)
    calls = driven.call(bot.send(user, text))
    _check(driven, calls, rejected, f"{user}: {text!r}")
    assert driven.call(business_state(bot.store)) == before, text


# Ids that once escaped as exceptions: "²" passes str.isdigit() but not int(), and a number
# past 2**63 passes int() but not SQLite.
BAD_IDS = ["²", "①", "9223372036854775808", "99999999999999999999999"]
SHAPES = [["{id}"], ["{id}", "1"], ["1", "{id}"], ["{id}", "{id}"], ["ok", "{id}", "1"],
          ["go", "{id}"], ["check", "{id}"], ["active", "{id}"], ["granted", "{id}", "30"],
          ["x", "{id}", "1"]]  # fmt: skip


@pytest.mark.parametrize("bad", BAD_IDS)
def test_ids_no_integer_column_can_hold_are_refused(driven: BotThread, bad: str) -> None:
    bot = driven.harness
    (sent,) = [c for c in driven.call(bot.send(ADMIN, "/help")) if c.method == "sendMessage"]
    for prefix in registered_prefixes(bot):
        for shape in SHAPES:
            payload = ":".join([prefix, *(p.format(id=bad) for p in shape)])[:64]
            rejected = len(bot.state.rejected)
            calls = driven.call(bot.press(ADMIN, sent.result, payload))
            _check(driven, calls, rejected, f"pressed {payload!r}")
    for line in ("/users {id}", "/grant {id} 30", "/revoke {id}", "/cancel {id}", "/trades {id}"):
        text = line.format(id=bad)
        rejected = len(bot.state.rejected)
        _check(driven, driven.call(bot.send(ADMIN, text)), rejected, text)
