"""What the log filter masks: registered secrets while they live, and secret-shaped fields."""

from __future__ import annotations

import gc
import logging
import threading

import pytest

from bot.logs import RedactingFilter
from core.exchange.credentials import ApiCredentials
from core.redaction import SECRETS, SecretRegistry, redact


class Owner:
    """Anything that holds secrets, like a ccxt client."""


def test_registered_values_are_masked_while_their_owner_lives() -> None:
    registry = SecretRegistry()
    client, other = Owner(), Owner()
    registry.hold(client, "api-key-0001", "api-secret-0002", None, "")
    registry.hold(other, "api-key-0001", "short")  # the same key held twice; too short to mask
    text = "key api-key-0001 secret api-secret-0002 short"
    assert redact(text, registry) == "key *** secret *** short"
    del client
    gc.collect()
    assert "api-key-0001" in registry and "api-secret-0002" not in registry
    del other
    gc.collect()
    assert len(registry) == 0
    assert redact(text, registry) == text


def test_decrypted_credentials_register_themselves_until_dropped() -> None:
    credentials = ApiCredentials("cred-key-1234", "cred-secret-5678", "cred phrase")
    assert redact("cred-key-1234/cred-secret-5678/cred phrase") == "***/***/***"
    del credentials
    gc.collect()
    assert "cred-key-1234" not in SECRETS


def test_a_longer_secret_is_masked_whole_not_around_a_shorter_one() -> None:
    registry = SecretRegistry()
    registry.keep("abcdef", "abcdef-ghijkl")
    assert redact("[abcdef-ghijkl]", registry) == "[***]"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "POST https://api.telegram.org/bot123456789:AAF1k2m3n4o5p6q7r8s9t0uvwxyzABCDEFG/getMe",
            "POST https://api.telegram.org/bot***/getMe",
        ),
        (
            """{'update_id': 1, 'message': {'text': 'key-with-\\'quote'}}""",
            "{'update_id': 1, 'message': {'text': '***'}}",
        ),
        ('{"text": "a \\"b\\" c", "caption": "pic"}', """{"text": '***', "caption": '***'}"""),
        ("""Message(chat_id=1, text="it's the key")""", "Message(chat_id=1, text='***')"),
        (
            "{'X-BAPI-API-KEY': 'k1', 'X-BAPI-SIGN': 's1'}",
            "{'X-BAPI-API-KEY': '***', 'X-BAPI-SIGN': '***'}",
        ),
        ("ok-access-passphrase: my phrase\nnext", "ok-access-passphrase: '***'\nnext"),
        ("{'OK-ACCESS-PASSPHRASE': 'my phrase'}", "{'OK-ACCESS-PASSPHRASE': '***'}"),
        (
            "/fapi/v2/balance?timestamp=1&signature=ab12cd",
            "/fapi/v2/balance?timestamp=1&signature=***",
        ),
        ("a=1&api_key=k9&sign=zz", "a=1&api_key=***&sign=***"),
        ("job market_scan: 12.5 ms, 3 signals", "job market_scan: 12.5 ms, 3 signals"),
    ],
)
def test_secret_shapes_are_masked(text: str, expected: str) -> None:
    assert redact(text, SecretRegistry()) == expected


def test_filter_masks_message_arguments_and_traceback_once() -> None:
    registry_value = ApiCredentials("filter-key-9999", "filter-secret-8888")
    try:
        raise ValueError("refused filter-key-9999")
    except ValueError as exc:
        error = exc
    record = logging.LogRecord(
        "x",
        logging.ERROR,
        __file__,
        1,
        "login %s with %r",
        ("filter-key-9999", {"text": "hi"}),
        None,
    )
    record.exc_info = (ValueError, error, error.__traceback__)
    assert RedactingFilter().filter(record)
    assert record.getMessage() == "login *** with {'text': '***'}"
    assert record.exc_text is not None and "refused ***" in record.exc_text
    assert RedactingFilter().filter(record)  # a second handler's filter changes nothing
    assert record.getMessage() == "login *** with {'text': '***'}"
    del registry_value


@pytest.mark.parametrize(
    "value", ["sixsix", "ten-chars!", "eleven-char", "a-long-api-secret-0123456789"]
)
def test_a_value_is_found_at_any_offset_among_thousands(value: str) -> None:
    registry = SecretRegistry()
    owners = [Owner() for _ in range(1000)]
    for i, owner in enumerate(owners):
        registry.hold(owner, f"key-{i:08d}-abcdef", f"secret-{i:010d}-0123456789abcdef")
    registry.keep(value)
    for offset in range(14):
        text = "x" * offset + value + "-tail"
        assert redact(text, registry) == "x" * offset + "***-tail", offset
    assert redact("key-00000417-abcdef", registry) == "***"


def test_an_owner_collected_while_the_registry_is_locked_does_not_deadlock() -> None:
    """A collection can run a finalizer inside any allocation, also while this thread holds
    the registry's lock (as `_rebuild` allocating its index did): the finalizer must not
    take that lock. Run in a thread so a regression fails instead of hanging the suite."""
    registry = SecretRegistry()

    class Owner:
        pass

    owner = Owner()
    registry.hold(owner, "short-lived-secret-1")
    assert registry.mask("x short-lived-secret-1 y") == "x *** y"

    def collect_while_locked() -> None:
        nonlocal owner
        with registry._lock:
            del owner
            gc.collect()

    worker = threading.Thread(target=collect_while_locked, daemon=True)
    worker.start()
    worker.join(timeout=5)
    assert not worker.is_alive(), "the finalizer waited for the lock its own thread held"
    assert "short-lived-secret-1" not in registry
    assert registry.mask("x short-lived-secret-1 y") == "x short-lived-secret-1 y"
