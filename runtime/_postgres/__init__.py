"""The PostgreSQL journal backend: :class:`PostgresJournal`, :func:`open_postgres_journal` and
the :class:`AppendedHint` its wake-ups come through."""

from .journal import AppendedHint as AppendedHint
from .journal import PostgresJournal as PostgresJournal
from .journal import open_postgres_journal as open_postgres_journal

__all__ = ["AppendedHint", "PostgresJournal", "open_postgres_journal"]
