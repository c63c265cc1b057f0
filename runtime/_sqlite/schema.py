"""The SQLite journal's schema, and opening a connection to it (creating or upgrading the schema).

Schema versions: 1 had entries, state and meta; 2 added media (``journal_media``,
``journal_media_links``) in place. A newer version is never downgraded.
"""

from __future__ import annotations

import sqlite3

__all__ = ["SCHEMA_VERSION", "connect"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS journal_entries (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    key         TEXT    NOT NULL,
    partition   INTEGER NOT NULL,
    dedupe_id   TEXT    NOT NULL UNIQUE,
    payload     BLOB    NOT NULL,
    created_at  REAL    NOT NULL,
    status      INTEGER NOT NULL DEFAULT 0,
    last_error  TEXT,
    finished_at REAL
);
CREATE INDEX IF NOT EXISTS journal_pending ON journal_entries (id) WHERE status = 0;
CREATE INDEX IF NOT EXISTS journal_pending_key ON journal_entries (key, id) WHERE status = 0;
CREATE INDEX IF NOT EXISTS journal_dead ON journal_entries (id) WHERE status = 2;
CREATE INDEX IF NOT EXISTS journal_done ON journal_entries (finished_at) WHERE status = 1;
CREATE TABLE IF NOT EXISTS journal_state (
    key        TEXT PRIMARY KEY,
    value      BLOB NOT NULL,
    updated_at REAL NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS journal_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS journal_media (
    digest    TEXT    PRIMARY KEY,
    size      INTEGER NOT NULL,
    stored_at REAL    NOT NULL,
    content   BLOB    NOT NULL
);
CREATE INDEX IF NOT EXISTS journal_media_stored ON journal_media (stored_at);
CREATE TABLE IF NOT EXISTS journal_media_links (
    token     TEXT PRIMARY KEY,
    digest    TEXT NOT NULL REFERENCES journal_media (digest) ON DELETE CASCADE,
    mime_type TEXT NOT NULL,
    filename  TEXT NOT NULL,
    stored_at REAL NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS journal_media_links_digest ON journal_media_links (digest);
"""
# 1: entries, state, meta. 2: media (journal_media, journal_media_links), added in place.
SCHEMA_VERSION = "2"


def connect(path: str, partitions: int, *, read_only: bool) -> sqlite3.Connection:
    """A connection to the journal at ``path`` in WAL mode with ``synchronous=FULL``; the
    writer's (not ``read_only``) also creates the schema, brings an earlier version up to
    date and checks the partition count (raising :class:`sqlite3.DatabaseError`)."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA busy_timeout = 5000")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("PRAGMA foreign_keys = ON")  # a media content's tokens go with it
    if read_only:
        conn.execute("PRAGMA query_only = 1")
    else:
        conn.executescript(_SCHEMA)
        conn.execute(
            "INSERT INTO journal_meta (name, value) VALUES ('schema_version', ?) "
            "ON CONFLICT (name) DO NOTHING",
            (SCHEMA_VERSION,),
        )
        # A journal of an earlier version has just got the tables it lacked (never a
        # downgrade: a newer version stays as it is).
        conn.execute(
            "UPDATE journal_meta SET value = ? WHERE name = 'schema_version'"
            " AND CAST(value AS INTEGER) < CAST(? AS INTEGER)",
            (SCHEMA_VERSION, SCHEMA_VERSION),
        )
        stored = conn.execute("SELECT value FROM journal_meta WHERE name = 'partitions'").fetchone()
        if stored is None:
            conn.execute(
                "INSERT INTO journal_meta (name, value) VALUES ('partitions', ?)",
                (str(partitions),),
            )
        elif int(stored[0]) != partitions:
            raise sqlite3.DatabaseError(
                f"journal was created with {stored[0]} partitions, not {partitions}"
            )
    return conn
