"""The PostgreSQL journal's schema, and setting it up or migrating it at start.

Schema versions: 1 had entries, state, leases, meta and windows; 2 added media
(``journal_media``, ``journal_media_links``) in place. A newer version is refused, never
downgraded.
"""

from __future__ import annotations

import asyncpg

from .._errors import JournalError

__all__ = ["SCHEMA_VERSION", "migrate"]

# 1: entries, state, leases, meta, windows. 2: media (journal_media, journal_media_links), added
# in place by migrate on a journal of version 1.
SCHEMA_VERSION = 2
# Advisory lock key (per database) for schema set-up; appends.py has the one that orders appends.
_SCHEMA_LOCK = 0x7468_726C_0000_0001

_SCHEMA = """
CREATE TABLE IF NOT EXISTS journal_entries (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    key         TEXT             NOT NULL,
    partition   INTEGER          NOT NULL,
    dedupe_id   TEXT             NOT NULL UNIQUE,
    payload     BYTEA            NOT NULL,
    created_at  DOUBLE PRECISION NOT NULL,
    status      SMALLINT         NOT NULL DEFAULT 0,
    last_error  TEXT,
    finished_at DOUBLE PRECISION
);
CREATE INDEX IF NOT EXISTS journal_pending ON journal_entries (id) WHERE status = 0;
CREATE INDEX IF NOT EXISTS journal_pending_partition
    ON journal_entries (partition, id) WHERE status = 0;
CREATE INDEX IF NOT EXISTS journal_pending_key ON journal_entries (key, id) WHERE status = 0;
CREATE INDEX IF NOT EXISTS journal_dead ON journal_entries (id) WHERE status = 2;
CREATE INDEX IF NOT EXISTS journal_done ON journal_entries (finished_at) WHERE status = 1;
CREATE TABLE IF NOT EXISTS journal_state (
    key        TEXT             PRIMARY KEY,
    value      BYTEA            NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL
);
CREATE TABLE IF NOT EXISTS journal_leases (
    partition  INTEGER     PRIMARY KEY,
    owner      TEXT        NOT NULL,
    epoch      BIGINT      NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);
CREATE TABLE IF NOT EXISTS journal_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS journal_windows (
    name    TEXT    PRIMARY KEY,
    window_ BIGINT  NOT NULL,
    used    INTEGER NOT NULL,
    granted INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS journal_media (
    digest    TEXT             PRIMARY KEY,
    size      BIGINT           NOT NULL,
    stored_at DOUBLE PRECISION NOT NULL,
    content   BYTEA            NOT NULL
);
CREATE INDEX IF NOT EXISTS journal_media_stored ON journal_media (stored_at);
CREATE TABLE IF NOT EXISTS journal_media_links (
    token     TEXT             PRIMARY KEY,
    digest    TEXT             NOT NULL REFERENCES journal_media (digest) ON DELETE CASCADE,
    mime_type TEXT             NOT NULL,
    filename  TEXT             NOT NULL,
    stored_at DOUBLE PRECISION NOT NULL
);
CREATE INDEX IF NOT EXISTS journal_media_links_digest ON journal_media_links (digest);
"""


async def migrate(pool: asyncpg.Pool[asyncpg.Record], partitions: int) -> None:
    """Create the schema or bring an older version up to date, and check it fits.

    Raises:
        JournalError: the database holds a journal of another partition count or a newer
            schema version.
    """
    async with pool.acquire() as conn, conn.transaction():
        # Serialised, since nodes starting together would race on CREATE ... IF NOT EXISTS.
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _SCHEMA_LOCK)
        await conn.execute(_SCHEMA)
        for name, value in (
            ("schema_version", SCHEMA_VERSION),
            ("partitions", partitions),
        ):
            await conn.execute(
                "INSERT INTO journal_meta (name, value) VALUES ($1, $2)"
                " ON CONFLICT (name) DO NOTHING",
                name,
                str(value),
            )
        # A journal of an earlier version has just got what it lacked (never a downgrade:
        # a newer one stays as it is, and is refused below).
        await conn.execute(
            "UPDATE journal_meta SET value = $1 WHERE name = 'schema_version' AND value::int < $2",
            str(SCHEMA_VERSION),
            SCHEMA_VERSION,
        )
        rows: dict[str, str] = {
            row[0]: row[1] for row in await conn.fetch("SELECT name, value FROM journal_meta")
        }
    if int(rows["schema_version"]) > SCHEMA_VERSION:
        raise JournalError(
            f"journal schema version {rows['schema_version']} is newer than this program's"
            f" ({SCHEMA_VERSION})"
        )
    if int(rows["partitions"]) != partitions:
        raise JournalError(
            f"journal was created with {rows['partitions']} partitions, not {partitions}"
        )
