"""Encryption at rest for traders' exchange API secrets.

Binding: Fernet (AES-128-CBC + HMAC-SHA256) authenticates only the token, and has no
associated data. So the owner's context (user id, exchange, account type) goes *inside*
the authenticated plaintext as ``b"\\x01" + JSON {"a","s","u","x"}`` and is compared on
decrypt. A token copied to another user's, exchange's or account type's row then fails:
the attacker cannot re-encrypt it without the key. JSON escaping keeps fields unambiguous.

Rotation: keys are newest first. The first key encrypts; every key decrypts. To rotate,
``add_key_to_file`` first (old tokens still decrypt), then ``rotate`` every stored token
in one transaction, then (later, once nothing old remains) drop the old key from the file.
Doing it in that order means a crash at any step leaves every token decryptable.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from core.files import private_dir

_FORMAT_V1 = b"\x01"
_FIELDS = frozenset({"u", "x", "a", "s"})
# 0x80 version + 8-byte time + 16-byte IV + ciphertext (16-byte blocks, >= 1) + 32-byte HMAC.
_TOKEN_OVERHEAD = 1 + 8 + 16 + 32
_KEY_HINT = "a Fernet key is 44 url-safe base64 characters (32 random bytes, ending in =)"
_AUTH_FAILED = "token failed authentication: tampered, or made with a key not loaded"
_FILE_HEADER = "# Tradewind master keys, newest first; older keys only decrypt. Keep mode 0600.\n"


class SecretError(Exception):
    """A stored secret cannot be decrypted. Messages never contain the secret or a key."""


@dataclass(frozen=True, slots=True)
class SecretContext:
    """Whose secret this is; a token decrypts only under the context it was made with."""

    user_id: int
    exchange: str
    account_type: str


def generate_key() -> bytes:
    """Return a fresh random Fernet key (44 url-safe base64 bytes)."""
    return Fernet.generate_key()


def key_id(key: bytes) -> str:
    """A short public fingerprint of a key, safe to log (hash prefix of a 256-bit key)."""
    return hashlib.sha256(b"tradewind-key-id:" + key).hexdigest()[:12]


class SecretBox:
    """Encrypts secrets under the newest key, decrypts under any, checking the context."""

    def __init__(self, keys: Sequence[bytes]) -> None:
        if not keys:
            raise ValueError("SecretBox needs at least one key")
        self._fernets = [Fernet(k) for k in keys]
        self._multi = MultiFernet(self._fernets)
        self.key_ids: tuple[str, ...] = tuple(key_id(k) for k in keys)

    def __repr__(self) -> str:
        return f"SecretBox(keys={len(self.key_ids)}, current={self.key_ids[0]})"

    def encrypt(self, secret: str, ctx: SecretContext) -> str:
        doc = {"u": ctx.user_id, "x": ctx.exchange, "a": ctx.account_type, "s": secret}
        # ensure_ascii escapes every non-ASCII char (even lone surrogates), so any str
        # round-trips and the plaintext is plain bytes; sort_keys makes it deterministic.
        body = json.dumps(doc, ensure_ascii=True, sort_keys=True, separators=(",", ":"))
        return self._multi.encrypt(_FORMAT_V1 + body.encode("ascii")).decode("ascii")

    def decrypt(self, token: str, ctx: SecretContext) -> str:
        _check_shape(token)
        try:
            plain = self._multi.decrypt(token)
        except InvalidToken:
            raise SecretError(_AUTH_FAILED) from None
        doc = _parse_plaintext(plain)
        got = SecretContext(doc["u"], doc["x"], doc["a"])
        if got != ctx:  # name the mismatched fields, never their values
            wrong = [f for f in got.__slots__ if getattr(got, f) != getattr(ctx, f)]
            raise SecretError(f"token belongs to a different {', '.join(wrong)}")
        secret: str = doc["s"]
        return secret

    def rotate(self, token: str, ctx: SecretContext) -> str:
        """Re-encrypt under the newest key; the context is checked, not just copied."""
        return self.encrypt(self.decrypt(token, ctx), ctx)

    def key_id_of(self, token: str) -> str:
        """Fingerprint of the loaded key that made ``token`` (HMAC check only, no decrypt)."""
        _check_shape(token)
        for kid, fernet in zip(self.key_ids, self._fernets, strict=True):
            try:
                fernet.extract_timestamp(token)  # verifies the HMAC under this key
            except InvalidToken:
                continue
            return kid
        raise SecretError(_AUTH_FAILED)

    def is_current(self, token: str) -> bool:
        """Whether the newest key made ``token``; False means ``rotate`` it."""
        _check_shape(token)
        try:
            self._fernets[0].extract_timestamp(token)
        except InvalidToken:
            return False
        return True


def _check_shape(token: str) -> None:
    # Fernet alone says "InvalidToken" for everything; telling malformed input apart from
    # a failed HMAC makes a corrupted DB column much quicker to diagnose.
    try:
        raw = base64.b64decode(token, altchars=b"-_", validate=True)
    except (ValueError, TypeError):  # binascii.Error and non-ASCII str are ValueErrors
        raise SecretError("malformed token: not url-safe base64") from None
    body = len(raw) - _TOKEN_OVERHEAD
    if body < 16 or body % 16 or raw[0] != 0x80:
        raise SecretError("malformed token: not a Fernet token")


def _parse_plaintext(plain: bytes) -> dict[str, Any]:
    # `from None` everywhere: JSON/Unicode errors carry the plaintext (and so the secret).
    if plain[:1] != _FORMAT_V1:
        raise SecretError("unsupported secret format version")
    try:
        doc = json.loads(plain[1:].decode("ascii"))
    except ValueError:
        raise SecretError("malformed secret payload") from None
    if (
        not isinstance(doc, dict)
        or doc.keys() != _FIELDS
        or type(doc["u"]) is not int  # bool is an int subclass; refuse it
        or not all(isinstance(doc[f], str) for f in ("x", "a", "s"))
    ):
        raise SecretError("malformed secret payload")
    return doc


def _validate_key(text: str, where: str) -> bytes:
    key = text.strip()
    try:
        ok = len(key) == 44 and len(base64.b64decode(key, altchars=b"-_", validate=True)) == 32
    except ValueError:  # binascii.Error and non-ASCII input are both ValueErrors
        ok = False
    if not ok:  # never echo the value: it may be a real key with a typo
        raise ValueError(f"invalid master key at {where}: {_KEY_HINT}")
    return key.encode("ascii")


def load_master_keys(env_value: str | None, key_file: Path) -> list[bytes]:
    """Keys from ``env_value`` (comma-separated) if set, else from ``key_file``, newest first.

    The key file is created with one fresh key on first run.
    """
    if env_value is not None:
        # A blank variable is refused rather than ignored: silently falling back to (or
        # creating) a key file would split secrets across two unrelated keys.
        if not env_value.strip():
            raise ValueError("master key variable is set but empty; unset it or give keys")
        return [
            _validate_key(p, f"position {i} (1 = newest)")
            for i, p in enumerate(env_value.split(","), 1)
        ]
    try:
        return _parse_keys(_read_key_text(key_file), key_file)
    except FileNotFoundError:
        private_dir(key_file.parent)
        key = generate_key()
        try:
            _write_new_file(key_file, _FILE_HEADER + key.decode("ascii") + "\n", replace=False)
        except FileExistsError:  # another process won the first-run race; use its key
            return _parse_keys(_read_key_text(key_file), key_file)
        return [key]


def add_key_to_file(key_file: Path) -> bytes:
    """Prepend a fresh key to ``key_file``, keeping older keys for decryption; return it."""
    text = _read_key_text(key_file)
    _parse_keys(text, key_file)  # refuse a corrupt file before building on it
    lines = text.splitlines(keepends=True)
    head = 0  # keep the leading comment block on top
    while head < len(lines) and lines[head].lstrip().startswith("#"):
        head += 1
    key = generate_key()
    lines.insert(head, key.decode("ascii") + "\n")
    _write_new_file(key_file, "".join(lines), replace=True)
    return key


def _read_key_text(key_file: Path) -> str:
    fd = os.open(key_file, os.O_RDONLY)
    # utf-8, not ascii: a stray non-ASCII char then fails key validation with a line number.
    with os.fdopen(fd, encoding="utf-8") as fh:
        mode = os.fstat(fd).st_mode  # of the file actually opened, not a path re-check
        if mode & 0o077:
            raise ValueError(
                f"master key file {key_file} is accessible by group/others "
                f"(mode {mode & 0o777:o}); run: chmod 600 {key_file}"
            )
        return fh.read()


def _parse_keys(text: str, key_file: Path) -> list[bytes]:
    keys = [
        _validate_key(line, f"{key_file} line {n}")
        for n, line in enumerate(text.splitlines(), 1)
        if line.strip() and not line.lstrip().startswith("#")
    ]
    if not keys:
        raise ValueError(f"master key file {key_file} has no keys")
    return keys


def _write_new_file(path: Path, text: str, *, replace: bool) -> None:
    # Write a 0600 temp file (O_EXCL: no umask race, no following a planted symlink), then
    # publish it in one step: link() never clobbers a concurrent first run; replace() swaps.
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    fd = os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        if replace:
            os.replace(tmp, path)
        else:
            os.link(tmp, path)
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)  # make the new directory entry durable too
        finally:
            os.close(dir_fd)
    finally:
        tmp.unlink(missing_ok=True)
