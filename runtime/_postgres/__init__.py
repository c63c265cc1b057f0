"""The PostgreSQL journal backend: :class:`PostgresJournal`, :func:`open_postgres_journal` and
the :class:`AppendedHint` its wake-ups come through."""

from .journal import PostgresJournal as PostgresJournal
from .journal import open_postgres_journal as open_postgres_journal
from .notify import AppendedHint as AppendedHint

__all__ = ["AppendedHint", "PostgresJournal", "open_postgres_journal"]
