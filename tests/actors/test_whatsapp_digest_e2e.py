"""A customer's WhatsApp file is never lost over how its digest is written (issue 17): the media
lookup's ``sha256`` is accepted in hex or base64, and a download that differs from it is
fetched once more before the message goes on with a placeholder. End to end: a signed webhook
in, the bridge looking the media up and downloading it from the sandbox WhatsApp over HTTP,
the file (or the placeholder) in the sandbox Intercom. SQLite: no journal state is involved
beyond the inbound entry."""

from __future__ import annotations

from pathlib import Path

from actors.tools import Stack
from channels.sandbox import MediaFault, WebhookMedia
from tests.actors.conftest import eventually
from tests.actors.test_bridge_e2e import only, part_count, parts
from tests.actors.test_media_e2e import PNG, bridge

PHONE = "15550004444"


async def _receipt_arrives_whole(s: Stack, media_id: str) -> None:
    """The customer's photo with a caption reaches Intercom as its caption and the file."""
    media = WebhookMedia(ref=media_id, mime_type="image/png")
    assert (await s.whatsapp(PHONE, "my receipt", media=media)).status_code == 200
    await eventually(lambda: part_count(s) == 2)
    source, files = parts(only(s))
    assert source["body"] == "my receipt"
    assert [a["size"] for a in files["attachments"]] == [len(PNG)]


async def test_digest_in_hex_is_accepted(tmp_path: Path) -> None:
    """Regression: only a base64 digest was understood; a hex one cost the customer's photo
    ("[image-1.png: could not be downloaded (…)]")."""
    async with bridge(tmp_path) as s:
        s.sandbox.providers.set_whatsapp_digest_encoding("hex")
        media_id = s.sandbox.providers.add_media(PNG, "image/png")
        await _receipt_arrives_whole(s, media_id)


async def test_a_download_damaged_once_is_fetched_again(tmp_path: Path) -> None:
    """Regression: one download that differed from the digest cost the file."""
    async with bridge(tmp_path) as s:
        media_id = s.sandbox.providers.add_media(PNG, "image/png")
        s.sandbox.providers.break_media(media_id, MediaFault.CORRUPT, times=1)
        await _receipt_arrives_whole(s, media_id)


async def test_a_digest_that_differs_twice_leaves_a_visible_placeholder(tmp_path: Path) -> None:
    async with bridge(tmp_path) as s:
        s.sandbox.providers.set_whatsapp_digest_encoding("hex")
        media_id = s.sandbox.providers.add_media(PNG, "image/png")
        s.sandbox.providers.break_media(media_id, MediaFault.CORRUPT)
        media = WebhookMedia(ref=media_id, mime_type="image/png")
        assert (await s.whatsapp(PHONE, "my receipt", media=media)).status_code == 200
        await eventually(lambda: part_count(s) == 1)
        (source,) = parts(only(s))
        assert source["body"] == (
            "my receipt\n"
            "[image-1.png: could not be downloaded (whatsapp media failed its sha256 check twice)]"
        )
        assert (await s.node.journal.statistics()).dead == 0
