"""The SQLite journal's media store: contents by digest, tokens naming them (``put_media``,
``get_media``, ``prune_media`` of :class:`Journal`)."""

from __future__ import annotations

import sqlite3

from .._journal import StoredMedia
from .store import SQLiteStore

__all__ = ["SQLiteMedia"]


class SQLiteMedia(SQLiteStore):
    """The media methods of :class:`SQLiteJournal`."""

    async def put_media(
        self, token: str, content: bytes, *, digest: str, mime_type: str, filename: str
    ) -> None:
        now = self._now()

        def store(conn: sqlite3.Connection) -> None:
            renewed = conn.execute(
                "UPDATE journal_media SET stored_at = max(stored_at, ?) WHERE digest = ?",
                (now, digest),
            ).rowcount
            if not renewed:
                conn.execute(
                    "INSERT INTO journal_media (digest, size, stored_at, content)"
                    " VALUES (?, ?, ?, ?)",
                    (digest, len(content), now, content),
                )
            conn.execute(
                "INSERT INTO journal_media_links (token, digest, mime_type, filename, stored_at)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (token) DO UPDATE SET"
                " digest = excluded.digest, mime_type = excluded.mime_type,"
                " filename = excluded.filename, stored_at = max(stored_at, excluded.stored_at)",
                (token, digest, mime_type, filename, now),
            )

        await self._write(store)

    async def get_media(self, token: str, *, stored_after: float) -> StoredMedia | None:
        def query(conn: sqlite3.Connection) -> StoredMedia | None:
            row = conn.execute(
                "SELECT m.content, l.mime_type, l.filename, l.stored_at"
                " FROM journal_media_links AS l JOIN journal_media AS m USING (digest)"
                " WHERE l.token = ? AND l.stored_at >= ?",
                (token, stored_after),
            ).fetchone()
            return None if row is None else StoredMedia(bytes(row[0]), row[1], row[2], row[3])

        return await self._read(query)

    async def prune_media(
        self, *, stored_before: float, max_bytes: int = 0, keep: str | None = None
    ) -> int:
        def delete(conn: sqlite3.Connection) -> int:
            deleted = conn.execute(
                "DELETE FROM journal_media_links WHERE stored_at < ?", (stored_before,)
            ).rowcount
            deleted += _delete_media(
                conn,
                [
                    row[0]
                    for row in conn.execute(
                        "SELECT digest FROM journal_media WHERE stored_at < ?", (stored_before,)
                    )
                ],
            )
            if max_bytes > 0:
                # Newest first, as long as they fit; the rest (the oldest) go.
                over = conn.execute(
                    "SELECT digest FROM (SELECT digest, sum(size) OVER"
                    " (ORDER BY stored_at DESC, digest DESC) AS newer FROM journal_media)"
                    " WHERE newer > ? AND digest IS NOT ?",
                    (max_bytes, keep),
                ).fetchall()
                deleted += _delete_media(conn, [row[0] for row in over])
            return deleted

        return await self._write(delete)


def _delete_media(conn: sqlite3.Connection, digests: list[str]) -> int:
    """Delete these contents and their tokens; returns how many rows went."""
    deleted = 0
    for digest in digests:
        deleted += conn.execute(
            "DELETE FROM journal_media_links WHERE digest = ?", (digest,)
        ).rowcount
        deleted += conn.execute("DELETE FROM journal_media WHERE digest = ?", (digest,)).rowcount
    return deleted
