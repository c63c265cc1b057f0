"""Outgoing text per channel: markup, limits and splitting (pure, sans-io).

The caller describes a message as neutral data: :class:`TextBlock` paragraphs and list items
made of :class:`TextRun` runs (bold, italic), and :class:`InlineImage` images, in order.
:func:`compose` turns it into what a channel sends, in order: :class:`OutgoingText` pieces, each
within the channel's limit as the provider counts it, and the images.

Per channel (:func:`text_format`):

- **WhatsApp** (Cloud API, and Twilio's WhatsApp senders): ``*bold*``, ``_italic_``.
- **Telegram**: the text plain, bold and italic as message entities (``OutgoingText.spans``;
  the client sends them as ``entities`` with UTF-16 offsets), so nothing needs escaping.
- **SMS** (Twilio): plain text.

Everywhere: list items read ``• item`` or ``1. item`` (indented two spaces per nesting level),
paragraphs and items one per line, a blank line where the teammate left one.

Limits (:func:`text_limit`): Twilio 1,600 characters counted as UTF-16 code units (how an SMS
is encoded; an emoji counts 2), Telegram 4,096 UTF-16 code units of the text after entity
parsing (our text is sent as is, with entities), WhatsApp 4,096 characters (code points), its
``*``/``_`` markers included. A longer text is split (:func:`split_text`), never truncated.
"""

from __future__ import annotations

import enum
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Literal

from ._model import Channel, ThreadKey

__all__ = [
    "InlineImage",
    "OutgoingText",
    "Span",
    "StyledText",
    "TextBlock",
    "TextFormat",
    "TextLimit",
    "TextRun",
    "compose",
    "encode_text",
    "provider_length",
    "render_blocks",
    "split_text",
    "text_format",
    "text_limit",
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


_LIMITS: Final = {
    Channel.TWILIO: TextLimit(1600, utf16=True),
    Channel.TELEGRAM: TextLimit(4096, utf16=True),
    Channel.WHATSAPP: TextLimit(4096, utf16=False),
}
_MARKERS: Final[dict[SpanKind, str]] = {"bold": "*", "italic": "_"}
_KINDS: Final[tuple[SpanKind, ...]] = ("bold", "italic")


def text_format(key: ThreadKey) -> TextFormat:
    """How text is marked up for the customer of ``key``."""
    if key.channel is Channel.TELEGRAM:
        return TextFormat.TELEGRAM
    if key.channel is Channel.WHATSAPP or key.customer.startswith("whatsapp:"):
        return TextFormat.WHATSAPP
    return TextFormat.PLAIN


def text_limit(channel: Channel) -> TextLimit:
    """The provider's limit on one text message."""
    return _LIMITS[channel]


def utf16_length(text: str) -> int:
    """Length in UTF-16 code units (an astral character counts 2)."""
    return len(text) + sum(1 for c in text if ord(c) > 0xFFFF)


def provider_length(channel: Channel, text: str) -> int:
    """``text``'s length as ``channel``'s provider counts it against :func:`text_limit`."""
    return utf16_length(text) if _LIMITS[channel].utf16 else len(text)


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
    return _stripped(StyledText(text, tuple(_trimmed(text, span) for span in spans)))


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


def _stripped(styled: StyledText) -> StyledText:
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


# --- splitting ---------------------------------------------------------------------------------

_SENTENCE_ENDS: Final = frozenset(
    ".!?\u2026\u3002\uff01\uff1f"
)  # ellipsis, CJK full stop, full-width ! ?
_CLOSERS: Final = frozenset("\"')]}\u00bb\u201d\u2019")  # closing guillemet and curly quotes
_BREAKS: Final = " \n"


def _styled_flags(styled: StyledText) -> dict[SpanKind, bytearray]:
    """Per character, whether each style covers it (line breaks never: markup stops at them)."""
    flags = {kind: bytearray(len(styled.text)) for kind in _KINDS}
    for span in styled.spans:
        flags[span.kind][span.start : span.end] = b"\x01" * (span.end - span.start)
    for index, char in enumerate(styled.text):
        if char == "\n":
            for kind in _KINDS:
                flags[kind][index] = 0
    return flags


def _max_end(
    text: str, start: int, limit: TextLimit, flags: dict[SpanKind, bytearray] | None
) -> int:
    """The largest ``end`` such that ``text[start:end]`` fits the limit, markup included (for
    WhatsApp, both markers of a style are counted where the style starts in the piece)."""
    used = 0
    index = start
    while index < len(text):
        cost = 2 if limit.utf16 and ord(text[index]) > 0xFFFF else 1
        if flags is not None:
            for kind in _KINDS:
                mine = flags[kind]
                if mine[index] and (index == start or not mine[index - 1]):
                    cost += 2 * len(_MARKERS[kind])
        if used + cost > limit.units:
            break
        used += cost
        index += 1
    return index


def _run_around(text: str, index: int, floor: int) -> tuple[int, int]:
    """The run of spaces and newlines holding ``index``: [start, end), start > ``floor``."""
    start = index
    while start - 1 > floor and text[start - 1] in _BREAKS:
        start -= 1
    end = index
    while end < len(text) and text[end] in _BREAKS:
        end += 1
    return start, end


def _cut(text: str, start: int, fit: int) -> tuple[int, int]:
    """Where to end the piece starting at ``start`` when only ``text[start:fit]`` fits:
    (piece end, next piece start); the text between them is the separator, not sent."""
    window = fit
    if window < len(text) and text[window] in _BREAKS:
        window = _run_around(text, window, start)[1]  # a separator may run past the limit
    half = start + (fit - start) // 2  # a better boundary is used only past half of what fits
    for mark in ("\n\n", "\n"):
        found = text.rfind(mark, start + 1, window)
        if found > start:
            before, after = _run_around(text, found, start)
            if before >= half:
                return before, after
    index = min(window, len(text)) - 1
    while index > max(start, half - 1):  # a sentence's end
        if text[index] != " ":
            index -= 1
            continue
        before, after = _run_around(text, index, start)
        end = before
        while end - 1 > start and text[end - 1] in _CLOSERS:
            end -= 1
        if before >= half and text[end - 1] in _SENTENCE_ENDS:
            return before, after
        index = before - 1
    found = text.rfind(" ", start + 1, window)
    if found > start:
        return _run_around(text, found, start)
    end = fit  # one word longer than the limit: cut inside it, not inside a character
    while end - 1 > start and _joins(text, end):
        end -= 1
    return end, end


def _joins(text: str, index: int) -> bool:
    """Whether ``text[index]`` belongs with the character before it (a combining mark, a
    variation selector, a zero-width joiner on either side, a skin tone)."""
    char, before = text[index], text[index - 1]
    return (
        unicodedata.combining(char) != 0
        or char in "\u200d\ufe0e\ufe0f"
        or before == "\u200d"
        or 0x1F3FB <= ord(char) <= 0x1F3FF
        or 0xE0020 <= ord(char) <= 0xE007F
    )


def split_text(
    styled: StyledText, channel: Channel, text_fmt: TextFormat
) -> list[tuple[str, StyledText]]:
    """``styled`` in pieces that each fit ``channel``'s limit once encoded in ``text_fmt``, in
    order, as ``(separator, piece)`` pairs such that ``"".join(sep + piece.text)`` is
    ``styled.text`` stripped of surrounding whitespace, with each piece's styles those of its
    part of the text.

    The separator of the first piece is empty; every other one is either a run of spaces and
    newlines (where the text was split: not sent), or empty where a single word longer than
    the limit was cut. Where the text does not fit, the piece ends at the last paragraph break
    (a blank line) within the limit, else the last line break, else the last sentence end
    (``.``, ``!``, ``?``, ``…`` and closing quotes or brackets, then a space) — each only when
    it leaves the piece at least half as long as what fits, so pieces are not wasted — else
    the last space, else inside the word (never inside a character, nor between an emoji and
    its modifiers).
    """
    styled = _stripped(styled)
    text = styled.text
    if not text:
        return []
    limit = _LIMITS[channel]
    flags = _styled_flags(styled) if text_fmt is TextFormat.WHATSAPP else None
    cuts: list[tuple[int, int, int]] = []  # (separator start, piece start, piece end)
    start, separator = 0, 0
    while start < len(text):
        fit = _max_end(text, start, limit, flags)
        if fit >= len(text):
            cuts.append((separator, start, len(text)))
            break
        end, after = _cut(text, start, fit)
        cuts.append((separator, start, end))
        separator, start = end, after
    return [
        (text[sep:begin], _piece(styled, begin, end)) for sep, begin, end in cuts if end > begin
    ]


def _piece(styled: StyledText, start: int, end: int) -> StyledText:
    spans = tuple(
        Span(s.kind, max(s.start, start) - start, min(s.end, end) - start)
        for s in styled.spans
        if min(s.end, end) > max(s.start, start)
    )
    return StyledText(styled.text[start:end], spans)


# --- encoding ----------------------------------------------------------------------------------


def encode_text(piece: StyledText, text_fmt: TextFormat) -> OutgoingText:
    """A piece as its channel's client sends it."""
    if text_fmt is TextFormat.TELEGRAM:
        return OutgoingText(piece.text, piece.spans)
    if text_fmt is TextFormat.PLAIN or not piece.spans:
        return OutgoingText(piece.text)
    return OutgoingText(_whatsapp_markup(piece))


def _whatsapp_markup(piece: StyledText) -> str:
    """``*bold*`` and ``_italic_`` around each styled stretch of a line, the markers against
    its first and last visible characters (WhatsApp ignores ``* bold *``)."""
    text = piece.text
    flags = _styled_flags(piece)
    opens: dict[int, list[tuple[int, str]]] = {}
    closes: dict[int, list[tuple[int, str]]] = {}
    for kind in _KINDS:
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
                opens.setdefault(first, []).append((last, _MARKERS[kind]))
                closes.setdefault(last, []).append((first, _MARKERS[kind]))
            index = end
    out: list[str] = []
    for index in range(len(text) + 1):
        # Closing first, the innermost (latest opened) first; opening the outermost first.
        out.extend(marker for _, marker in sorted(closes.get(index, ()), reverse=True))
        out.extend(marker for _, marker in sorted(opens.get(index, ()), reverse=True))
        if index < len(text):
            out.append(text[index])
    return "".join(out)


def compose(
    key: ThreadKey, items: Sequence[TextBlock | InlineImage], *, before: str = "", after: str = ""
) -> list[OutgoingText | InlineImage]:
    """What to send for a message, in order: the text between images, split to the channel's
    limit, and the images. ``before``/``after`` (a signature) frame the first/last text (a
    message without text gets none)."""
    groups: list[StyledText | InlineImage] = []
    blocks: list[TextBlock] = []
    for item in [*items, None]:
        if isinstance(item, TextBlock):
            blocks.append(item)
            continue
        if blocks:
            styled = render_blocks(blocks)
            if styled.text:
                groups.append(styled)
            blocks = []
        if item is not None:
            groups.append(item)
    texts = [index for index, group in enumerate(groups) if isinstance(group, StyledText)]
    text_fmt = text_format(key)
    out: list[OutgoingText | InlineImage] = []
    for index, group in enumerate(groups):
        if isinstance(group, InlineImage):
            out.append(group)
            continue
        group = group.framed(
            before if index == texts[0] else "", after if index == texts[-1] else ""
        )
        if text_fmt is TextFormat.PLAIN:
            group = StyledText(group.text)
        pieces = split_text(group, key.channel, text_fmt)
        out.extend(encode_text(piece, text_fmt) for _, piece in pieces)
    return out
