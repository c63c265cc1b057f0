"""Attachments end to end (issue 15): a failed or slow download never costs the message's text,
and the oversize-media store keeps one copy per content, for a bounded time, and serves any
stored name safely. A bridge with the sandboxes, SQLite; the store tests run with both media
stores (the journal's database, and a directory; issue 19)."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import trio

from actors.tools import PUBLIC_URL, Stack, open_stack
from channels.sandbox import MediaFault, WebhookMedia
from tests.actors.conftest import eventually
from tests.actors.test_bridge_e2e import bodies, only, part_count

PHONE = "15550002222"
PNG = b"\x89PNG\r\n\x1a\n" + b"p" * 2048


@asynccontextmanager
async def bridge(tmp_path: Path, **overrides: Any) -> AsyncIterator[Stack]:  # noqa: ANN401
    settings: dict[str, Any] = {
        "media_dir": str(tmp_path / "media"),
        "shutdown_drain_seconds": 1.0,
        "retry_base_seconds": 0.05,
        "retry_cap_seconds": 0.2,
        **overrides,
    }
    async with open_stack(database_url=f"sqlite:///{tmp_path / 'db'}", **settings) as s:
        yield s


async def dead_letters(s: Stack) -> int:
    return (await s.node.journal.statistics()).dead


def stored_blobs(media_dir: Path) -> list[Path]:
    """Every file of the media store holding content (not its small name/type records)."""
    return [p for p in media_dir.rglob("*") if p.is_file() and p.stat().st_size >= 4096]


def stored_contents(tmp_path: Path, store: str) -> int:
    """How many contents the bridge's media store holds (in a directory, or in the journal)."""
    if store == "directory":
        return len(stored_blobs(tmp_path / "media"))
    with sqlite3.connect(tmp_path / "db") as conn:
        (count,) = conn.execute("SELECT count(*) FROM journal_media").fetchone()
    conn.close()
    assert not stored_blobs(tmp_path / "media")  # nothing went to the directory
    return int(count)


STORES = pytest.mark.parametrize("store", ["journal", "directory"])


# --- finding 7: one failed attachment never dead-letters the text ----------------------------


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        (MediaFault.FORBIDDEN, "HTTP 403"),
        (MediaFault.REDIRECT_LOOP, "redirects"),
        (MediaFault.GZIP, "content-encoding"),
        (MediaFault.SERVER_ERROR, "HTTP 503"),
    ],
)
async def test_failed_attachment_degrades_to_a_placeholder_and_the_text_lands(
    tmp_path: Path, fault: MediaFault, reason: str
) -> None:
    async with bridge(tmp_path) as s:
        media_id = s.sandbox.providers.add_media(PNG, "image/png")
        s.sandbox.providers.break_media(media_id, fault)
        media = WebhookMedia(ref=media_id, mime_type="image/png")
        assert (await s.whatsapp(PHONE, "my receipt", media=media)).status_code == 200
        assert (await s.whatsapp(PHONE, "and a question")).status_code == 200
        await eventually(lambda: part_count(s) == 2, seconds=10)
        first, second = bodies(only(s))
        assert first.startswith("my receipt\n[image-1.png: could not be downloaded ("), first
        assert reason in first, first
        assert second == "and a question"
        assert await dead_letters(s) == 0


async def test_transient_media_failure_is_retried_before_degrading(tmp_path: Path) -> None:
    async with bridge(tmp_path) as s:
        media_id = s.sandbox.providers.add_media(PNG, "image/png", "receipt.png")
        s.sandbox.providers.break_media(media_id, MediaFault.SERVER_ERROR, times=1)
        media = WebhookMedia(ref=media_id, mime_type="image/png")
        await s.whatsapp(PHONE, "my receipt", media=media)
        await eventually(lambda: part_count(s) == 2, seconds=10)
        source, files = only(s)["parts"]
        assert source["body"] == "my receipt"
        assert [a["size"] for a in files["attachments"]] == [len(PNG)]


# --- finding 10: a download has an overall deadline -------------------------------------------


async def test_dripping_media_url_degrades_within_the_deadline(tmp_path: Path) -> None:
    async with bridge(tmp_path, media_download_timeout_seconds=1.0) as s:
        media_id = s.sandbox.providers.add_media(PNG[:64], "image/png")
        # 64 bytes, one every 0.5 s: 32 s to finish, each gap far below any read timeout.
        s.sandbox.providers.break_media(media_id, MediaFault.DRIP, drip_seconds=0.5)
        started = trio.current_time()
        await s.whatsapp(
            PHONE, "slow photo", media=WebhookMedia(ref=media_id, mime_type="image/png")
        )
        await s.whatsapp(PHONE, "queued behind it")
        await eventually(lambda: part_count(s) == 2, seconds=8)
        assert trio.current_time() - started < 6.0
        first, second = bodies(only(s))
        assert first == "slow photo\n[image-1.png: could not be downloaded (timed out after 1 s)]"
        assert second == "queued behind it"
        assert await dead_letters(s) == 0


# --- finding 6: the oversize-media store ------------------------------------------------------


def links(s: Stack) -> list[str]:
    return [b.rsplit(" ", 1)[1].removeprefix(PUBLIC_URL) for b in bodies(only(s))]


VIDEO = b"\x00\x00\x00\x18ftypmp42" + b"v" * 20_000


@STORES
async def test_the_same_file_sent_forty_times_is_stored_once(tmp_path: Path, store: str) -> None:
    async with bridge(tmp_path, intercom_max_attachment_bytes=4096, media_store=store) as s:
        for _ in range(40):
            media_id = s.sandbox.providers.add_media(VIDEO, "video/mp4")
            media = WebhookMedia(ref=media_id, mime_type="video/mp4")
            assert (await s.whatsapp(PHONE, media=media)).status_code == 200
        await eventually(lambda: part_count(s) == 40, seconds=30)
        assert len(set(links(s))) == 1
        assert stored_contents(tmp_path, store) == 1
        served = await s.http.get(links(s)[0])
        assert served.status_code == 200
        assert served.content == VIDEO


@STORES
async def test_a_filename_with_control_characters_is_served_with_a_safe_header(
    tmp_path: Path, store: str
) -> None:
    async with bridge(tmp_path, intercom_max_attachment_bytes=4096, media_store=store) as s:
        # (A NUL is refused at the edge now: tests/actors/test_media.py covers stored names
        # holding one.)
        name = 'inv\r\nSet-Cookie: a=b\x7f\u202e"oice\\ ñ.pdf'
        media_id = s.sandbox.providers.add_media(VIDEO, "application/pdf", name)
        media = WebhookMedia(ref=media_id, mime_type="application/pdf", filename=name)
        assert (await s.whatsapp(PHONE, media=media)).status_code == 200
        await eventually(lambda: part_count(s) == 1)
        (link,) = links(s)
        served = await s.http.get(link)
        assert served.status_code == 200
        assert served.content == VIDEO
        assert "set-cookie" not in served.headers
        disposition = served.headers["content-disposition"]
        assert disposition == (
            'attachment; filename="invSet-Cookie_ a=b_oice_ n.pdf"; '
            "filename*=UTF-8''invSet-Cookie%3A%20a%3Db%22oice_%20%C3%B1.pdf"
        ), disposition
        assert served.headers["x-content-type-options"] == "nosniff"


@STORES
async def test_stored_media_expires_after_the_retention(tmp_path: Path, store: str) -> None:
    async with bridge(
        tmp_path, intercom_max_attachment_bytes=4096, media_retention_seconds=1.0, media_store=store
    ) as s:
        media_id = s.sandbox.providers.add_media(VIDEO, "video/mp4")
        await s.whatsapp(PHONE, media=WebhookMedia(ref=media_id, mime_type="video/mp4"))
        await eventually(lambda: part_count(s) == 1)
        (link,) = links(s)
        assert (await s.http.get(link)).status_code == 200
        await trio.sleep(1.5)
        assert (await s.http.get(link)).status_code == 404
        # The next stored file sweeps the expired one off the disk.
        other = s.sandbox.providers.add_media(VIDEO + b"2", "video/mp4")
        await s.whatsapp(PHONE, media=WebhookMedia(ref=other, mime_type="video/mp4"))
        await eventually(lambda: part_count(s) == 2)
        assert stored_contents(tmp_path, store) == 1
        assert (await s.http.get(links(s)[1])).status_code == 200
        assert (await s.http.get(link)).status_code == 404


@STORES
async def test_housekeeping_sweeps_expired_media_away(tmp_path: Path, store: str) -> None:
    async with bridge(
        tmp_path, intercom_max_attachment_bytes=4096, media_retention_seconds=1.0, media_store=store
    ) as s:
        media_id = s.sandbox.providers.add_media(VIDEO, "video/mp4")
        await s.whatsapp(PHONE, media=WebhookMedia(ref=media_id, mime_type="video/mp4"))
        await eventually(lambda: part_count(s) == 1)
        assert stored_contents(tmp_path, store) == 1
        # No further save: the bridge's housekeeping (every 5 s) deletes it on its own.
        await eventually(lambda: stored_contents(tmp_path, store) == 0, seconds=12)
