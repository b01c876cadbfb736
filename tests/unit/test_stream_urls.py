"""TRADEWIND_EXCHANGE_URLS moves an exchange's websocket streams with its REST API: the
host of the base URL, the venue's own paths, ws for http and wss for https."""

from __future__ import annotations

import ccxt.pro as ccxt_pro

from core.exchange.streams import rebase_ws_urls


def test_bybit_streams_follow_a_rebased_http_url_with_their_own_paths() -> None:
    urls = rebase_ws_urls(ccxt_pro.bybit().urls["api"], "http://127.0.0.1:8900")
    assert urls["ws"]["public"]["linear"] == "ws://127.0.0.1:8900/v5/public/linear"
    assert urls["ws"]["private"]["contract"] == "ws://127.0.0.1:8900/v5/private"
    assert urls["public"].startswith("https://")  # REST is rebased by the venue, not here


def test_demo_streams_are_rebased_too_and_https_gives_wss() -> None:
    api = ccxt_pro.bybit()
    api.enable_demo_trading(True)
    urls = rebase_ws_urls(api.urls["api"], "https://proxy.example:443")
    assert urls["ws"]["private"]["contract"] == "wss://proxy.example:443/v5/private"
