"""Small renderers shared by handlers: licence lines, numbers, durations, message splitting."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Context, Decimal
from html import escape

from core.exchange.venues import title
from services.licenses import LicenseState, LicenseStatus

MAX_MESSAGE = 4096


def license_line(state: LicenseState) -> str:
    """One line about the caller's licence, HTML."""
    if state.status is LicenseStatus.ACTIVE and state.end_at is not None:
        days = "1 day" if state.days_left == 1 else f"{state.days_left} days"
        until = state.end_at.strftime("%Y-%m-%d %H:%M UTC")
        return f"Licence: <b>{state.plan}</b>, active until {until} ({days} left)."
    if state.status is LicenseStatus.NONE:
        return (
            "Licence: none yet. You can look around and connect an account; opening "
            "positions needs a licence (/redeem a promo code or ask an admin)."
        )
    ended = "revoked" if state.status is LicenseStatus.REVOKED else "expired"
    return (
        f"Licence: <b>{ended}</b>. You can still view, close and cancel everything; "
        "opening new positions needs a renewed licence."
    )


def licence_about(state: LicenseState) -> str:
    """The licence of a trader as an admin reads it (third person), HTML."""
    if state.status is LicenseStatus.ACTIVE:
        return license_line(state)
    if state.status is LicenseStatus.NONE:
        return "Licence: none yet (may look around and connect; cannot open positions)."
    ended = "revoked" if state.status is LicenseStatus.REVOKED else "expired"
    return f"Licence: <b>{ended}</b> (may still view, close and cancel; cannot open new positions)."


def duration(seconds: float) -> str:
    """Human duration: 45 s, 12 min, 3 h 5 min, 2 d 4 h."""
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, _ = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


def split_message(text: str, limit: int = MAX_MESSAGE) -> list[str]:
    """Split text on line boundaries into chunks of at most `limit` characters.

    A single line longer than the limit is cut hard, which only happens for pathological
    input; list renderers keep their lines short.
    """
    chunks: list[str] = []
    current: list[str] = []
    size = 0
    for line in text.split("\n"):
        while len(line) > limit:
            if current:
                chunks.append("\n".join(current))
                current, size = [], 0
            chunks.append(line[:limit])
            line = line[limit:]
        extra = len(line) + (1 if current else 0)
        if size + extra > limit:
            chunks.append("\n".join(current))
            current, size = [line], len(line)
        else:
            current.append(line)
            size += extra
    if current:
        chunks.append("\n".join(current))
    return chunks


def usdt(amount: Decimal) -> str:
    """10000 → 10,000; 1234.5 → 1,234.50: an amount of USDT as a trader writes it."""
    cents = amount.quantize(Decimal("0.01"))
    return f"{cents:,.0f}" if cents == cents.to_integral_value() else f"{cents:,.2f}"


def refused_keys(exchange: str) -> str:
    """The exchange refused the keys. Not its own words: Bybit echoes the API key in them."""
    return (
        f"{title(exchange)} refused the keys. Check the key, secret (and passphrase), and "
        "that the key may read and trade from any IP."
    )


def money(value: Decimal, places: int = 2) -> str:
    """10,000.00: an amount of quote currency, two decimals (or `places`), thousands
    separated."""
    return _fixed(value, places)


def signed(value: Decimal) -> str:
    """+12.34, -12.34 or 0.00: money with its sign, for profit and loss."""
    text = money(value)
    return text if text.startswith("-") or text == "0.00" else f"+{text}"


def pct(value: Decimal) -> str:
    """+1.23%, -0.50%, 0.00%: a signed percentage."""
    text = _fixed(value, 2)
    return f"{text}%" if text.startswith("-") or text == "0.00" else f"+{text}%"


def price(value: Decimal, tick: Decimal | None = None) -> str:
    """A price with the instrument's digits: 60,123.4 on a 0.1 tick, 0.004512 on 0.000001.

    Without a tick, six significant digits (at least two decimals), trailing zeros dropped.
    """
    if tick:
        return _fixed(value, _places(tick))
    places = max(2, 5 - value.adjusted()) if value else 2
    text = _fixed(value, min(places, 12))
    while text.endswith("0") and len(text.partition(".")[2]) > 2:
        text = text[:-1]
    return text


def level(value: Decimal | None, tick: Decimal | None = None) -> str:
    """A TP, SL or liquidation price, or — for none. Bybit sends 0 for "not set"."""
    if not value:
        return "—"
    return price(value, tick) if tick else exact(value)


def symbol(name: str) -> str:
    """A symbol as traders read it everywhere (cards, lists, replies): the unified
    BTC/USDT:USDT, the form the services' own messages use too. HTML-escaped."""
    return escape(name)


def base(name: str) -> str:
    """The base asset of a symbol (BTC of BTC/USDT:USDT), the unit of its quantities."""
    return escape(name.split("/")[0])


def quantity(value: Decimal) -> str:
    """A size as traded, trailing zeros dropped: 0.01, 1,200, 0. One form everywhere (lists,
    cards, fills), since a fill or a notice knows no lot size to pad to."""
    return exact(value)


def exact(value: Decimal) -> str:
    """A number as precise as it is, trailing zeros dropped, thousands separated: a fill
    price (60,000 or 0.00451), where no tick size says how many digits to show."""
    return _fixed(value, _places(value)) if value else "0"


def _places(step: Decimal) -> int:
    """Decimal places of a tick or lot size: 0.001 → 3, 0.5 → 1, 10 → 0."""
    exponent = step.normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


def _fixed(value: Decimal, places: int) -> str:
    # A wide context: the default 28 digits would refuse a huge amount shown to 12 places.
    rounded = value.quantize(Decimal(1).scaleb(-places), ROUND_HALF_UP, Context(prec=60))
    if not rounded:
        rounded = abs(rounded)  # never show -0.00
    return f"{rounded:,.{places}f}"
