"""What a teammate's reply (or a send API message) sends on the customer's channel, in order.

Intercom parses the part's HTML body (:func:`intercom.html_to_rich`: paragraphs, list items,
bold/italic runs, links made visible, inline images); this module hands it to ``channels`` as
its neutral data, and :func:`channels.compose` renders and splits it for the channel. Each
piece is one recorded step: text pieces ``{prefix}text:{i}`` (0, 1, … across the message) and
inline images ``{prefix}inline:{k}``, in body order (a text, the image pasted after it, the
text after that).
"""

from __future__ import annotations

import functools
import mimetypes
from collections.abc import Awaitable, Callable, Sequence
from typing import Literal
from urllib.parse import urlsplit

from channels import (
    InlineImage,
    OutboundMedia,
    OutgoingText,
    TextBlock,
    TextRun,
    ThreadKey,
    compose,
)
from intercom import RichBlock, RichImage, html_to_rich

from ._gateway import ChannelClient
from ._jobs import ReplyJob

__all__ = ["message_content", "reply_blocks", "reply_content", "send_steps"]

Content = Sequence[OutgoingText | InlineImage]
_KINDS: dict[str, Literal["", "bullet", "ordered"]] = {"ul": "bullet", "ol": "ordered", "": ""}
_MARKER = "\x00"


def reply_blocks(body: str | None, text: str) -> list[TextBlock | InlineImage]:
    """The neutral blocks of a reply: from its HTML body, or (a job journaled before the body
    was kept) its plain text."""
    if body is None:
        return [TextBlock((TextRun(text),))] if text else []
    out: list[TextBlock | InlineImage] = []
    for item in html_to_rich(body):
        if isinstance(item, RichImage):
            if urlsplit(item.src).scheme.lower() in ("http", "https"):
                out.append(InlineImage(item.src, item.alt))
            else:  # a data: URI or a relative path: nothing a provider can fetch
                out.append(TextBlock((TextRun(f"[image{': ' + item.alt if item.alt else ''}]"),)))
            continue
        assert isinstance(item, RichBlock)
        runs = tuple(TextRun(run.text, run.bold, run.italic) for run in item.runs)
        kind = _KINDS[item.list_kind]
        out.append(TextBlock(runs, kind, item.number, item.depth))
    return out


def reply_content(
    key: ThreadKey, reply_format: str, teammate: str, job: ReplyJob
) -> list[OutgoingText | InlineImage]:
    """A teammate's reply as the channel sends it: ``reply_format`` frames its text (the
    signature counts toward the first piece), inline images where they stand."""
    text = job.text
    blocks = reply_blocks(job.body, text)
    try:
        framed = reply_format.format(teammate=teammate.replace(_MARKER, ""), text=_MARKER)
    except (KeyError, IndexError, ValueError):
        framed = ""
    if framed.count(_MARKER) == 1:
        before, _, after = framed.partition(_MARKER)
        return compose(key, blocks, before=before, after=after)
    # A format without exactly one {text}: formatted as before, over the plain text.
    plain = reply_format.format(teammate=teammate, text=text) if text else ""
    images = [item for item in blocks if isinstance(item, InlineImage)]
    return compose(key, [TextBlock((TextRun(plain),)), *images] if plain else images)


def message_content(key: ThreadKey, text: str | None) -> list[OutgoingText | InlineImage]:
    """A plain message (the send API) as the channel sends it: split, never truncated."""
    return compose(key, reply_blocks(None, text or ""))


def _image_media(image: InlineImage) -> OutboundMedia:
    guessed, _ = mimetypes.guess_type(urlsplit(image.url).path)
    mime = guessed if guessed and guessed.startswith("image/") else "image/jpeg"
    return OutboundMedia(mime_type=mime, url=image.url)


def send_steps(
    client: ChannelClient, key: ThreadKey, content: Content, prefix: str
) -> list[tuple[str, Callable[[], Awaitable[object]]]]:
    """The recorded steps sending ``content``, in order."""
    steps: list[tuple[str, Callable[[], Awaitable[object]]]] = []
    texts = images = 0
    for item in content:
        if isinstance(item, OutgoingText):
            call = functools.partial(client.send_text, key, item.text, spans=item.spans)
            steps.append((f"{prefix}text:{texts}", call))
            texts += 1
        else:
            media = functools.partial(client.send_media, key, _image_media(item))
            steps.append((f"{prefix}inline:{images}", media))
            images += 1
    return steps
