"""Outgoing text per channel: limits, splitting and markup (pure, sans-io).

:func:`compose` turns a message described as neutral data (``channels/_text.py``:
:class:`TextBlock` paragraphs and list items, :class:`InlineImage` images, in order) into what a
channel sends, in order: :class:`OutgoingText` pieces, each within the channel's limit as the
provider counts it, and the images.

Per channel (:func:`text_format`, from the channel's registry entry):

- **WhatsApp** (Cloud API, and Twilio's WhatsApp senders): ``*bold*``, ``_italic_``
  (``channels/whatsapp/_markup.py``).
- **Telegram**: the text plain, bold and italic as message entities (``OutgoingText.spans``;
  the client sends them as ``entities`` with UTF-16 offsets), so nothing needs escaping.
- **SMS** (Twilio): plain text.

Limits (:func:`text_limit`, each channel's ``ChannelSpec.text_limit``): Twilio 1,600
characters counted as UTF-16 code units (how an SMS is encoded; an emoji counts 2), Telegram
4,096 UTF-16 code units of the text after entity parsing (our text is sent as is, with
entities), WhatsApp 4,096 characters (code points), its ``*``/``_`` markers included. A longer
text is split (:func:`split_text`), never truncated.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from typing import Final

from ._model import Channel, ThreadKey
from ._registry import channel_spec
from ._text import (
    KINDS,
    InlineImage,
    OutgoingText,
    Span,
    SpanKind,
    StyledText,
    TextBlock,
    TextFormat,
    TextLimit,
    render_blocks,
    stripped,
    styled_flags,
    utf16_length,
)
from .whatsapp import MARKERS, whatsapp_markup

__all__ = [
    "compose",
    "encode_text",
    "provider_length",
    "split_text",
    "text_format",
    "text_limit",
]


def text_format(key: ThreadKey) -> TextFormat:
    """How text is marked up for the customer of ``key``."""
    return channel_spec(key.channel).text_format(key)


def text_limit(channel: Channel) -> TextLimit:
    """The provider's limit on one text message."""
    return channel_spec(channel).text_limit


def provider_length(channel: Channel, text: str) -> int:
    """``text``'s length as ``channel``'s provider counts it against :func:`text_limit`."""
    return utf16_length(text) if text_limit(channel).utf16 else len(text)


# --- splitting ---------------------------------------------------------------------------------

_SENTENCE_ENDS: Final = frozenset(
    ".!?\u2026\u3002\uff01\uff1f"
)  # ellipsis, CJK full stop, full-width ! ?
_CLOSERS: Final = frozenset("\"')]}\u00bb\u201d\u2019")  # closing guillemet and curly quotes
_BREAKS: Final = " \n"


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
            for kind in KINDS:
                mine = flags[kind]
                if mine[index] and (index == start or not mine[index - 1]):
                    cost += 2 * len(MARKERS[kind])
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
    styled = stripped(styled)
    text = styled.text
    if not text:
        return []
    limit = text_limit(channel)
    flags = styled_flags(styled) if text_fmt is TextFormat.WHATSAPP else None
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
    return OutgoingText(whatsapp_markup(piece))


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
