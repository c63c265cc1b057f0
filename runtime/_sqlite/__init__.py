"""The embedded journal backend (SQLite): :class:`SQLiteJournal` and :func:`open_sqlite_journal`.

Modules: ``schema`` (tables, migrations, opening a connection), ``store`` (the connections and
the group-commit writer), ``media`` (the media store), ``journal`` (entries, state, dead letters,
and the class itself).
"""

from .journal import SQLiteJournal as SQLiteJournal
from .journal import open_sqlite_journal as open_sqlite_journal

__all__ = ["SQLiteJournal", "open_sqlite_journal"]
