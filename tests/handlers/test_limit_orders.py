"""/long and /short with @ PRICE through the real Application, on paper: the card, right and
wrong prices, post-only, a fill from the paper engine's prices, expiry and the licence gate."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from core.exchange.errors import InvalidOrder
from core.exchange.models import OrderRequest, OrderType, Side
from db.repositories.intents import IntentRecord, IntentRepository
from db.repositories.licenses import LicenseRepository
from services.trading import LICENCE_NEEDED
from tests.fakes.clock import FakeClock
from tests.handlers.test_trading import _card
from tests.harness import BotHarness, running_bot, texts

TRADER, LAPSED = 42, 44
BTC, ETH = "BTC/USDT:USDT", "ETH/USDT:USDT"
TICK = Decimal("0.1")  # BTC's on the synthetic market
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
async def clock() -> FakeClock:
    return FakeClock(NOW)  # the synthetic market holds still while the clock does


@pytest.fixture
async def bot(tmp_path: Path, clock: FakeClock) -> AsyncIterator[BotHarness]:
    async with running_bot(tmp_path, clock=clock) as harness:
        for user in (TRADER, LAPSED):
            await harness.send(user, "/start")
            await harness.services.accounts.connect(user, "paper", "paper")
        await LicenseRepository(harness.store).extend(TRADER, 30, "pro", "grant", NOW)
        yield harness


async def _intents(bot: BotHarness, user: int = TRADER) -> list[IntentRecord]:
    return await IntentRepository(bot.store).for_user(user, 100)


async def _last(bot: BotHarness, symbol: str = BTC) -> Decimal:
    return (await bot.services.market.ticker("paper", symbol)).last


def _on_tick(value: Decimal, tick: Decimal = TICK) -> Decimal:
    return (value / tick).quantize(Decimal(1)) * tick


def _shown(value: Decimal) -> str:
    return f"{value:,.1f}"


async def _open_orders(bot: BotHarness) -> list[str]:
    async with bot.services.exchanges.lease(TRADER, "paper", "paper") as client:
        return [o.client_order_id or "" for o in await client.fetch_open_orders()]


async def _place(bot: BotHarness, text: str) -> tuple[str, str]:
    message, cid = _card(await bot.send(TRADER, text))
    (done,) = texts(await bot.press(TRADER, message, f"ok:{cid}"))
    return done, cid


@pytest.mark.parametrize(
    "form",
    ["@ {abs}", "@{abs}", "{lev}@{abs}", "@ {k}k", "@-1%", "@ -1 %", "@ -1.0%"],
)
async def test_every_form_of_the_price_gives_the_same_card(bot: BotHarness, form: str) -> None:
    last = await _last(bot)
    limit = _on_tick(last * Decimal("0.99"))
    whole = (limit / 100).to_integral_value() * 100  # a round price for the k form
    if "k" in form or "abs" in form:
        limit = whole
    command = "/long BTC 100 " + form.format(abs=whole, k=whole / 1000, lev=5)
    if not command.startswith("/long BTC 100 5"):
        command = command.replace("/long BTC 100 ", "/long BTC 100 5 ")

    message, cid = _card(await bot.send(TRADER, command))

    text = message["text"]
    distance = (limit - last) / last * 100
    assert text.startswith("Confirm LIMIT LONG BTC/USDT:USDT · Paper"), text
    assert f"Limit price: {_shown(limit)} USDT, {abs(distance):.2f} % below the last price " in text
    assert f"Quantity: {Decimal(100) / limit:.3f}"[:-1] in text and "Leverage: 5×" in text
    assert "(maker 0.020 %)" in text and "Expiry: cancelled 60 min after it is placed" in text
    assert "⚠️" not in text
    (draft,) = await _intents(bot)
    assert (draft.client_order_id, draft.order_type, draft.price) == (cid, "limit", limit)
    assert draft.post_only is False and draft.status == "draft"
    assert draft.stop_loss is not None and draft.take_profit is not None
    assert draft.stop_loss < limit < draft.take_profit  # the strategy's levels, from the limit
    assert await _open_orders(bot) == []  # nothing sent before Confirm


async def test_a_short_above_the_price_rests_until_it_expires_with_a_notice(
    bot: BotHarness, clock: FakeClock
) -> None:
    await bot.send(TRADER, "/set limit_order_ttl_min 10")
    last = await _last(bot, ETH)
    limit = _on_tick(last * Decimal("1.005"), Decimal("0.01"))

    done, cid = await _place(bot, "/short ETH 100 @+0.5%")

    assert done.startswith("📌 Limit order placed: SHORT ETH/USDT:USDT · Paper"), done
    assert "Cancelled at 2026-03-02 09:10 UTC if still unfilled." in done
    assert await _open_orders(bot) == [cid]
    clock.advance(9 * 60)
    assert (await bot.services.order_expiry.expire_once()).due == 0
    clock.advance(60)
    assert (await bot.services.order_expiry.expire_once()).cancelled == 1
    call = await bot.state.wait_for_call(
        "sendMessage", lambda c: "Limit order expired" in str(c.params["text"])
    )
    told = str(call.params["text"])
    assert f"sell 0.02 ETH/USDT:USDT at {limit}" in told and told.endswith("Nothing had filled.")
    assert await _open_orders(bot) == []
    (intent,) = await _intents(bot)
    assert (intent.status, intent.error) == ("cancelled", "expired: older than limit_order_ttl_min")


async def test_a_resting_limit_fills_when_the_paper_price_trades_through_it(
    bot: BotHarness, clock: FakeClock
) -> None:
    done, cid = await _place(bot, "/long BTC 100 5 @-1%")
    assert done.startswith("📌 Limit order placed"), done
    (intent,) = await _intents(bot)
    assert intent.client_order_id == cid
    assert intent.price is not None and intent.status == "open"
    orders = texts(await bot.send(TRADER, "/orders"))[0]
    assert f"BUY LIMIT {intent.qty} @ {_shown(intent.price)}" in orders

    report = await bot.services.exchanges.paper_engine.on_prices({BTC: intent.price - TICK})
    assert report.orders_filled == 1
    clock.advance(30)  # the next sync, past what /orders cached
    await bot.services.position_sync.sync_once()

    positions = texts(await bot.send(TRADER, "/positions"))[0]
    assert "LONG" in positions and _shown(intent.price) in positions
    rows = await bot.store.fetchall("t", "SELECT status FROM pending_limit_orders")
    assert [tuple(r) for r in rows] == [("closed",)]
    # The fill is told from the paper engine's own execution, at its price and maker fee.
    await bot.services.fill_catchup.catch_up_active()
    call = await bot.state.wait_for_call(
        "sendMessage", lambda c: "Order filled" in str(c.params["text"])
    )
    told = str(call.params["text"])
    assert f"Order filled: BUY {intent.qty.normalize():f} BTC/USDT:USDT at " in told, told
    assert f"{intent.price.normalize():f}, fee " in told, told


async def test_a_price_on_the_wrong_side_warns_and_fills_at_once_when_confirmed(
    bot: BotHarness,
) -> None:
    last = await _last(bot)
    message, cid = _card(await bot.send(TRADER, "/long BTC 100 5 @+1%"))
    text = message["text"]
    assert "1.00 % above the last price" in text and "(taker 0.055 %)" in text
    assert (
        "⚠️ A buy limit at or above the last price fills at once as taker, like a market order "
        f"(at {_shown(last)} or better). Confirm only if you mean that; otherwise Cancel and "
        f"give a price below {_shown(last)}."
    ) in text

    (done,) = texts(await bot.press(TRADER, message, f"ok:{cid}"))
    assert done.startswith("✅ Opened: LONG BTC/USDT:USDT · Paper"), done
    assert f"at {last:,f}".rstrip("0").rstrip(".") in done
    assert await _open_orders(bot) == []


async def test_post_only_refuses_a_price_that_would_take_and_marks_the_order(
    bot: BotHarness,
) -> None:
    (changed,) = texts(await bot.send(TRADER, "/set post_only on"))
    assert changed.startswith("✅ post_only is now on.")
    assert "post-only on (post_only)" in texts(await bot.send(TRADER, "/strategy"))[0]
    last = await _last(bot)

    (refused,) = texts(await bot.send(TRADER, "/short BTC 100 5 @-0.5%"))
    assert refused.startswith("Post-only is on, and a sell limit at ")
    assert f"Price it above {last:,f}, or /set post_only off to let it take." in refused
    assert await _intents(bot) == []

    message, _ = _card(await bot.send(TRADER, "/short BTC 100 5 @+0.5%"))
    assert "above the last price" in message["text"] and "(post-only)" in message["text"]
    done, cid = await _place(bot, "/short BTC 100 5 @+0.5%")
    assert done.startswith("📌 Limit order placed"), done
    placed = [i for i in await _intents(bot) if i.client_order_id == cid]
    assert placed[0].post_only is True and placed[0].status == "open"


async def test_the_paper_exchange_rejects_a_post_only_order_that_would_cross(
    bot: BotHarness,
) -> None:
    last = await _last(bot)
    above = _on_tick(last * Decimal("1.01"))
    request = OrderRequest(
        BTC, Side.BUY, OrderType.LIMIT, Decimal("0.001"), "tw-po-1", price=above, post_only=True
    )
    async with bot.services.exchanges.lease(TRADER, "paper", "paper") as client:
        with pytest.raises(InvalidOrder) as refused:
            await client.create_order(request)
        assert f"post-only buy order refused: its price {above} is at or above the last price" in (
            refused.value.message
        )
        resting = await client.create_order(
            OrderRequest(
                BTC, Side.BUY, OrderType.LIMIT, Decimal("0.001"), "tw-po-2",
                price=_on_tick(last * Decimal("0.99")), post_only=True,
            )
        )  # fmt: skip
        assert resting.filled_qty == 0 and resting.client_order_id == "tw-po-2"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("/long BTC 100 5 @", "PRICE is missing after @, e.g. @ 64000, @64k or @-1%. /long SYMBOL"),
        ("/long BTC 100 5 @ abc", "PRICE must be a price like 64000 or 64k, or a move from"),
        ("/long BTC 100 5 @ 1 @ 2", "PRICE must be a price like 64000"),
        ("/long BTC 100 5 @ 1e5", "PRICE must be a price like 64000"),
        ("/long BTC 100 5 @ -64000", "PRICE must be a price like 64000"),
        ("/long BTC 100 5 @ 2%", "Say which way 2% goes: -2% (below the last price) or +2%"),
        ("/long BTC 100 5 @-70%", "A move of -70% is out of range: from 0.01 % to 50 %"),
        ("/long BTC 100 5 @+0%", "A move of +0% is out of range"),
        ("/long BTC 100 5 @-0.001%", "A move of -0.001% is out of range"),
        ("/long BTC 100 5 @ 0.01", "0.01 rounds to 0 on the BTC/USDT:USDT tick of 0.1;"),
        ("/long BTC 100 5 @ 1", "is too far from the last price"),
        ("/short BTC 100 5 @ 1000k", "is too far from the last price"),
        ("/long BTC @ 64000", "/long SYMBOL USDT [LEVERAGE] — e.g. /long BTC 50 10; a limit"),
        ("/long BTC 100 5 6 @ 64000", "/long SYMBOL USDT [LEVERAGE]"),
        ("/long BTC abc @-1%", "The amount must be a plain number"),
    ],
)
async def test_bad_prices_get_a_reason_and_nothing_is_written(
    bot: BotHarness, text: str, expected: str
) -> None:
    (reply,) = texts(await bot.send(TRADER, text))
    assert expected in reply
    assert await _intents(bot) == []


async def test_new_limit_orders_need_a_licence(bot: BotHarness) -> None:
    (refused,) = texts(await bot.send(LAPSED, "/long BTC 100 5 @-1%"))
    assert refused == LICENCE_NEEDED
    assert await _intents(bot, LAPSED) == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("/set post_only maybe", "post_only must be on or off, e.g. /set post_only on."),
        ("/set autotrade_entry stop", "autotrade_entry must be market (enter at once) or limit"),
        ("/set autotrade_entry limit", "✅ autotrade_entry is now limit."),
        ("/set autotrade_entry MARKET", "✅ autotrade_entry is now market."),
        ("/set post_only off", "✅ post_only is now off."),
    ],
)
async def test_the_limit_settings_take_on_off_and_market_limit(
    bot: BotHarness, text: str, expected: str
) -> None:
    (reply,) = texts(await bot.send(TRADER, text))
    assert reply.startswith(expected), reply


async def test_a_limit_entry_for_auto_trade_says_how_long_it_rests(bot: BotHarness) -> None:
    await bot.send(TRADER, "/set limit_order_ttl_min 15")
    (reply,) = texts(await bot.send(TRADER, "/set autotrade_entry limit"))
    assert (
        "Auto-trade now rests a limit at the signal's price; it is cancelled after 15 min" in reply
    )
    strategy = texts(await bot.send(TRADER, "/strategy"))[0]
    assert "Auto-trade enters with a limit order (autotrade_entry)" in strategy
    assert "Limit orders cancelled after 15 min (limit_order_ttl_min), post-only off" in strategy


async def test_a_resting_paper_limit_survives_a_restart_and_expires(
    tmp_path: Path, clock: FakeClock
) -> None:
    async with running_bot(tmp_path, clock=clock) as bot:
        await bot.send(TRADER, "/start")
        await bot.services.accounts.connect(TRADER, "paper", "paper")
        await LicenseRepository(bot.store).extend(TRADER, 30, "pro", "grant", NOW)
        await bot.send(TRADER, "/set limit_order_ttl_min 3")
        done, cid = await _place(bot, "/long BTC 100 5 @-2%")
        assert done.startswith("📌 Limit order placed"), done
        state = bot.state

    clock.advance(4 * 60)
    async with running_bot(tmp_path, state=state, clock=clock) as bot:
        assert await _open_orders(bot) == [cid]  # the paper book kept it across the restart
        assert bot.app.job_queue is not None
        (job,) = bot.app.job_queue.get_jobs_by_name("order_expiry")
        await job.run(bot.app)
        call = await bot.state.wait_for_call(
            "sendMessage", lambda c: "Limit order expired" in str(c.params["text"])
        )
        assert str(call.params["text"]).endswith("Nothing had filled.")
        assert await _open_orders(bot) == []
        assert (await bot.services.order_expiry.expire_once()).due == 0
