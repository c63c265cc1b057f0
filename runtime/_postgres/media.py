"""The PostgreSQL journal's media store: contents by digest, tokens naming them (``put_media``,
``get_media``, ``prune_media`` of :class:`Journal`)."""

from __future__ import annotations

from .._errors import JournalError, JournalUnavailable
from .._journal import StoredMedia
from .aio import Conn, count, is_permanent
from .bridge import PostgresBridge

__all__ = ["PostgresMedia"]


class PostgresMedia(PostgresBridge):
    """The media methods of :class:`PostgresJournal`."""

    async def put_media(
        self, token: str, content: bytes, *, digest: str, mime_type: str, filename: str
    ) -> None:
        now = self._now()

        async def store(conn: Conn) -> None:
            # The content crosses the wire only when it is not stored yet.
            renewed = await conn.execute(
                "UPDATE journal_media SET stored_at = GREATEST(stored_at, $2) WHERE digest = $1",
                digest,
                now,
            )
            if renewed == "UPDATE 0":
                await conn.execute(
                    "INSERT INTO journal_media (digest, size, stored_at, content)"
                    " VALUES ($1, $2, $3, $4) ON CONFLICT (digest) DO UPDATE"
                    " SET stored_at = GREATEST(journal_media.stored_at, excluded.stored_at)",
                    digest,
                    len(content),
                    now,
                    content,
                )
            await conn.execute(
                "INSERT INTO journal_media_links (token, digest, mime_type, filename, stored_at)"
                " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (token) DO UPDATE SET"
                " digest = excluded.digest, mime_type = excluded.mime_type,"
                " filename = excluded.filename,"
                " stored_at = GREATEST(journal_media_links.stored_at, excluded.stored_at)",
                token,
                digest,
                mime_type,
                filename,
                now,
            )

        try:
            await self._call(store, write=True, what="media write")
        except JournalUnavailable as exc:
            cause = exc.__cause__
            if isinstance(cause, Exception) and is_permanent(cause):  # say a NUL in the name
                raise _media_error(cause) from cause
            raise
        except (ValueError, TypeError) as exc:  # a value asyncpg cannot encode
            raise _media_error(exc) from exc

    async def get_media(self, token: str, *, stored_after: float) -> StoredMedia | None:
        async def query(conn: Conn) -> StoredMedia | None:
            row = await conn.fetchrow(
                "SELECT m.content, l.mime_type, l.filename, l.stored_at"
                " FROM journal_media_links AS l JOIN journal_media AS m USING (digest)"
                " WHERE l.token = $1 AND l.stored_at >= $2",
                token,
                stored_after,
            )
            return None if row is None else StoredMedia(row[0], row[1], row[2], row[3])

        return await self._call(query, write=False, what="media read", transaction=False)

    async def prune_media(
        self, *, stored_before: float, max_bytes: int = 0, keep: str | None = None
    ) -> int:
        async def delete(conn: Conn) -> int:
            links = await conn.execute(
                "DELETE FROM journal_media_links WHERE stored_at < $1", stored_before
            )
            expired = await conn.fetch(
                "SELECT digest FROM journal_media WHERE stored_at < $1", stored_before
            )
            deleted = count(links) + await _delete_media(conn, [row[0] for row in expired])
            if max_bytes > 0:
                # Newest first, as long as they fit; the rest (the oldest) go.
                over = await conn.fetch(
                    "SELECT digest FROM (SELECT digest, sum(size) OVER"
                    " (ORDER BY stored_at DESC, digest DESC) AS newer FROM journal_media) AS t"
                    " WHERE newer > $1 AND digest IS DISTINCT FROM $2",
                    max_bytes,
                    keep,
                )
                deleted += await _delete_media(conn, [row[0] for row in over])
            return deleted

        return await self._call(delete, write=True, what="media prune")


def _media_error(exc: Exception) -> JournalError:
    return JournalError(f"PostgreSQL cannot store this media: {type(exc).__name__}: {exc}"[:500])


async def _delete_media(conn: Conn, digests: list[str]) -> int:
    """Delete these contents and their tokens; returns how many rows went."""
    if not digests:
        return 0
    links = await conn.execute(
        "DELETE FROM journal_media_links WHERE digest = ANY($1::text[])", digests
    )
    media = await conn.execute("DELETE FROM journal_media WHERE digest = ANY($1::text[])", digests)
    return count(links) + count(media)
