"""Starting the bridge: open the journal the settings name, and refuse settings that cannot run
a bridge with one line that says which setting and why (never a secret's value)."""

from __future__ import annotations

import errno
import ipaddress
import os
import re
import socket
from collections.abc import AsyncIterator, Collection, Iterator
from contextlib import AbstractContextManager, asynccontextmanager
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit

from pydantic import SecretStr

from channels import Channel
from runtime import (
    AppendedHint,
    Journal,
    JournalError,
    open_postgres_journal,
    open_sqlite_journal,
)

from ..core import Settings, parse_bind
from ..delivery import (
    LeaseStore,
)

__all__ = [
    "ConfigurationError",
    "SharedJournal",
    "StartupError",
    "check_bindable",
    "check_settings",
    "database_url_problem",
    "mask_secrets",
    "open_journal",
    "open_shared_journal",
]


class StartupError(Exception):
    """The bridge cannot start. The message is one line, says what is wrong and ends with the
    setting to look at in parentheses; it never holds a secret's value."""


class ConfigurationError(StartupError):
    """The settings cannot run a bridge (message says which and why)."""


class SharedJournal(LeaseStore, Protocol):
    """What a journal that several nodes share (PostgreSQL) offers besides the journal: partition
    leases (the cluster), counters per time window (the Intercom budget) and append hints (the
    dispatcher's wake-ups)."""

    async def claim_window(
        self, name: str, window: int, want: int, *, limit: int, floor: int = 0
    ) -> int: ...

    def appended_hint(
        self, partitions: Collection[int] | None = None
    ) -> AbstractContextManager[AppendedHint]: ...


@asynccontextmanager
async def open_journal(settings: Settings, *, create: bool = True) -> AsyncIterator[Journal]:
    """Open the journal named by ``THREADLINE_DATABASE_URL``.

    With ``create=False`` a SQLite file that does not exist is an error rather than a new, empty
    journal (the ``deadletters`` commands: a mistyped path must not look like "no dead letters").

    Raises:
        StartupError: the journal cannot be opened (one line, the password masked).
    """
    async with open_shared_journal(settings, create=create) as (journal, _):
        yield journal


@asynccontextmanager
async def open_shared_journal(
    settings: Settings, *, create: bool = True
) -> AsyncIterator[tuple[Journal, SharedJournal | None]]:
    """:func:`open_journal`, and the journal again as a :class:`SharedJournal` when it is one
    (PostgreSQL), else None (SQLite: one node)."""
    path = settings.sqlite_path
    opened = False
    try:
        if path is not None:
            _check_sqlite_path(path, create=create)
            async with open_sqlite_journal(path, partitions=settings.partitions) as journal:
                opened = True
                yield journal, None
            return
        problem = database_url_problem(settings.database_url)
        if problem is not None:
            raise ConfigurationError(f"{problem} ({_DATABASE})")
        url = settings.database_url.replace("postgres://", "postgresql://", 1)
        async with open_postgres_journal(url, partitions=settings.partitions) as pg_journal:
            opened = True
            yield pg_journal, pg_journal
    except Exception as exc:
        failure = None if opened else _journal_start_error(exc, settings)
        if failure is None:
            raise
        raise failure from None


_DATABASE = "THREADLINE_DATABASE_URL"


def _journal_start_error(exc: Exception, settings: Settings) -> StartupError | None:
    """The one-line :class:`StartupError` for a journal that failed to open; None when ``exc``
    is something else (a bug, whose traceback should show)."""
    if isinstance(exc, StartupError):
        return None  # already one
    leaves = list(_leaves(exc))
    if leaves and all(isinstance(leaf, JournalError) for leaf in leaves):
        reason = " ".join(str(leaves[0]).split())
        return StartupError(f"{mask_secrets(reason, settings)} ({_DATABASE})")
    if settings.sqlite_path is None and any(
        isinstance(leaf, ValueError | OverflowError | TypeError) for leaf in leaves
    ):
        # The driver's parser quotes pieces of the URL (a password holding a "/" becomes the
        # "port" it cannot read): say what, never the value.
        return ConfigurationError(f"the database URL is malformed ({_DATABASE})")
    return None


def _leaves(exc: BaseException) -> Iterator[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            yield from _leaves(inner)
    else:
        yield exc


def _check_sqlite_path(path: str, *, create: bool) -> None:
    file = Path(path)
    directory = file.parent
    if file.is_dir():
        raise ConfigurationError(f"the SQLite journal {path} is a directory ({_DATABASE})")
    if file.exists():
        if not os.access(file, os.R_OK | os.W_OK):
            raise ConfigurationError(f"the SQLite journal {path} is not writable ({_DATABASE})")
        return
    if not create:
        raise ConfigurationError(f"there is no journal at {path} ({_DATABASE})")
    if not directory.exists():
        raise ConfigurationError(
            f"the directory of the SQLite journal {path} does not exist ({_DATABASE})"
        )
    if not directory.is_dir():
        raise ConfigurationError(f"{directory} is not a directory ({_DATABASE})")
    if not os.access(directory, os.W_OK | os.X_OK):
        raise ConfigurationError(
            f"the directory of the SQLite journal {path} is not writable ({_DATABASE})"
        )


_IPV6_HOST = re.compile(r"\[[^\]]+\](?::([^,]*))?")


def database_url_problem(url: str) -> str | None:
    """Why ``url`` is not a PostgreSQL URL the driver can read; None when it is (or SQLite).

    The answer never quotes the URL: a password holding a ``/``, ``?``, ``#`` or ``@`` that is
    not percent-encoded spills into the parts the driver parses after it.
    """
    if url.startswith("sqlite:///"):
        return None
    if not url.startswith(("postgresql://", "postgres://")):
        return "the database URL is neither sqlite:///path nor postgresql://…"
    try:
        netloc = urlsplit(url).netloc
    except ValueError:
        return "the database URL is malformed (an unclosed '[' around an IPv6 host?)"
    if netloc.count("@") > 1:
        return "the database URL has more than one '@': write '@' in a user or password as %40"
    hosts = netloc.rpartition("@")[2]
    for spec in hosts.split(",") if hosts else []:
        if spec.startswith("/"):
            continue  # a Unix socket directory
        if spec.startswith("["):
            match = _IPV6_HOST.fullmatch(spec)
            if match is None:
                return "the database URL's IPv6 host is malformed"
            port = match.group(1) or ""
        else:
            port = spec.partition(":")[2]
        if port and not (port.isdigit() and 1 <= int(port) <= 65535):
            return (
                "the database URL's port is not a number from 1 to 65535 (percent-encode a "
                "'/', '?' or '#' in the password: %2F, %3F, %23)"
            )
    return None


_URL_PASSWORD = re.compile(r"(\b[a-z][a-z0-9+.-]*://[^:/@\s]*:)[^@\s]+@", re.IGNORECASE)


def mask_secrets(text: str, settings: Settings | None) -> str:
    """``text`` with every secret of ``settings`` (and any URL's password) replaced by ``***``."""
    if settings is not None:
        secrets = [
            value.get_secret_value()
            for value in settings.__dict__.values()
            if isinstance(value, SecretStr)
        ]
        try:
            accounts = settings.accounts
        except ValueError:  # an unusable file: its problems name no value
            pass
        else:
            for entry in accounts.entries:
                secrets.extend(value.get_secret_value() for value in entry.secrets.values())
        userinfo = settings.database_url.partition("://")[2].rpartition("@")[0]
        secrets.append(userinfo.partition(":")[2])
        for secret in sorted(secrets, key=len, reverse=True):
            if len(secret) >= 3:
                text = text.replace(secret, "***")
    return _URL_PASSWORD.sub(r"\1***@", text)


def check_settings(settings: Settings) -> None:
    """Refuse settings that would run insecurely or not at all (before anything starts)."""
    problems = settings.secret_problems()
    if problems:
        raise ConfigurationError("; ".join(problems))
    host, _ = parse_bind(settings.metrics_bind)
    if settings.metrics_token is None and not _is_loopback(host):
        raise ConfigurationError(
            f"THREADLINE_METRICS_BIND={settings.metrics_bind} is not a loopback address: "
            "/metrics would be exposed unauthenticated (THREADLINE_METRICS_TOKEN)"
        )
    if settings.intercom_access_token is None:
        raise ConfigurationError(
            "the Intercom access token is not set (THREADLINE_INTERCOM_ACCESS_TOKEN)"
        )
    problem = database_url_problem(settings.database_url)
    if problem is not None:
        raise ConfigurationError(f"{problem} ({_DATABASE})")
    if settings.whatsapp_reengagement_template is not None:
        _check_reengagement(settings)


def _check_reengagement(settings: Settings) -> None:
    """A re-engagement template is checked in the WABA of each app that sends: every one needs
    its WABA id (the accounts file's ``business_account_id``; the environment variables' app:
    THREADLINE_WHATSAPP_BUSINESS_ACCOUNT_ID)."""
    entries = settings.accounts.of(Channel.WHATSAPP)
    if entries:
        lacking = [entry.id for entry in entries if entry.business_account_id is None]
        if lacking:
            raise ConfigurationError(
                "a re-engagement template needs each WhatsApp app's business account, to check"
                " it is approved there: THREADLINE_ACCOUNTS_FILE "
                f"{settings.accounts_file}: whatsapp account(s) "
                + ", ".join(repr(account) for account in lacking)
                + " have no business_account_id"
            )
    elif settings.whatsapp_business_account_id is None or settings.whatsapp_access_token is None:
        raise ConfigurationError(
            "a re-engagement template needs WhatsApp and its business account, to check it is"
            " approved (THREADLINE_WHATSAPP_BUSINESS_ACCOUNT_ID)"
        )


def check_bindable(bind: str, setting: str) -> None:
    """Refuse a ``host:port`` this process cannot listen on (in use, not a local address), as
    the server will bind it, before anything starts. An inherited socket (``fd://``) and port 0
    always pass."""
    if bind.startswith("fd://"):
        return
    host, port = parse_bind(bind)
    if port == 0:
        return
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise StartupError(f"{bind} is already in use ({setting})") from None
            reason = exc.strerror or type(exc).__name__
            raise StartupError(f"cannot listen on {bind}: {reason} ({setting})") from None


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
