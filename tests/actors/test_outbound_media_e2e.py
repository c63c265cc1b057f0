"""A teammate's attachments reach the customer by the provider's method and type for their MIME
type, with the reply's text as the caption where the channel takes one (issue 17). End to end:
the sandbox Intercom's teammate replies with attachments it serves, the bridge sends them to
the sandbox providers, which fetch a media URL as the real ones do and refuse what they refuse.
Both stores (each send is a recorded step in the journal)."""

from __future__ import annotations

from pathlib import Path

import trio

from actors.tools import Stack, open_stack
from channels import Channel
from channels.sandbox import SentMessage
from tests.actors.conftest import eventually
from tests.actors.test_bridge_e2e import only, parts, settled

PHONE = "15550003333"
CHAT = 4343
LINUS = "991267603"  # "Linus Teammate"

NOTES = b"meeting notes\n" * 200
GIF = b"GIF89a" + b"g" * 600
WEBP = b"RIFF\x00\x01\x00\x00WEBPVP8 " + b"w" * 600
PNG = b"\x89PNG\r\n\x1a\n" + b"p" * 600
MP4 = b"\x00\x00\x00\x18ftypmp42" + b"v" * 600
PDF = b"%PDF-1.4 " + b"d" * 600


async def telegram_conversation(stack: Stack) -> str:
    await stack.telegram(CHAT, "can you send it to me?")
    await eventually(lambda: settled(stack, 1))
    return str(only(stack)["id"])


async def whatsapp_conversation(stack: Stack) -> str:
    await stack.whatsapp(PHONE, "can you send it to me?")
    await eventually(lambda: settled(stack, 1))
    return str(only(stack)["id"])


async def sent_after_reply(
    stack: Stack, conversation_id: str, text: str, files: list[tuple[str, str, bytes]], count: int
) -> list[SentMessage]:
    """The teammate replies; what reached the customer once the bridge finished the reply."""
    await stack.sandbox.intercom.teammates.reply(
        conversation_id, text, admin_id=LINUS, attachments=files
    )
    await eventually(lambda: len(stack.sent()) >= count and stack.node.dispatcher.inflight == 0)
    await trio.sleep(0.3)  # nothing more follows
    return stack.sent()


def notes(stack: Stack) -> list[str]:
    return [str(p["body"]) for p in parts(only(stack)) if p["part_type"] == "note"]


def content(stack: Stack, sent: SentMessage) -> bytes:
    assert sent.media_id is not None
    stored = stack.sandbox.providers.media(sent.media_id)
    assert stored is not None
    return stored.content


async def test_telegram_document_telegram_will_not_fetch_is_uploaded_with_its_caption(
    stack: Stack,
) -> None:
    """Regression: a text file went to sendDocument by URL, which Telegram answers 400 (it
    fetches only PDF, ZIP and GIF documents): the customer got the text, not the file."""
    conversation_id = await telegram_conversation(stack)
    files = [("notes.txt", "text/plain", NOTES)]
    (sent,) = await sent_after_reply(stack, conversation_id, "Here are the notes", files, 1)
    assert (sent.channel, sent.to, sent.type) == (Channel.TELEGRAM, str(CHAT), "document")
    assert sent.text == "Linus Teammate: Here are the notes"  # the caption
    assert (sent.filename, sent.media_url) == ("notes.txt", None)  # uploaded
    assert content(stack, sent) == NOTES
    assert notes(stack) == []


async def test_whatsapp_gif_goes_as_a_document_with_its_caption(stack: Stack) -> None:
    """Regression: a GIF went as an ``image`` (JPEG and PNG only), which WhatsApp refuses."""
    conversation_id = await whatsapp_conversation(stack)
    files = [("dance.gif", "image/gif", GIF)]
    (sent,) = await sent_after_reply(stack, conversation_id, "Enjoy", files, 1)
    assert (sent.channel, sent.type, sent.mime_type) == (Channel.WHATSAPP, "document", "image/gif")
    assert (sent.text, sent.filename) == ("Linus Teammate: Enjoy", "dance.gif")
    assert notes(stack) == []


async def test_whatsapp_webp_goes_as_a_sticker_after_the_text(stack: Stack) -> None:
    """Stickers take no caption: the text goes first, on its own."""
    conversation_id = await whatsapp_conversation(stack)
    files = [("smile.webp", "image/webp", WEBP)]
    text, sticker = await sent_after_reply(stack, conversation_id, "Cheers", files, 2)
    assert (text.type, text.text) == ("text", "Linus Teammate: Cheers")
    assert (sticker.type, sticker.text, sticker.mime_type) == ("sticker", None, "image/webp")
    assert notes(stack) == []


async def test_several_attachments_follow_the_text_each_by_its_method(stack: Stack) -> None:
    conversation_id = await telegram_conversation(stack)
    files = [
        ("a.png", "image/png", PNG),
        ("b.mp4", "video/mp4", MP4),
        ("c.txt", "text/plain", NOTES),
    ]
    sent = await sent_after_reply(stack, conversation_id, "Three files", files, 4)
    assert [(m.type, m.text) for m in sent] == [
        ("text", "Linus Teammate: Three files"),
        ("image", None),
        ("video", None),
        ("document", None),
    ]
    assert [m.media_url is not None for m in sent[1:]] == [True, True, False]
    assert content(stack, sent[3]) == NOTES
    assert notes(stack) == []


async def test_a_text_over_the_caption_limit_goes_before_the_attachment(stack: Stack) -> None:
    conversation_id = await telegram_conversation(stack)
    long_text = "word " * 220  # 1,100 characters: over Telegram's 1,024 for a caption
    files = [("q.pdf", "application/pdf", PDF)]
    text, document = await sent_after_reply(stack, conversation_id, long_text, files, 2)
    assert text.type == "text"
    assert text.text is not None
    assert text.text.startswith("Linus Teammate: word word")
    assert (document.type, document.text) == ("document", None)
    assert document.media_url is not None  # a PDF: Telegram fetches it by URL


async def test_sms_body_is_the_caption_of_the_mms(stack: Stack) -> None:
    await stack.sms(PHONE, "the receipt please")
    await eventually(lambda: settled(stack, 1))
    conversation_id = str(only(stack)["id"])
    files = [("receipt.png", "image/png", PNG)]
    (sent,) = await sent_after_reply(stack, conversation_id, "Here you go", files, 1)
    assert (sent.channel, sent.text) == (Channel.TWILIO, "Linus Teammate: Here you go")
    assert sent.media_url is not None


async def test_a_file_too_large_to_fetch_for_an_upload_leaves_a_note(
    database_url: str, tmp_path: Path
) -> None:
    async with open_stack(
        database_url=database_url,
        media_dir=str(tmp_path / "media"),
        max_media_bytes=2048,
        retry_base_seconds=0.05,
        retry_cap_seconds=0.2,
    ) as stack:
        conversation_id = await telegram_conversation(stack)
        files = [("notes.txt", "text/plain", NOTES)]  # 2,800 bytes
        await stack.sandbox.intercom.teammates.reply(
            conversation_id, "Here are the notes", admin_id=LINUS, attachments=files
        )
        await eventually(lambda: bool(notes(stack)) and stack.node.dispatcher.inflight == 0)
        (note,) = notes(stack)
        assert "the attachment could not be fetched to upload it to telegram" in note
        (text,) = stack.sent()  # the caption that could not ride on the file goes alone
        assert (text.type, text.text) == ("text", "Linus Teammate: Here are the notes")
        assert (await stack.node.journal.statistics()).dead == 0
