"""Telegram's text rules for the offline Bot API: the HTML ``parse_mode`` subset and limits.

`parse_html` follows the rules of tdlib (the library behind the Bot API server): it returns the
plain text and Bot API ``MessageEntity`` dicts (UTF-16 offsets), or raises `HtmlParseError` with
the same wording Telegram uses after ``"Bad Request: can't parse entities: "``.

It is deliberately a little stricter than Telegram in one respect: a bare ``&`` that does not
start a supported character reference (``&lt;`` ``&gt;`` ``&amp;`` ``&quot;`` ``&#NN;``
``&#xNN;``) is rejected. Telegram keeps such text literally, but the Bot API documentation
requires escaping, and un-escaped user input is exactly the bug this check should surface.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

__all__ = [
    "MAX_CALLBACK_DATA_BYTES",
    "MAX_TEXT_LENGTH",
    "HtmlParseError",
    "TelegramBadRequest",
    "check_commands",
    "check_reply_markup",
    "check_text",
    "parse_html",
    "utf16_len",
]

MAX_TEXT_LENGTH = 4096
MAX_CALLBACK_DATA_BYTES = 64


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


_SUPPORTED_TAGS = _words(
    "a b strong i em u ins s strike del span tg-spoiler tg-emoji code pre blockquote"
)
_SIMPLE_TYPES = dict.fromkeys(("b", "strong"), "bold") | dict.fromkeys(("i", "em"), "italic")
_SIMPLE_TYPES |= dict.fromkeys(("u", "ins"), "underline")
_SIMPLE_TYPES |= dict.fromkeys(("s", "strike", "del"), "strikethrough")
_SIMPLE_TYPES |= dict.fromkeys(("span", "tg-spoiler"), "spoiler")
_BUTTON_ACTIONS = _words(
    "url callback_data web_app login_url switch_inline_query switch_inline_query_current_chat "
    "switch_inline_query_chosen_chat copy_text callback_game pay"
)
_COMMAND_NAME = re.compile(r"[a-z0-9_]{1,32}")
_NAMED_ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_SPACES = " \t\r\n\f\v"


class TelegramBadRequest(ValueError):
    """A request Telegram rejects with 400; ``str(exc)`` follows ``"Bad Request: "``."""


class HtmlParseError(ValueError):
    """The text is not valid Telegram HTML; ``str(exc)`` is Telegram's own description."""


def utf16_len(text: str) -> int:
    """Length of ``text`` in UTF-16 code units, the unit of Bot API entity offsets."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


@dataclass(slots=True)
class _OpenTag:
    name: str
    attributes: dict[str, str]
    utf16_offset: int


class _Parser:
    __slots__ = ("_out", "_pos", "_src", "_stack", "_strict", "_utf16", "entities")

    def __init__(self, source: str, strict_entities: bool) -> None:
        self._src = source
        self._strict = strict_entities
        self._pos = 0
        self._out: list[str] = []
        self._utf16 = 0
        self._stack: list[_OpenTag] = []
        self.entities: list[dict[str, Any]] = []

    # -- helpers -----------------------------------------------------------------------------
    def _at(self, index: int) -> str:
        return self._src[index] if index < len(self._src) else ""

    def _byte_offset(self, index: int) -> int:
        return len(self._src[:index].encode("utf-8", "surrogatepass"))

    def _emit(self, char: str) -> None:
        self._out.append(char)
        self._utf16 += 2 if ord(char) > 0xFFFF else 1

    def _decode_reference(self, index: int) -> tuple[str, int] | None:
        """Decode a character reference starting at ``&``; returns (char, next index)."""
        end = index + 1
        if self._at(end) == "#":
            end += 1
            hexadecimal = self._at(end) == "x"
            end += hexadecimal
            digits, base = ("0123456789abcdefABCDEF", 16) if hexadecimal else ("0123456789", 10)
            start = end
            while self._at(end) and self._at(end) in digits:
                end += 1
            if end == start or end - index >= 10:
                return None
            code = int(self._src[start:end], base)
            if code == 0 or code >= 0x10FFFF or 0xD800 <= code <= 0xDFFF:
                return None
            char = chr(code)
        else:
            while self._at(end).isascii() and self._at(end).isalpha():
                end += 1
            name = self._src[index + 1 : end]
            if name not in _NAMED_ENTITIES:
                return None
            char = _NAMED_ENTITIES[name]
        return char, end + 1 if self._at(end) == ";" else end

    def _reference_or_error(self, index: int) -> tuple[str, int] | None:
        decoded = self._decode_reference(index)
        if decoded is None and self._strict:
            raise HtmlParseError(
                f'Unescaped "&" at byte offset {self._byte_offset(index)}; '
                'use "&amp;" (offline Bot API check)'
            )
        return decoded

    def _skip_spaces(self) -> None:
        while self._at(self._pos) and self._at(self._pos) in _SPACES:
            self._pos += 1

    # -- parsing -----------------------------------------------------------------------------
    def run(self) -> str:
        src = self._src
        while self._pos < len(src):
            char = src[self._pos]
            if char == "&":
                decoded = self._reference_or_error(self._pos)
                if decoded is not None:
                    self._emit(decoded[0])
                    self._pos = decoded[1]
                    continue
            if char != "<":
                self._emit(char)
                self._pos += 1
            elif self._at(self._pos + 1) == "/":
                self._end_tag()
            else:
                self._start_tag()
        if self._stack:
            raise HtmlParseError(
                f'Can\'t find end tag corresponding to start tag "{self._stack[-1].name}"'
            )
        return "".join(self._out)

    def _start_tag(self) -> None:
        begin = self._pos
        self._pos += 1
        while self._at(self._pos) and self._at(self._pos) not in _SPACES + ">":
            self._pos += 1
        if not self._at(self._pos):
            raise HtmlParseError(f"Unclosed start tag at byte offset {self._byte_offset(begin)}")
        name = self._src[begin + 1 : self._pos].lower()
        at_offset = f"at byte offset {self._byte_offset(begin)}"
        where = f'"{name}" {at_offset}'
        if name not in _SUPPORTED_TAGS:
            raise HtmlParseError(f"Unsupported start tag {where}")
        attributes: dict[str, str] = {}
        while self._at(self._pos) != ">":
            self._skip_spaces()
            if self._at(self._pos) == ">":
                break
            if not self._at(self._pos):
                raise HtmlParseError(f"Unclosed start tag {where}")
            attr_begin = self._pos
            while self._at(self._pos) and self._at(self._pos) not in _SPACES + "=>":
                self._pos += 1
            attr_name = self._src[attr_begin : self._pos].lower()
            if not attr_name:
                raise HtmlParseError(f"Empty attribute name in the tag {where}")
            self._skip_spaces()
            if not self._at(self._pos):
                raise HtmlParseError(f"Unclosed start tag {where}")
            if self._at(self._pos) != "=":
                attributes[attr_name] = ""  # a value-less attribute such as `expandable`
                continue
            self._pos += 1
            self._skip_spaces()
            if not self._at(self._pos):
                raise HtmlParseError(f"Unclosed start tag {where}")
            attributes[attr_name] = self._attribute_value()
            if not self._at(self._pos):
                raise HtmlParseError(
                    f"Unclosed start tag at byte offset {self._byte_offset(begin)}"
                )
        self._pos += 1  # the '>'
        if name == "span" and attributes.get("class") != "tg-spoiler":
            raise HtmlParseError(f'Tag "span" must have class "tg-spoiler" {at_offset}')
        self._stack.append(_OpenTag(name, attributes, self._utf16))

    def _attribute_value(self) -> str:
        quote = self._at(self._pos)
        if quote not in ("'", '"'):
            begin = self._pos
            while self._at(self._pos).isascii() and (
                self._at(self._pos).isalnum() or self._at(self._pos) in ".-"
            ):
                self._pos += 1
            if self._at(self._pos) not in (*_SPACES, ">"):
                raise HtmlParseError(
                    f"Unexpected end of name token at byte offset {self._byte_offset(begin)}"
                )
            return self._src[begin : self._pos].lower()
        self._pos += 1
        value: list[str] = []
        while self._at(self._pos) and self._at(self._pos) != quote:
            if self._at(self._pos) == "&":
                decoded = self._reference_or_error(self._pos)
                if decoded is not None:
                    value.append(decoded[0])
                    self._pos = decoded[1]
                    continue
            value.append(self._src[self._pos])
            self._pos += 1
        if self._at(self._pos) == quote:
            self._pos += 1
        return "".join(value)

    def _end_tag(self) -> None:
        begin = self._pos
        where = f"at byte offset {self._byte_offset(begin)}"
        if not self._stack:
            raise HtmlParseError(f"Unexpected end tag {where}")
        self._pos += 2
        while self._at(self._pos) and self._at(self._pos) not in _SPACES + ">":
            self._pos += 1
        end_name = self._src[begin + 2 : self._pos].lower()
        self._skip_spaces()
        if self._at(self._pos) != ">":
            raise HtmlParseError(f"Unclosed end tag {where}")
        self._pos += 1
        tag = self._stack.pop()
        if end_name and end_name != tag.name:
            raise HtmlParseError(
                f'Unmatched end tag {where}, expected "</{tag.name}>", found "</{end_name}>"'
            )
        length = self._utf16 - tag.utf16_offset
        if length > 0:
            self._add_entity(tag, length)

    def _add_entity(self, tag: _OpenTag, length: int) -> None:
        entity: dict[str, Any] = {"offset": tag.utf16_offset, "length": length}
        if tag.name in _SIMPLE_TYPES:
            entity["type"] = _SIMPLE_TYPES[tag.name]
        elif tag.name == "a":
            url = tag.attributes.get("href", "")
            if not url:
                return
            entity.update(
                type="text_link", url=url if "://" in url or ":" in url else f"http://{url}"
            )
        elif tag.name == "tg-emoji":
            emoji_id = tag.attributes.get("emoji-id", "")
            if not emoji_id.isdigit():
                raise HtmlParseError("Invalid custom emoji identifier specified")
            entity.update(type="custom_emoji", custom_emoji_id=emoji_id)
        elif tag.name == "blockquote":
            expandable = "expandable" in tag.attributes
            entity["type"] = "expandable_blockquote" if expandable else "blockquote"
        else:
            self._add_code_entity(tag.name, entity, tag.attributes.get("class", ""))
            return
        self.entities.append(entity)

    def _add_code_entity(self, name: str, entity: dict[str, Any], css_class: str) -> None:
        """`<pre><code class="language-x">` (either nesting order) becomes one `pre` entity."""
        last = self.entities[-1] if self.entities else None
        same_span = last is not None and (last["offset"], last["length"]) == (
            entity["offset"],
            entity["length"],
        )
        if name == "code":
            language = (
                css_class.removeprefix("language-") if css_class.startswith("language-") else ""
            )
            if last is not None and same_span and last["type"] == "pre" and language:
                last["language"] = language
                return
            entity["type"] = "code"
            if language:
                entity["_language"] = language
        else:
            if last is not None and same_span and last["type"] == "code" and "_language" in last:
                last.update(type="pre", language=last.pop("_language"))
                return
            entity["type"] = "pre"
        self.entities.append(entity)


def _strip(text: str, entities: list[dict[str, Any]]) -> str:
    """Trim surrounding whitespace like Telegram does, shifting and clipping entities."""
    stripped = text.strip()
    if stripped == text:
        return text
    lead = utf16_len(text[: len(text) - len(text.lstrip())])
    end = utf16_len(text.rstrip())
    kept: list[dict[str, Any]] = []
    for entity in entities:
        start = max(entity["offset"], lead)
        stop = min(entity["offset"] + entity["length"], end)
        if stop > start:
            kept.append({**entity, "offset": start - lead, "length": stop - start})
    entities[:] = kept
    return stripped


def parse_html(text: str, *, strict_entities: bool = True) -> tuple[str, list[dict[str, Any]]]:
    """Parse Telegram HTML into ``(plain_text, entities)``; raise `HtmlParseError` if invalid."""
    parser = _Parser(text, strict_entities)
    plain = parser.run()
    for entity in parser.entities:
        entity.pop("_language", None)
    entities = sorted(parser.entities, key=lambda e: (e["offset"], -e["length"]))
    plain = _strip(plain, entities)
    return plain, entities


def check_text(
    text: object, parse_mode: object = None, entities: object = None, *, strict_html: bool = True
) -> tuple[str, list[dict[str, Any]]]:
    """Validate a message text like Telegram; returns the stored ``(text, entities)``.
    Explicit ``entities`` win over ``parse_mode``; Markdown modes are passed through."""
    if not isinstance(text, str) or not text.strip():
        raise TelegramBadRequest("message text is empty")
    mode = str(parse_mode or "").lower()
    if isinstance(entities, list):
        parsed = text, entities
    elif mode == "html":
        try:
            parsed = parse_html(text, strict_entities=strict_html)
        except HtmlParseError as exc:
            raise TelegramBadRequest(f"can't parse entities: {exc}") from None
    elif mode in ("", "markdown", "markdownv2"):
        parsed = text.strip(), []
    else:
        raise TelegramBadRequest("unsupported parse_mode")
    if not parsed[0].strip():
        raise TelegramBadRequest("message text is empty")
    if len(parsed[0]) > MAX_TEXT_LENGTH:
        raise TelegramBadRequest("message is too long")
    return parsed


def check_reply_markup(markup: object) -> dict[str, Any] | None:
    """Validate ``reply_markup``: inline buttons need an action, ``callback_data`` 1-64 bytes."""
    if markup is None:
        return None
    if not isinstance(markup, dict):
        raise TelegramBadRequest("can't parse reply keyboard markup JSON object")
    rows = markup.get("inline_keyboard")
    if rows is None:
        return markup
    if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
        raise TelegramBadRequest('can\'t parse inline keyboard button: Field "inline_keyboard"')
    for button in (button for row in rows for button in row):
        if not isinstance(button, dict) or not _BUTTON_ACTIONS & button.keys():
            raise TelegramBadRequest(
                "can't parse inline keyboard button: Text buttons are unallowed in the inline "
                "keyboard"
            )
        data = button.get("callback_data")
        if data is not None and not 1 <= len(str(data).encode()) <= MAX_CALLBACK_DATA_BYTES:
            raise TelegramBadRequest("BUTTON_DATA_INVALID")
        if "url" in button and not str(button["url"]).strip():
            raise TelegramBadRequest("BUTTON_URL_INVALID")
    return markup


def check_commands(commands: object) -> list[dict[str, Any]]:
    """Validate ``setMyCommands``: at most 100, names ``[a-z0-9_]{1,32}``, descriptions 1-256."""
    if not isinstance(commands, list):
        raise TelegramBadRequest("commands is empty")
    if len(commands) > 100:
        raise TelegramBadRequest("BOT_COMMANDS_TOO_MUCH")
    for command in commands:
        if not isinstance(command, dict) or not _COMMAND_NAME.fullmatch(
            str(command.get("command", ""))
        ):
            raise TelegramBadRequest("BOT_COMMAND_INVALID")
        if not 1 <= len(str(command.get("description", ""))) <= 256:
            raise TelegramBadRequest("BOT_COMMAND_DESCRIPTION_INVALID")
    return commands
