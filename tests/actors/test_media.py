"""The oversize-media store on real files, its header helpers, and the media route for any token
or stored name (issue 15, finding 6)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import h11
import pytest
from hypothesis import given
from hypothesis import strategies as st

from actors.bridge import (
    DirectoryMediaStore,
    JournalMediaStore,
    MediaNotStored,
    content_disposition,
    safe_mime_type,
)
from actors.tools import open_stack
from runtime import open_sqlite_journal


def age(path: Path, seconds: float) -> None:
    """Make ``path`` look ``seconds`` old."""
    then = time.time() - seconds
    os.utime(path, (then, then))


def names(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def blobs(directory: Path) -> list[Path]:
    return sorted((directory / "blobs").iterdir())


async def test_one_copy_per_content_and_one_token_per_content_type_and_name(
    tmp_path: Path,
) -> None:
    store = DirectoryMediaStore(tmp_path)
    first = await store.save(b"a" * 5000, "video/mp4", "clip.mp4")
    assert await store.save(b"a" * 5000, "video/mp4", "clip.mp4") == first
    other_name = await store.save(b"a" * 5000, "video/mp4", "other.mp4")
    assert other_name != first
    assert len(blobs(tmp_path)) == 1
    stored = await store.open(other_name)
    assert stored is not None
    assert (stored.content, stored.filename) == (b"a" * 5000, "other.mp4")


async def test_tokens_depend_on_the_server_key(tmp_path: Path) -> None:
    a = await DirectoryMediaStore(tmp_path / "a").save(b"same", "image/png", "x.png")
    b = await DirectoryMediaStore(tmp_path / "b").save(b"same", "image/png", "x.png")
    assert a != b
    assert (tmp_path / "a" / ".key").stat().st_mode & 0o077 == 0
    # Another store on the same directory (a restart) keeps the key and so the token.
    assert await DirectoryMediaStore(tmp_path / "a").save(b"same", "image/png", "x.png") == a


async def test_expired_files_are_not_served_and_are_swept(tmp_path: Path) -> None:
    store = DirectoryMediaStore(tmp_path, retention_seconds=60)
    token = await store.save(b"old" * 2000, "video/mp4", "old.mp4")
    for path in [tmp_path / f"{token}.json", *blobs(tmp_path)]:
        age(path, 120)
    assert await store.open(token) is None
    assert await store.sweep() == 2
    assert blobs(tmp_path) == []
    assert not (tmp_path / f"{token}.json").exists()


async def test_sending_a_file_again_renews_its_retention(tmp_path: Path) -> None:
    store = DirectoryMediaStore(tmp_path, retention_seconds=60)
    token = await store.save(b"again" * 2000, "video/mp4", "v.mp4")
    for path in [tmp_path / f"{token}.json", *blobs(tmp_path)]:
        age(path, 50)
    assert await store.save(b"again" * 2000, "video/mp4", "v.mp4") == token
    for path in [tmp_path / f"{token}.json", *blobs(tmp_path)]:
        assert time.time() - path.stat().st_mtime < 10
    assert await store.open(token) is not None


async def test_over_the_size_cap_the_oldest_are_evicted_first(tmp_path: Path) -> None:
    store = DirectoryMediaStore(tmp_path, max_bytes=3 * 1000)
    tokens = []
    for i in range(4):
        tokens.append(await store.save(bytes([i]) * 1000, "video/mp4", f"{i}.mp4"))
        for blob in blobs(tmp_path):  # each earlier file 10 s older than the next
            age(blob, time.time() - blob.stat().st_mtime + 10)
    assert len(blobs(tmp_path)) == 3
    assert await store.open(tokens[0]) is None
    for token in tokens[1:]:
        assert await store.open(token) is not None


async def test_a_single_file_over_the_cap_is_still_kept(tmp_path: Path) -> None:
    store = DirectoryMediaStore(tmp_path, max_bytes=100)
    token = await store.save(b"b" * 1000, "video/mp4", "big.mp4")
    assert await store.open(token) is not None


async def test_files_of_the_earlier_layout_are_served_and_expire(tmp_path: Path) -> None:
    store = DirectoryMediaStore(tmp_path, retention_seconds=60)
    token = "L" * 32
    (tmp_path / token).write_bytes(b"legacy")
    record = json.dumps({"mime_type": "image/png", "filename": "l.png"})
    (tmp_path / f"{token}.json").write_text(record)
    stored = await store.open(token)
    assert stored is not None
    assert stored.content == b"legacy"
    age(tmp_path / f"{token}.json", 120)
    assert await store.open(token) is None
    assert await store.sweep() == 2
    assert names(tmp_path) == []


@pytest.mark.parametrize(
    "token",
    [
        "",
        "short",
        "../../etc/passwd",  # deliberate-escape: a hostile token
        "a" * 65,
        "%00" * 10,
        "A" * 32,
        ".key",
        "blobs",
    ],
)
async def test_unknown_or_malformed_tokens_are_not_found(tmp_path: Path, token: str) -> None:
    store = DirectoryMediaStore(tmp_path)
    await store.save(b"x" * 100, "image/png", "x.png")
    assert await store.open(token) is None


async def test_a_record_pointing_outside_the_store_is_not_found(tmp_path: Path) -> None:
    store = DirectoryMediaStore(tmp_path)
    token = "R" * 32
    escape = "../.key"  # deliberate-escape: a hostile record
    record = {"mime_type": "image/png", "filename": "r.png", "sha256": escape}
    (tmp_path / f"{token}.json").write_text(json.dumps(record))
    assert await store.open(token) is None
    (tmp_path / f"{token}.json").write_text("[not, json")
    assert await store.open(token) is None


async def test_journal_stores_on_one_journal_share_the_key_and_so_the_tokens(
    tmp_path: Path,
) -> None:
    """Two nodes on one journal: a token made by one is served by the other (issue 19)."""
    async with open_sqlite_journal(tmp_path / "journal.db") as journal:
        one, other = JournalMediaStore(journal), JournalMediaStore(journal)
        token = await one.save(b"shared" * 1000, "video/mp4", "s.mp4")
        stored = await other.open(token)
        assert stored is not None
        assert (stored.content, stored.mime_type, stored.filename) == (
            b"shared" * 1000,
            "video/mp4",
            "s.mp4",
        )
        assert await other.save(b"shared" * 1000, "video/mp4", "s.mp4") == token
        assert await other.open("../" + token) is None  # deliberate-escape: a hostile token
    async with open_sqlite_journal(tmp_path / "other.db") as journal:  # another key
        assert await JournalMediaStore(journal).save(b"shared" * 1000, "video/mp4", "s.mp4") != (
            token
        )


async def test_a_file_the_journal_cannot_hold_is_refused_for_good(tmp_path: Path) -> None:
    async with open_sqlite_journal(tmp_path / "journal.db") as journal:
        store = JournalMediaStore(journal)
        with pytest.raises(MediaNotStored):  # an OSError: the message goes on with a note
            await store.save(b"x" * 100, "video/mp4", "bad\ud800.mp4")
        token = await store.save(b"x" * 100, "video/mp4", "good.mp4")
        assert await store.open(token) is not None


@given(st.text(max_size=300))
def test_any_filename_makes_a_valid_header(filename: str) -> None:
    header = content_disposition(filename)
    assert header.isascii()
    assert all(32 <= ord(ch) < 127 for ch in header)
    assert header.count('"') == 2
    assert "\\" not in header
    # h11, which refused the unsanitised header with a 500, takes it.
    h11.Response(status_code=200, headers=[("content-disposition", header)])


@pytest.mark.parametrize(
    ("filename", "fallback", "encoded"),
    [
        ("report.pdf", "report.pdf", "report.pdf"),
        ("", "file", "file"),
        ("\r\n\x00", "file", "file"),
        ("../../etc/passwd", "_.._etc_passwd", "_.._etc_passwd"),  # deliberate-escape:
        ("Ελλάδα.txt", "______.txt", "%CE%95%CE%BB%CE%BB%CE%AC%CE%B4%CE%B1.txt"),
        ('a "quoted";\tname', "a _quoted__name", "a%20%22quoted%22%3Bname"),
    ],
)
def test_content_disposition(filename: str, fallback: str, encoded: str) -> None:
    expected = f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{encoded}"
    assert content_disposition(filename) == expected


@pytest.mark.parametrize(
    ("given_type", "served"),
    [
        ("video/mp4", "video/mp4"),
        ("text/plain; charset=utf-8", "text/plain"),
        ("text/html\r\nX-Injected: 1", "application/octet-stream"),
        ("", "application/octet-stream"),
        ("nonsense", "application/octet-stream"),
    ],
)
def test_safe_mime_type(given_type: str, served: str) -> None:
    assert safe_mime_type(given_type) == served


async def test_the_media_route_never_answers_500(tmp_path: Path) -> None:
    """Whatever a token is, and whatever name or type is stored (written here directly, in the
    earlier layout, as a bridge before this fix wrote them): 200 with safe headers, or 404."""
    media = tmp_path / "media"
    media.mkdir()
    stored = {
        "N" * 32: ("evil\r\nSet-Cookie: a=b\x00.pdf", "text/html\r\nX-Injected: 1"),
        "M" * 32: ("\u202e\u2028名前.png", "image/png"),
    }
    for token, (filename, mime) in stored.items():
        (media / token).write_bytes(b"content")
        (media / f"{token}.json").write_text(json.dumps({"mime_type": mime, "filename": filename}))
    (media / f"{'B' * 32}.json").write_text('{"mime_type": 1}')
    async with open_stack(database_url=f"sqlite:///{tmp_path / 'db'}", media_dir=str(media)) as s:
        for token in stored:
            served = await s.http.get(f"/media/{token}")
            assert served.status_code == 200
            assert served.content == b"content"
            assert "set-cookie" not in served.headers
            assert "x-injected" not in served.headers
        assert (await s.http.get(f"/media/{'N' * 32}")).headers["content-type"] == (
            "application/octet-stream"
        )
        for token in ["B" * 32, "nope", "%0d%0a" * 5, "..%2f..%2fetc", "A" * 200, "x/y/z"]:
            assert (await s.http.get(f"/media/{token}")).status_code == 404, token
