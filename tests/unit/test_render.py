"""Message splitting keeps every chunk within Telegram's limit and loses nothing."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from handlers.render import MAX_MESSAGE, duration, split_message


@given(st.lists(st.text(alphabet="ab \n<>&é", max_size=300), max_size=60), st.integers(20, 200))
def test_split_respects_limit_and_preserves_text(parts: list[str], limit: int) -> None:
    text = "\n".join(parts)
    chunks = split_message(text, limit)
    assert all(len(chunk) <= limit for chunk in chunks)
    assert "".join(chunks).replace("\n", "") == text.replace("\n", "")


def test_split_breaks_on_line_boundaries() -> None:
    lines = [f"line {i:04d} " + "x" * 80 for i in range(200)]
    chunks = split_message("\n".join(lines))
    assert len(chunks) > 1
    assert all(len(chunk) <= MAX_MESSAGE for chunk in chunks)
    assert [line for chunk in chunks for line in chunk.split("\n")] == lines


def test_duration_is_human() -> None:
    assert [duration(s) for s in (5, 125, 3600, 3900, 90000, 86400 * 3)] == [
        "5 s",
        "2 min",
        "1 h",
        "1 h 5 min",
        "1 d 1 h",
        "3 d",
    ]
