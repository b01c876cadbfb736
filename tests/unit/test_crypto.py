"""Tests for core.crypto: context binding, rotation, and master key loading."""

from __future__ import annotations

import base64
import os
import stat
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from hypothesis import given
from hypothesis import strategies as st

from core.crypto import (
    SecretBox,
    SecretContext,
    SecretError,
    add_key_to_file,
    generate_key,
    load_master_keys,
)

SECRET = "sk-live-9f8e7d6c5b4a-DO-NOT-LEAK"
CTX = SecretContext(user_id=42, exchange="binance", account_type="futures")
K1 = generate_key()
K2 = generate_key()


def _flip_byte(token: str, index: int) -> str:
    raw = bytearray(base64.urlsafe_b64decode(token))
    raw[index] ^= 0x01
    return base64.urlsafe_b64encode(bytes(raw)).decode("ascii")


def test_round_trip() -> None:
    box = SecretBox([K1])
    token = box.encrypt(SECRET, CTX)
    assert isinstance(token, str)
    assert token.isascii()
    assert SECRET not in token
    assert box.decrypt(token, CTX) == SECRET


def test_empty_key_list_rejected() -> None:
    with pytest.raises(ValueError, match="at least one key"):
        SecretBox([])


@pytest.mark.parametrize("index", [10, 30, -1])  # IV, ciphertext, HMAC
def test_tampered_token_refused(index: int) -> None:
    box = SecretBox([K1])
    token = box.encrypt(SECRET, CTX)
    with pytest.raises(SecretError, match="authentication"):
        box.decrypt(_flip_byte(token, index), CTX)


def test_flipped_character_refused() -> None:
    box = SecretBox([K1])
    token = box.encrypt(SECRET, CTX)
    mid = len(token) // 2
    tampered = token[:mid] + ("A" if token[mid] != "A" else "B") + token[mid + 1 :]
    with pytest.raises(SecretError):
        box.decrypt(tampered, CTX)


@pytest.mark.parametrize("junk", ["", "not a token", "gAAAAA", "ünïcode", "A" * 100])
def test_malformed_token_refused(junk: str) -> None:
    with pytest.raises(SecretError, match="malformed"):
        SecretBox([K1]).decrypt(junk, CTX)


def test_wrong_key_refused() -> None:
    token = SecretBox([K1]).encrypt(SECRET, CTX)
    with pytest.raises(SecretError, match="authentication"):
        SecretBox([K2]).decrypt(token, CTX)


@pytest.mark.parametrize(
    ("other", "field"),
    [
        (SecretContext(43, "binance", "futures"), "user_id"),
        (SecretContext(42, "bybit", "futures"), "exchange"),
        (SecretContext(42, "binance", "spot"), "account_type"),
    ],
)
def test_token_moved_to_other_context_refused(other: SecretContext, field: str) -> None:
    box = SecretBox([K1])
    token = box.encrypt(SECRET, CTX)
    with pytest.raises(SecretError, match=f"different {field}") as info:
        box.decrypt(token, other)
    assert SECRET not in str(info.value)


def test_fields_cannot_spoof_each_other() -> None:
    # A naive "exchange|account_type" join would make these two the same plaintext.
    box = SecretBox([K1])
    token = box.encrypt(SECRET, SecretContext(1, 'a","a":"b', "c"))
    with pytest.raises(SecretError):
        box.decrypt(token, SecretContext(1, "a", "b"))


def test_rotation() -> None:
    old_box = SecretBox([K1])
    new_box = SecretBox([K2, K1])
    old_token = old_box.encrypt(SECRET, CTX)

    assert new_box.decrypt(old_token, CTX) == SECRET
    assert not new_box.is_current(old_token)
    assert new_box.key_id_of(old_token) == new_box.key_ids[1]

    new_token = new_box.rotate(old_token, CTX)
    assert new_box.is_current(new_token)
    assert new_box.key_id_of(new_token) == new_box.key_ids[0]
    assert SecretBox([K2]).decrypt(new_token, CTX) == SECRET
    with pytest.raises(SecretError):
        old_box.decrypt(new_token, CTX)


def test_rotate_checks_context() -> None:
    box = SecretBox([K2, K1])
    token = SecretBox([K1]).encrypt(SECRET, CTX)
    with pytest.raises(SecretError, match="different user_id"):
        box.rotate(token, SecretContext(7, "binance", "futures"))


def test_key_id_of_unknown_key_refused() -> None:
    token = SecretBox([K1]).encrypt(SECRET, CTX)
    box = SecretBox([K2])
    assert not box.is_current(token)
    with pytest.raises(SecretError, match="authentication"):
        box.key_id_of(token)


def test_secret_and_keys_not_in_repr_or_errors() -> None:
    box = SecretBox([K2, K1])
    token = box.encrypt(SECRET, CTX)
    texts = [repr(box), str(box), repr(CTX)]
    for other_box, tok, ctx in (
        (box, token, SecretContext(1, "x", "y")),
        (box, _flip_byte(token, 30), CTX),
        (SecretBox([generate_key()]), token, CTX),
    ):
        with pytest.raises(SecretError) as info:
            other_box.decrypt(tok, ctx)
        texts += [str(info.value), repr(info.value)]
        # Nothing chained either: a traceback must not show an inner error's details.
        assert info.value.__cause__ is None
        assert info.value.__context__ is None or info.value.__suppress_context__
    for text in texts:
        assert SECRET not in text
        assert K1.decode() not in text
        assert K2.decode() not in text


@pytest.mark.parametrize(
    "plain",
    [
        b"\x01{not json " + SECRET.encode(),
        b"\x01" + b'{"s":"%s"}' % SECRET.encode(),  # missing fields
        b'\x01{"a":"futures","s":"%s","u":true,"x":"binance"}' % SECRET.encode(),
        b"\x01\xff" + SECRET.encode(),  # not ASCII
        b"\x02" + SECRET.encode(),  # unknown format version
    ],
)
def test_bad_payload_under_valid_key_refused_without_leaking(plain: bytes) -> None:
    token = Fernet(K1).encrypt(plain).decode()
    with pytest.raises(SecretError) as info:
        SecretBox([K1]).decrypt(token, CTX)
    assert SECRET not in str(info.value)
    assert info.value.__context__ is None or info.value.__suppress_context__


# --- master keys ---------------------------------------------------------------------


def test_key_file_created_0600_and_reused(tmp_path: Path) -> None:
    key_file = tmp_path / "secrets" / "nested" / "master.key"
    keys = load_master_keys(None, key_file)
    assert len(keys) == 1
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert load_master_keys(None, key_file) == keys
    assert SecretBox(keys).decrypt(SecretBox(keys).encrypt(SECRET, CTX), CTX) == SECRET
    assert list(key_file.parent.iterdir()) == [key_file]  # no temp files left behind


def test_key_file_created_0600_despite_permissive_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        load_master_keys(None, tmp_path / "master.key")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "master.key").stat().st_mode) == 0o600


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660])
def test_permissive_key_file_refused(tmp_path: Path, mode: int) -> None:
    key_file = tmp_path / "master.key"
    load_master_keys(None, key_file)
    key_file.chmod(mode)
    with pytest.raises(ValueError, match="chmod 600") as info:
        load_master_keys(None, key_file)
    assert str(key_file) in str(info.value)


def test_key_file_comments_and_order(tmp_path: Path) -> None:
    key_file = tmp_path / "master.key"
    fd = os.open(key_file, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(f"# header\n\n{K2.decode()}\n  # old one:\n{K1.decode()}  \n")
    assert load_master_keys(None, key_file) == [K2, K1]


def test_bad_key_in_file_names_line(tmp_path: Path) -> None:
    key_file = tmp_path / "master.key"
    fd = os.open(key_file, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(f"{K2.decode()}\nhunter2-not-a-key\n")
    with pytest.raises(ValueError, match="line 2") as info:
        load_master_keys(None, key_file)
    assert "hunter2" not in str(info.value)


def test_env_keys_parsed_with_spaces(tmp_path: Path) -> None:
    key_file = tmp_path / "master.key"
    env = f"  {K2.decode()} ,\t{K1.decode()}\n"
    assert load_master_keys(env, key_file) == [K2, K1]
    assert not key_file.exists()  # env keys win; no file is created


@pytest.mark.parametrize(
    "bad",
    [
        "short",
        K1.decode()[:-1] + "!",  # right length, not base64
        K1.decode() + "AAAA",  # too long
        base64.urlsafe_b64encode(b"x" * 31).decode() + "=",  # decodes to the wrong size
    ],
)
def test_bad_env_key_rejected_without_echo(tmp_path: Path, bad: str) -> None:
    with pytest.raises(ValueError, match="position 2") as info:
        load_master_keys(f"{K2.decode()},{bad},{K1.decode()}", tmp_path / "master.key")
    message = str(info.value)
    assert bad not in message
    assert "44 url-safe base64" in message


def test_blank_env_value_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="empty"):
        load_master_keys("  ", tmp_path / "master.key")


def test_add_key_to_file_keeps_old_keys_and_mode(tmp_path: Path) -> None:
    key_file = tmp_path / "master.key"
    [old] = load_master_keys(None, key_file)
    token = SecretBox([old]).encrypt(SECRET, CTX)

    new = add_key_to_file(key_file)
    keys = load_master_keys(None, key_file)
    assert keys == [new, old]
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert key_file.read_text().startswith("#")  # header comment stays on top
    assert list(tmp_path.iterdir()) == [key_file]

    box = SecretBox(keys)
    assert box.decrypt(token, CTX) == SECRET
    assert box.is_current(box.rotate(token, CTX))


def test_add_key_to_permissive_file_refused(tmp_path: Path) -> None:
    key_file = tmp_path / "master.key"
    load_master_keys(None, key_file)
    key_file.chmod(0o644)
    with pytest.raises(ValueError, match="chmod 600"):
        add_key_to_file(key_file)


# --- property ------------------------------------------------------------------------

_PROP_BOX = SecretBox([K2, K1])  # module level: hypothesis reruns the body many times


@given(
    secret=st.text(),
    user_id=st.integers(min_value=-(2**63), max_value=2**63 - 1),
    exchange=st.text(),
    account_type=st.text(),
)
def test_round_trip_property(secret: str, user_id: int, exchange: str, account_type: str) -> None:
    ctx = SecretContext(user_id, exchange, account_type)
    token = _PROP_BOX.encrypt(secret, ctx)
    assert _PROP_BOX.decrypt(token, ctx) == secret
    assert _PROP_BOX.is_current(token)
    with pytest.raises(SecretError):
        _PROP_BOX.decrypt(token, SecretContext(user_id + 1, exchange, account_type))
