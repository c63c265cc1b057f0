"""Where attachments too large to upload into Intercom are kept.

Intercom takes files inline (base64 ``attachment_files``) only up to a safe size; a larger file
is kept by the bridge under an unguessable token and linked from the conversation, served by
the bridge at ``{THREADLINE_PUBLIC_URL}/media/{token}``.

Two stores (``THREADLINE_MEDIA_STORE``), one behaviour:

* :class:`JournalMediaStore` (the default) keeps files in the journal's database, so every node
  sharing the journal serves every link, and files survive restarts and rescheduling.
* :class:`DirectoryMediaStore` keeps them under ``THREADLINE_MEDIA_DIR``; with several nodes
  that works only when the directory is storage they all share.

The token is an HMAC of the content's hash, type and name under a random server-side key (the
journal's state ``media:key``, or ``<dir>/.key``): the same file sent again gets the same token
(and is stored once), and nobody without the key can derive a token, even from the file itself.
Every save renews the file's time; it expires ``retention_seconds`` after that: an expired file
answers as unknown at once and is deleted by the next sweep (after each save, and the bridge's
housekeeping). With ``max_bytes``, the least recently stored contents are evicted first to keep
the total under it (never the one just stored).

Layout under the directory::

    .key                a random server-side key (created on first use, mode 0600)
    blobs/<sha256 hex>  each content once, however often it is sent
    <token>.json        {"mime_type", "filename", "sha256"}: one per (content, type, name)

Files of the earlier directory layout (``<token>`` beside ``<token>.json``) are still served and
expire the same way. The journal store also serves (and sweeps) what a directory store left in
``THREADLINE_MEDIA_DIR``, so links sent before a switch keep working until they expire.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import threading
import time
import unicodedata
import urllib.parse
from base64 import urlsafe_b64encode
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Protocol

import trio

from runtime import Journal, JournalError, JournalUnavailable

__all__ = [
    "DirectoryMediaStore",
    "JournalMediaStore",
    "MediaNotStored",
    "MediaStore",
    "StoredFile",
    "content_disposition",
    "safe_mime_type",
]

logger = logging.getLogger("threadline.media")

_TOKEN: Final = re.compile(r"^[A-Za-z0-9_-]{20,64}$")
_HEX: Final = re.compile(r"^[0-9a-f]{64}$")
_MIME_PART: Final = r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}"
_MIME: Final = re.compile(rf"^{_MIME_PART}/{_MIME_PART}$")
_FALLBACK_SAFE: Final = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 !#$&'()+,-.=@[]^_`{}~"
)
_MAX_NAME: Final = 150
_KEY_STATE: Final = "media:key"


@dataclass(frozen=True, slots=True)
class StoredFile:
    """A stored attachment, read whole (files here are at most the download cap)."""

    content: bytes
    mime_type: str
    filename: str


class MediaNotStored(OSError):
    """A file the store cannot keep for good (not a passing outage): the message goes on with
    a note instead of the link."""


class MediaStore(Protocol):
    """Keeps oversize files for their links (see the module's description)."""

    async def save(self, content: bytes, mime_type: str, filename: str) -> str:
        """Store ``content`` (once per content); returns its token. Sweeps afterwards.

        Raises:
            OSError: it could not be stored (:class:`MediaNotStored`: it never will be).
            JournalUnavailable: the journal store's database is unreachable (worth a retry).
        """
        ...

    async def open(self, token: str) -> StoredFile | None:
        """The stored file for ``token``, or None: unknown, expired, evicted or malformed.

        Raises:
            JournalUnavailable: the journal store's database is unreachable.
        """
        ...

    async def sweep(self) -> int:
        """Delete expired files and, over ``max_bytes``, the least recently stored; returns how
        many were deleted."""
        ...


def _token(key: bytes, digest: str, mime_type: str, filename: str) -> str:
    record = json.dumps({"mime_type": mime_type, "filename": filename, "sha256": digest})
    mac = hmac.new(key, record.encode(), hashlib.sha256).digest()
    return urlsafe_b64encode(mac[:24]).decode()


def _sha256(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


class JournalMediaStore:
    """Files in the journal's database (``journal_media``), shared by every node on it; each
    kept ``retention_seconds`` after it was last stored; ``max_bytes`` (0: no cap) bounds the
    total, least recently stored evicted first. ``legacy`` (a directory store's directory)
    is still read and swept, never written."""

    def __init__(
        self,
        journal: Journal,
        *,
        retention_seconds: float = 30 * 86400.0,
        max_bytes: int = 0,
        legacy: str | Path | None = None,
    ) -> None:
        self._journal = journal
        self._retention = retention_seconds
        self._max_bytes = max_bytes
        self._key: bytes | None = None
        self._legacy = (
            None
            if legacy is None
            else DirectoryMediaStore(legacy, retention_seconds=retention_seconds)
        )

    async def save(self, content: bytes, mime_type: str, filename: str) -> str:
        digest = await trio.to_thread.run_sync(_sha256, content)  # 25 MiB: not on the loop
        token = _token(await self._secret(), digest, mime_type, filename)
        try:
            await self._journal.put_media(
                token, content, digest=digest, mime_type=mime_type, filename=filename
            )
        except JournalUnavailable:
            raise
        except JournalError as exc:
            raise MediaNotStored(str(exc)) from exc
        try:
            await self._prune(keep=digest)
        except JournalError as exc:  # stored; the next sweep deletes what is due
            logger.warning("media store: sweep after a save failed: %s", exc)
        return token

    async def open(self, token: str) -> StoredFile | None:
        if not _TOKEN.match(token):
            return None
        stored = await self._journal.get_media(token, stored_after=time.time() - self._retention)
        if stored is not None:
            return StoredFile(stored.content, stored.mime_type, stored.filename)
        if self._legacy is not None:
            return await self._legacy.open(token)
        return None

    async def sweep(self) -> int:
        deleted = await self._prune(keep=None)
        if self._legacy is not None:
            deleted += await self._legacy.sweep()
        return deleted

    async def _prune(self, *, keep: str | None) -> int:
        deleted = await self._journal.prune_media(
            stored_before=time.time() - self._retention, max_bytes=self._max_bytes, keep=keep
        )
        if deleted:
            logger.info("media store: %d expired or evicted files deleted", deleted)
        return deleted

    async def _secret(self) -> bytes:
        """The HMAC key, one for every node on the journal (made by whoever comes first)."""
        if self._key is None:
            key = await self._journal.get_state(_KEY_STATE)
            if key is None or len(key) < 32:
                async with self._journal.lock(_KEY_STATE):
                    key = await self._journal.get_state(_KEY_STATE)
                    if key is None or len(key) < 32:
                        key = secrets.token_bytes(32)
                        await self._journal.put_state({_KEY_STATE: key})
            self._key = key
        return self._key


class DirectoryMediaStore:
    """Files under ``directory``, deduplicated by content, each kept ``retention_seconds``
    after it was last stored; ``max_bytes`` (0: no cap) bounds the total, oldest evicted
    first."""

    def __init__(
        self,
        directory: str | Path,
        *,
        retention_seconds: float = 30 * 86400.0,
        max_bytes: int = 0,
    ) -> None:
        self._dir = Path(directory)
        self._blobs = self._dir / "blobs"
        self._retention = retention_seconds
        self._max_bytes = max_bytes
        self._key: bytes | None = None
        self._lock = threading.Lock()  # saves and sweeps of this process, one at a time

    async def save(self, content: bytes, mime_type: str, filename: str) -> str:
        return await trio.to_thread.run_sync(self._save, content, mime_type, filename)

    async def open(self, token: str) -> StoredFile | None:
        if not _TOKEN.match(token):
            return None
        return await trio.to_thread.run_sync(self._read, token)

    async def sweep(self) -> int:
        return await trio.to_thread.run_sync(self._sweep)

    # --- in a worker thread -------------------------------------------------------------------

    def _save(self, content: bytes, mime_type: str, filename: str) -> str:
        with self._lock:
            return self._save_locked(content, mime_type, filename)

    def _save_locked(self, content: bytes, mime_type: str, filename: str) -> str:
        digest = _sha256(content)
        record = json.dumps({"mime_type": mime_type, "filename": filename, "sha256": digest})
        token = _token(self._secret(), digest, mime_type, filename)
        blob = self._blobs / digest
        self._blobs.mkdir(parents=True, exist_ok=True)
        try:
            os.utime(blob)  # stored already: only its time moves on
        except FileNotFoundError:
            _write_atomically(blob, content)
        _write_atomically(self._dir / f"{token}.json", record.encode())
        self._sweep_locked(blob)
        return token

    def _read(self, token: str) -> StoredFile | None:
        meta_path = self._dir / f"{token}.json"
        try:
            if self._expired(meta_path.stat().st_mtime):
                return None
            meta = json.loads(meta_path.read_bytes())
            digest = meta.get("sha256")
            if digest is None:  # the earlier layout: the content beside its record
                blob = self._dir / token
            elif isinstance(digest, str) and _HEX.match(digest):
                blob = self._blobs / digest
            else:
                return None
            content = blob.read_bytes()
            return StoredFile(content, str(meta["mime_type"]), str(meta["filename"]))
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return None  # unknown, evicted, half-written or not ours: not found

    def _expired(self, mtime: float, now: float | None = None) -> bool:
        return mtime < (now or time.time()) - self._retention

    def _sweep(self) -> int:
        with self._lock:
            return self._sweep_locked(None)

    def _sweep_locked(self, keep: Path | None) -> int:
        now = time.time()
        deleted = 0
        blobs: list[tuple[float, int, Path]] = []
        with contextlib.suppress(FileNotFoundError), os.scandir(self._blobs) as found:
            for item in found:
                with contextlib.suppress(OSError):
                    stat = item.stat()
                    if self._expired(stat.st_mtime, now):
                        deleted += _unlink(Path(item.path))
                    else:
                        blobs.append((stat.st_mtime, stat.st_size, Path(item.path)))
        if self._max_bytes > 0:
            total = sum(size for _, size, _ in blobs)
            for _, size, path in sorted(blobs):
                if total <= self._max_bytes:
                    break
                if path != keep:
                    deleted += _unlink(path)
                    total -= size
        with contextlib.suppress(FileNotFoundError), os.scandir(self._dir) as found:
            for item in found:
                name = item.name
                record = name.endswith(".json") and _TOKEN.match(name[:-5]) is not None
                staged = name.startswith(".") and name != ".key" and item.is_file()
                if not (record or staged):
                    continue
                with contextlib.suppress(OSError):
                    if self._expired(item.stat().st_mtime, now):
                        deleted += _unlink(Path(item.path))
                        if record:
                            deleted += _unlink(self._dir / name[:-5])  # earlier-layout content
        if deleted:
            logger.info("media store: %d expired or evicted files deleted", deleted)
        return deleted

    def _secret(self) -> bytes:
        if self._key is None:
            path = self._dir / ".key"
            self._dir.mkdir(parents=True, exist_ok=True)
            try:
                key = path.read_bytes()
            except FileNotFoundError:
                key = b""
            if len(key) < 32:
                staged = self._dir / f".key.{secrets.token_hex(8)}"
                fd = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "wb") as out:
                    out.write(secrets.token_bytes(32))
                try:
                    os.link(staged, path)  # atomic; whoever links first wins
                except FileExistsError:
                    pass
                finally:
                    staged.unlink()
                key = path.read_bytes()
            self._key = key
        return self._key


def _write_atomically(path: Path, content: bytes) -> None:
    staged = path.with_name(f".{path.name}.{secrets.token_hex(8)}")
    try:
        staged.write_bytes(content)
        os.replace(staged, path)
    finally:
        staged.unlink(missing_ok=True)


def _unlink(path: Path) -> int:
    try:
        path.unlink()
    except FileNotFoundError:
        return 0
    return 1


def _clean(filename: str) -> str:
    """The name without control, format or separator characters, path separators or
    surrounding blanks and dots; at most 150 characters; never empty."""
    kept = "".join(
        "_" if ch in "/\\" else ch
        for ch in unicodedata.normalize("NFC", filename)
        if unicodedata.category(ch) not in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp")
    )
    kept = kept.strip(" .")[:_MAX_NAME].strip(" .")
    return kept or "file"


def content_disposition(filename: str) -> str:
    """``attachment`` with an ASCII ``filename`` fallback and the UTF-8 ``filename*``
    (RFC 6266, RFC 8187): no control characters, quotes or backslashes can reach the header."""
    name = _clean(filename)
    ascii_name = "".join(
        ch if ch in _FALLBACK_SAFE else "_"
        for ch in unicodedata.normalize("NFKD", name)
        if not unicodedata.combining(ch)
    )
    encoded = urllib.parse.quote(name, safe="!#$&+-.^_`|~")
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{encoded}"


def safe_mime_type(mime_type: str) -> str:
    """``type/subtype`` when it is a plain media type (parameters dropped), else
    ``application/octet-stream``."""
    bare = mime_type.split(";", 1)[0].strip()
    return bare if _MIME.match(bare) else "application/octet-stream"
