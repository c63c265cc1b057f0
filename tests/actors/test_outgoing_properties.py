"""Property (issue 17): for any HTML body and channel, what is sent is the converted text,
split at boundaries, each piece within the provider's limit as the provider counts it.

"Converted text" is each run of text between inline images, rendered for the channel
(:func:`channels.render_blocks`, framed by the signature on the first). Its pieces, in order,
satisfy ``"".join(separator + piece) == text``, where the first separator is empty and every
other one is a non-empty run of spaces and newlines (a paragraph, line, sentence or word
boundary, not sent) or empty (a hard cut inside a word longer than the limit); each piece keeps
the styles of its characters; and each piece, encoded for the channel (WhatsApp markers
included), is within the limit. :func:`channels.compose` sends exactly those pieces, with the
images where they stand.
"""

from __future__ import annotations

import re

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from actors.bridge import reply_blocks
from channels import (
    Channel,
    InlineImage,
    OutgoingText,
    StyledText,
    TextBlock,
    ThreadKey,
    compose,
    encode_text,
    provider_length,
    render_blocks,
    split_text,
    telegram_entities,
    text_format,
    text_limit,
    utf16_length,
)

KEYS = [
    ThreadKey(channel=Channel.WHATSAPP, account="106540352242922", customer="15550001111"),
    ThreadKey(channel=Channel.TWILIO, account="+15550002222", customer="+15550001111"),
    ThreadKey(channel=Channel.TWILIO, account="+15550002222", customer="whatsapp:+15550001111"),
    ThreadKey(channel=Channel.TELEGRAM, account="7000000001", customer="1111111"),
]
WORDS = st.sampled_from(
    ["word", "Done.", "really?", "😀", "\U0001d518\U0001d52b\U0001d526", "👩\u200d👩\u200d👧",
     "e\u0301", "x" * 50, "a&amp;b", "&lt;tag&gt;", "*star*", "_under_", " ", "  ", "\n",
     "end!\u201d", "日本語。"]
)  # fmt: skip
TEXT = st.one_of(
    st.lists(WORDS, max_size=12).map(" ".join),
    st.builds(lambda word, n: (word + " ") * n, WORDS, st.integers(0, 900)),
    st.builds(lambda word, n: word * n, st.sampled_from(["y", "😀", "é"]), st.integers(0, 5000)),
)
HREF = st.sampled_from(["https://track.example/123", "mailto:a@x.example", "", "x y"])
SRC = st.sampled_from(["https://img.example/a.png", "https://img.example/b.jpg", "data:x"])


def _element(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    inline = st.sampled_from(["b", "strong", "i", "em"])
    return st.one_of(
        st.builds(lambda t, c: f"<{t}>{c}</{t}>", inline, children),
        st.builds(lambda h, c: f'<a href="{h}">{c}</a>', HREF, children),
        st.builds(lambda c: f"<p>{c}</p>", children),
        st.builds(
            lambda t, items: f"<{t}>{''.join(f'<li>{i}</li>' for i in items)}</{t}>",
            st.sampled_from(["ul", "ol"]),
            st.lists(children, max_size=4),
        ),
        st.just("<br>"),
        st.builds(lambda s: f'<img src="{s}">', SRC),
    )


NESTED = st.recursive(
    TEXT, lambda c: st.lists(_element(c) | TEXT, max_size=5).map("".join), max_leaves=12
)
# Long styled stretches around the limits (the markers count on WhatsApp), often.
LONG_STYLED = st.builds(
    lambda tags, word, n: "".join(f"<{t}>" for t in tags) + word * n
    + "".join(f"</{t}>" for t in reversed(tags)),
    st.lists(st.sampled_from(["b", "i"]), min_size=1, max_size=2),
    st.sampled_from(["y", "ab ", "Done. ", "😀", "w\n"]),
    st.integers(1000, 4200),
)  # fmt: skip
HTML = st.one_of(NESTED, st.lists(LONG_STYLED | NESTED, min_size=1, max_size=3).map("".join))


def _flags(styled: StyledText) -> list[set[str]]:
    flags: list[set[str]] = [set() for _ in styled.text]
    for span in styled.spans:
        for index in range(span.start, span.end):
            flags[index].add(span.kind)
    return flags


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(HTML, st.sampled_from(KEYS), st.sampled_from(["", "Grace Teammate: "]))
@example("<b>" + "y" * 5000 + "</b>", KEYS[0], "")
@example("<b>" + "ab " * 2000 + "</b>", KEYS[2], "Grace Teammate: ")
def test_pieces_concatenate_to_the_converted_text_each_within_the_limit(
    body: str, key: ThreadKey, signature: str
) -> None:
    items = reply_blocks(f"<p>{body}</p>", "")
    fmt = text_format(key)
    limit = text_limit(key.channel)
    # The converted texts: each run of blocks between images, rendered; the first framed.
    groups: list[StyledText | InlineImage] = []
    run: list[TextBlock] = []
    for item in [*items, None]:
        if isinstance(item, TextBlock):
            run.append(item)
            continue
        styled = render_blocks(run)
        if run and styled.text:
            groups.append(styled)
        run = []
        if item is not None:
            groups.append(item)
    expected: list[OutgoingText | InlineImage] = []
    first = True
    for group in groups:
        if isinstance(group, InlineImage):
            expected.append(group)
            continue
        if first:
            group, first = group.framed(signature, ""), False
        if fmt.value == "plain":
            group = StyledText(group.text)
        pieces = split_text(group, key.channel, fmt)
        assert pieces
        assert pieces[0][0] == ""
        assert "".join(sep + piece.text for sep, piece in pieces) == group.text.strip()
        offset = len(group.text) - len(group.text.lstrip())
        whole = _flags(group)
        for sep, piece in pieces:
            assert re.fullmatch(r"[ \n]*", sep)
            assert piece.text
            offset += len(sep)
            assert _flags(piece) == whole[offset : offset + len(piece.text)]
            offset += len(piece.text)
            encoded = encode_text(piece, fmt)
            assert provider_length(key.channel, encoded.text) <= limit.units
            for entity in telegram_entities(encoded.text, encoded.spans):
                offset_units, length = int(str(entity["offset"])), int(str(entity["length"]))
                assert offset_units >= 0
                assert length > 0
                assert offset_units + length <= utf16_length(encoded.text)
            expected.append(encoded)
    before = signature if groups else ""
    assert compose(key, items, before=before) == expected
    # Every image in the body is there, in order (or a placeholder for one no provider fetches).
    sources = re.findall(r'<img src="([^"]*)">', body)
    assert [i.url for i in expected if isinstance(i, InlineImage)] == [
        s for s in sources if s.startswith("https://")
    ]
