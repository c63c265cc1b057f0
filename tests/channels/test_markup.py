"""Outgoing text per channel (issue 17): markup, and splitting at the provider's limit."""

from __future__ import annotations

import pytest

from channels import (
    Channel,
    InlineImage,
    OutgoingText,
    Span,
    StyledText,
    TextBlock,
    TextFormat,
    TextRun,
    ThreadKey,
    compose,
    encode_text,
    provider_length,
    split_text,
    telegram_entities,
    text_format,
)

WA = ThreadKey(channel=Channel.WHATSAPP, account="106540352242922", customer="15550001111")
SMS = ThreadKey(channel=Channel.TWILIO, account="+15550002222", customer="+15550001111")
TWA = ThreadKey(channel=Channel.TWILIO, account="+15550002222", customer="whatsapp:+1555000111")
TG = ThreadKey(channel=Channel.TELEGRAM, account="7000000001", customer="1111111")

BLOCKS = [
    TextBlock((TextRun("Hi "), TextRun("bold words", bold=True), TextRun(", "),
               TextRun("both ", bold=True, italic=True), TextRun("it", italic=True))),
    TextBlock(()),
    TextBlock((TextRun("one"),), "bullet"),
    TextBlock((TextRun("nested"),), "bullet", depth=1),
    TextBlock((TextRun("two"),), "ordered", 2),
]  # fmt: skip


def test_each_channel_gets_its_markup() -> None:
    assert text_format(WA) is text_format(TWA) is TextFormat.WHATSAPP
    assert text_format(SMS) is TextFormat.PLAIN
    assert text_format(TG) is TextFormat.TELEGRAM
    plain = "Hi bold words, both it\n\n• one\n  • nested\n2. two"
    assert compose(SMS, BLOCKS) == [OutgoingText(plain)]
    whatsapp = "Hi *bold words*, _*both* it_\n\n• one\n  • nested\n2. two"
    assert compose(WA, BLOCKS) == compose(TWA, BLOCKS) == [OutgoingText(whatsapp)]
    (telegram,) = compose(TG, BLOCKS)
    assert isinstance(telegram, OutgoingText)
    assert telegram.text == plain
    assert {(s.kind, plain[s.start : s.end]) for s in telegram.spans} == {
        ("bold", "bold words"),
        ("bold", "both"),
        ("italic", "both it"),
    }


def test_whatsapp_markers_hug_the_text_and_stop_at_line_ends() -> None:
    text = " two\nlines "
    styled = StyledText(f"a{text}b", (Span("bold", 1, 1 + len(text)),))
    assert encode_text(styled, TextFormat.WHATSAPP).text == "a *two*\n*lines* b"


def test_the_signature_frames_the_first_and_last_text_and_images_stay_in_order() -> None:
    items: list[TextBlock | InlineImage] = [
        InlineImage("https://img.example/0.png"),
        TextBlock((TextRun("first"),)),
        InlineImage("https://img.example/1.png"),
        TextBlock((TextRun("last"),)),
    ]
    assert compose(SMS, items, before="Grace: ", after=" -G") == [
        InlineImage("https://img.example/0.png"),
        OutgoingText("Grace: first"),
        InlineImage("https://img.example/1.png"),
        OutgoingText("last -G"),
    ]
    assert compose(SMS, [InlineImage("https://img.example/0.png")], before="Grace: ") == [
        InlineImage("https://img.example/0.png")
    ]


def _pieces(text: str, channel: Channel, fmt: TextFormat = TextFormat.PLAIN) -> list[str]:
    return [piece.text for _, piece in split_text(StyledText(text), channel, fmt)]


@pytest.mark.parametrize(
    ("text", "pieces"),
    [
        # Fits: one piece, unchanged.
        ("x" * 1600, ["x" * 1600]),
        # A paragraph break within the limit beats the later line break and sentence end.
        (
            f"{'a' * 800}\n\n{'b' * 400}\n{'c' * 300}. {'d' * 500}",
            ["a" * 800, f"{'b' * 400}\n{'c' * 300}. {'d' * 500}"],
        ),
        # A line break beats a later sentence end.
        (f"{'a' * 900}\n{'b' * 400}. {'c' * 600}", [f"{'a' * 900}", f"{'b' * 400}. {'c' * 600}"]),
        # ... unless the piece would be less than half full: then the sentence end.
        (f"{'a' * 700}\n{'b' * 600}. {'c' * 600}", [f"{'a' * 700}\n{'b' * 600}.", "c" * 600]),
        (f"{'a' * 80}\n\n{'b' * 1000}. {'c' * 600}", [f"{'a' * 80}\n\n{'b' * 1000}.", "c" * 600]),
        # A sentence end (with a closing quote) beats a later space.
        (
            f"{'a' * 900}.\u201d {'b' * 500} {'c' * 600}",
            [f"{'a' * 900}.\u201d", f"{'b' * 500} {'c' * 600}"],
        ),
        # Else the last space that fits.
        (f"{'a' * 700} {'b' * 600} {'c' * 600}", [f"{'a' * 700} {'b' * 600}", "c" * 600]),
        # A word longer than the limit is cut inside, and only then.
        ("w" * 3500, ["w" * 1600, "w" * 1600, "w" * 300]),
    ],
)
def test_sms_split_points(text: str, pieces: list[str]) -> None:
    assert _pieces(text, Channel.TWILIO) == pieces


def test_sms_and_telegram_count_utf16_units_whatsapp_counts_characters() -> None:
    emoji = "😀" * 1000  # 2,000 UTF-16 units
    assert [len(p) for p in _pieces(emoji, Channel.TWILIO)] == [800, 200]
    assert [len(p) for p in _pieces(emoji * 3, Channel.TELEGRAM)] == [2048, 952]
    assert [len(p) for p in _pieces(emoji * 5, Channel.WHATSAPP)] == [4096, 904]
    assert provider_length(Channel.TELEGRAM, emoji) == 2000
    assert provider_length(Channel.WHATSAPP, emoji) == 1000


def test_a_hard_cut_keeps_an_emoji_with_its_modifiers() -> None:
    family = "👩\u200d👩\u200d👧"  # woman ZWJ woman ZWJ girl: 5 code points, 8 units
    text = "x" * 1597 + family
    first, second = _pieces(text, Channel.TWILIO)
    assert first == "x" * 1597  # not "x"*1597 + "👩" + ZWJ
    assert second == family


def test_whatsapp_markers_count_toward_the_limit() -> None:
    styled = StyledText("b" * 5000, (Span("bold", 0, 5000),))
    pieces = split_text(styled, Channel.WHATSAPP, TextFormat.WHATSAPP)
    encoded = [encode_text(piece, TextFormat.WHATSAPP).text for _, piece in pieces]
    assert [len(e) for e in encoded] == [4096, 908]
    assert encoded[0] == "*" + "b" * 4094 + "*"


def test_telegram_entities_are_in_utf16_units() -> None:
    text = "😀a😀bc"
    assert telegram_entities(text, (Span("bold", 3, 5), Span("italic", 1, 2))) == [
        {"type": "bold", "offset": 5, "length": 2},
        {"type": "italic", "offset": 2, "length": 1},
    ]
