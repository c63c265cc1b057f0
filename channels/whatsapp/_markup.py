"""WhatsApp's text markup: ``*bold*`` and ``_italic_`` in the text itself (pure)."""

from __future__ import annotations

from typing import Final

from .._text import KINDS, SpanKind, StyledText, styled_flags

__all__ = ["MARKERS", "whatsapp_markup"]

MARKERS: Final[dict[SpanKind, str]] = {"bold": "*", "italic": "_"}
"""Each style's marker, written before and after the styled stretch."""


def whatsapp_markup(piece: StyledText) -> str:
    """``*bold*`` and ``_italic_`` around each styled stretch of a line, the markers against
    its first and last visible characters (WhatsApp ignores ``* bold *``)."""
    text = piece.text
    flags = styled_flags(piece)
    opens: dict[int, list[tuple[int, str]]] = {}
    closes: dict[int, list[tuple[int, str]]] = {}
    for kind in KINDS:
        mine = flags[kind]
        index = 0
        while index < len(text):
            if not mine[index]:
                index += 1
                continue
            end = index
            while end < len(text) and mine[end]:
                end += 1
            first, last = index, end
            while first < last and text[first].isspace():
                first += 1
            while last > first and text[last - 1].isspace():
                last -= 1
            if first < last:
                opens.setdefault(first, []).append((last, MARKERS[kind]))
                closes.setdefault(last, []).append((first, MARKERS[kind]))
            index = end
    out: list[str] = []
    for index in range(len(text) + 1):
        # Closing first, the innermost (latest opened) first; opening the outermost first.
        out.extend(marker for _, marker in sorted(closes.get(index, ()), reverse=True))
        out.extend(marker for _, marker in sorted(opens.get(index, ()), reverse=True))
        if index < len(text):
            out.append(text[index])
    return "".join(out)
