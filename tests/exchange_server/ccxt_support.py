"""Pointing an unmodified ``ccxt.async_support.bybit`` at the local exchange server.

How ccxt builds bybit URLs (ccxt 4.5.x, ``bybit.sign``)::

    url = implode_hostname(self.urls['api'][api[0]]) + '/' + path

where ``api[0]`` is the *API group* of the implicit endpoint: every v5 endpoint is in
group ``'public'`` (``/v5/market/*``) or ``'private'`` (everything signed). The
``urls['api']`` dict also carries ``'spot'``, ``'futures'`` and ``'v2'`` keys
(``https://api.{hostname}``) that no v5 endpoint uses today; we override all five so a
future ccxt that routes something through them still cannot reach the internet. The same
dict is copied into ``urls['test']`` and ``urls['demotrading']`` because
``set_sandbox_mode(True)`` / ``enable_demo_trading(True)`` swap those into ``urls['api']``.

No ccxt option is *required*. ``load_markets`` calls, unsigned, ``/v5/market/instruments-info``
for spot, linear (+ ``status=PreLaunch``), inverse (+ PreLaunch) and option (6 base coins);
the server answers the non-linear categories with empty lists. With credentials it also
calls the signed ``/v5/asset/coin/query-info`` because ``has['fetchCurrencies']`` is True
(an ``options['fetchCurrencies']`` key is *not* consulted by ccxt; pass
``fetch_currencies=False`` here to flip the ``has`` flag on this instance). The first
private trading/balance call runs ``is_unified_enabled`` → ``/v5/user/query-api`` +
``/v5/account/info`` (answered: UTA, unifiedMarginStatus 6); pre-setting the options
``enableUnifiedAccount=True, enableUnifiedMargin=False`` skips those two requests.
``fetchMarkets={'types': ['linear']}`` cuts ``load_markets`` from 11 requests to 2.

ccxt's client-side throttle (``enableRateLimit``) is *off* by default here: with it on,
``load_markets`` alone waits ~1.6 s. Pass ``enable_rate_limit=True`` for ccxt's default.
"""

from __future__ import annotations

from typing import Any

import ccxt.async_support as ccxt_async

URL_KEYS = ("spot", "futures", "v2", "public", "private")


def bybit_url_overrides(base_url: str) -> dict[str, str]:
    """The ``exchange.urls['api']`` dict that routes every ccxt bybit API group to ``base_url``."""
    base = base_url.rstrip("/")
    return dict.fromkeys(URL_KEYS, base)


def make_ccxt_bybit(
    base_url: str,
    api_key: str | None = None,
    secret: str | None = None,
    *,
    timeout_ms: int = 10_000,
    enable_rate_limit: bool = False,
    fetch_currencies: bool = True,
    close_delay_ms: int = 0,
    **options: Any,
) -> ccxt_async.bybit:
    """A real ``ccxt.async_support.bybit`` whose every URL points at ``base_url``.

    ``options`` are merged into ``exchange.options`` (e.g. ``recvWindow=5000``,
    ``timeDifference=…``, ``fetchMarkets={'types': ['linear']}``). The caller owns the
    client and must ``await exchange.close()``. ``close()`` normally sleeps 250 ms
    (``timeout_on_exit``, for TLS shutdown); the server is plain HTTP, so that defaults to 0.
    """
    config: dict[str, Any] = {"timeout": timeout_ms, "enableRateLimit": enable_rate_limit}
    if api_key is not None:
        config["apiKey"] = api_key
    if secret is not None:
        config["secret"] = secret
    if options:
        config["options"] = options
    exchange = ccxt_async.bybit(config)
    overrides = bybit_url_overrides(base_url)
    exchange.urls["api"] = dict(overrides)
    exchange.urls["test"] = dict(overrides)
    exchange.urls["demotrading"] = dict(overrides)
    exchange.timeout_on_exit = close_delay_ms
    if not fetch_currencies:
        exchange.has["fetchCurrencies"] = False
    return exchange
