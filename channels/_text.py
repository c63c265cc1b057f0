"""The neutral text of an outgoing message, before any channel's markup (pure, sans-io).

The caller describes a message as :class:`TextBlock` paragraphs and list items made of
:class:`TextRun` runs (bold, italic), and :class:`InlineImage` images, in order;
:func:`render_blocks` turns consecutive blocks into one :class:`StyledText` (the text and its
:class:`Span` styles). ``channels/_markup.py`` splits it to a channel's :class:`TextLimit` and
encodes it in the channel's :class:`TextFormat` as :class:`OutgoingText`.

Everywhere: list items read ``• item`` or ``1. item`` (indented two spaces per nesting level),
paragraphs and items one per line, a blank line where the teammate left one.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Literal

__all__ = [
    "KINDS",
    "InlineImage",
    "OutgoingText",
    "Span",
    "SpanKind",
    "StyledText",
    "TextBlock",
    "TextFormat",
    "TextLimit",
    "TextRun",
    "render_blocks",
    "stripped",
    "styled_flags",
    "utf16_length",
]

SpanKind = Literal["bold", "italic"]


@dataclass(frozen=True, slots=True)
class TextRun:
    """Text in one style (``\\n`` inside is a line break)."""

    text: str
    bold: bool = False
    italic: bool = False


@dataclass(frozen=True, slots=True)
class TextBlock:
    """A paragraph, or a list item (``list_kind`` "bullet" or "ordered" with its ``number``,
    nested ``depth`` levels deep). A block without runs is a blank line."""

    runs: tuple[TextRun, ...]
    list_kind: Literal["", "bullet", "ordered"] = ""
    number: int = 0
    depth: int = 0


@dataclass(frozen=True, slots=True)
class InlineImage:
    """An image inside the message, sent as media where it stands."""

    url: str
    alt: str = ""


@dataclass(frozen=True, slots=True)
class Span:
    """A style over ``text[start:end]`` (code point offsets)."""

    kind: SpanKind
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class StyledText:
    """Text with its styles, before a channel's markup."""

    text: str
    spans: tuple[Span, ...] = ()

    def framed(self, before: str, after: str) -> StyledText:
        """``before + text + after`` (a signature), the styles moved along."""
        shift = len(before)
        spans = tuple(Span(s.kind, s.start + shift, s.end + shift) for s in self.spans)
        return StyledText(before + self.text + after, spans)


@dataclass(frozen=True, slots=True)
class OutgoingText:
    """One text message as the channel's client sends it: ``text`` carries the markup
    (WhatsApp), ``spans`` the styles sent beside it (Telegram entities; empty elsewhere)."""

    text: str
    spans: tuple[Span, ...] = ()


class TextFormat(enum.Enum):
    PLAIN = "plain"
    WHATSAPP = "whatsapp"
    TELEGRAM = "telegram"


@dataclass(frozen=True, slots=True)
class TextLimit:
    """A provider's text limit: ``units`` per message, counted in UTF-16 code units when
    ``utf16`` (else code points)."""

    units: int
    utf16: bool


KINDS: Final[tuple[SpanKind, ...]] = ("bold", "italic")


def utf16_length(text: str) -> int:
    """Length in UTF-16 code units (an astral character counts 2)."""
    return len(text) + sum(1 for c in text if ord(c) > 0xFFFF)


# --- rendering ---------------------------------------------------------------------------------


def render_blocks(blocks: Sequence[TextBlock]) -> StyledText:
    """The text of consecutive blocks: one line each (list items with their marker), a blank
    line for blank blocks between others, surrounding whitespace stripped."""
    parts: list[str] = []
    spans: list[Span] = []
    length = 0
    blank = False

    def add(text: str, run: TextRun | None = None) -> None:
        nonlocal length
        if run is not None and text:
            styles: tuple[tuple[SpanKind, bool], ...] = (("bold", run.bold), ("italic", run.italic))
            for kind, on in styles:
                if on:
                    _add_span(spans, Span(kind, length, length + len(text)))
        parts.append(text)
        length += len(text)

    for block in blocks:
        if not block.runs or not any(run.text.strip() for run in block.runs):
            blank = True
            continue
        if length:
            add("\n\n" if blank else "\n")
        blank = False
        indent = "  " * block.depth
        if block.list_kind == "bullet":
            add(f"{indent}• ")
        elif block.list_kind == "ordered":
            add(f"{indent}{block.number}. ")
        for run in block.runs:
            add(run.text, run)
    text = "".join(parts)
    return stripped(StyledText(text, tuple(_trimmed(text, span) for span in spans)))


def _trimmed(text: str, span: Span) -> Span:
    """The span without whitespace at its ends (a style never starts or ends on a space)."""
    start, end = span.start, span.end
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return Span(span.kind, start, end)


def _add_span(spans: list[Span], span: Span) -> None:
    """Append, merging with an adjacent span of the same kind."""
    for index in range(len(spans) - 1, max(len(spans) - 3, -1), -1):
        last = spans[index]
        if last.kind == span.kind and last.end == span.start:
            spans[index] = Span(span.kind, last.start, span.end)
            return
    spans.append(span)


def stripped(styled: StyledText) -> StyledText:
    text = styled.text
    start = len(text) - len(text.lstrip())
    end = len(text.rstrip())
    if start >= end:
        return StyledText("")
    spans = tuple(
        Span(s.kind, max(s.start, start) - start, min(s.end, end) - start)
        for s in styled.spans
        if min(s.end, end) > max(s.start, start)
    )
    return StyledText(text[start:end], spans)  # (spans left empty by trimming are dropped)


def styled_flags(styled: StyledText) -> dict[SpanKind, bytearray]:
    """Per character, whether each style covers it (line breaks never: markup stops at them)."""
    flags = {kind: bytearray(len(styled.text)) for kind in KINDS}
    for span in styled.spans:
        flags[span.kind][span.start : span.end] = b"\x01" * (span.end - span.start)
    for index, char in enumerate(styled.text):
        if char == "\n":
            for kind in KINDS:
                flags[kind][index] = 0
    return flags
