"""Threadline's actor runtime on Trio: domain-free.

Layers, bottom up: :class:`Mailbox` (bounded, ordered) → :class:`KeyedActors` (one actor task per
key, activated on demand, passivated when idle, restarted on crash with a budget, parked when it
is spent) → :class:`Supervisor` (one-for-one restarts of long-lived services). Retries follow a
pure :class:`RetryPolicy`; metrics go to an injected prometheus-client registry through
:class:`RuntimeMetrics`; :func:`serve_asgi` runs an ASGI app on Hypercorn's Trio worker.

This package never imports the product packages (an import-linter contract checks it).
"""

from ._actor import Actor as Actor
from ._actor import ActorContext as ActorContext
from ._actor import ActorRef as ActorRef
from ._actor import Timer as Timer
from ._asgi import BodyTooLarge as BodyTooLarge
from ._asgi import Handler as Handler
from ._asgi import Request as Request
from ._asgi import Response as Response
from ._asgi import Router as Router
from ._asgi import json_response as json_response
from ._asgi import text_response as text_response
from ._errors import ActorError as ActorError
from ._errors import ActorStopped as ActorStopped
from ._errors import JournalError as JournalError
from ._errors import JournalUnavailable as JournalUnavailable
from ._errors import MailboxFull as MailboxFull
from ._errors import RestartLimitExceeded as RestartLimitExceeded
from ._incarnations import GiveUpHook as GiveUpHook
from ._journal import Appended as Appended
from ._journal import DeadLetter as DeadLetter
from ._journal import Entry as Entry
from ._journal import EntryStatus as EntryStatus
from ._journal import Erased as Erased
from ._journal import Fence as Fence
from ._journal import Journal as Journal
from ._journal import JournalStatistics as JournalStatistics
from ._journal import Lease as Lease
from ._journal import NewEntry as NewEntry
from ._journal import StoredMedia as StoredMedia
from ._journal import partition_of as partition_of
from ._keyed import AtCapacity as AtCapacity
from ._keyed import KeyedActors as KeyedActors
from ._keyed import KeyedStatistics as KeyedStatistics
from ._keyed import ShutdownReport as ShutdownReport
from ._keyed import open_keyed_actors as open_keyed_actors
from ._mailbox import Mailbox as Mailbox
from ._mailbox import MailboxStatistics as MailboxStatistics
from ._metrics import ActorStats as ActorStats
from ._metrics import FastHistogram as FastHistogram
from ._metrics import RuntimeMetrics as RuntimeMetrics
from ._postgres import AppendedHint as AppendedHint
from ._postgres import PostgresJournal as PostgresJournal
from ._postgres import open_postgres_journal as open_postgres_journal
from ._retry import Classifier as Classifier
from ._retry import Decision as Decision
from ._retry import DecisionKind as DecisionKind
from ._retry import RetryPolicy as RetryPolicy
from ._retry import crash_always as crash_always
from ._serve import BoundAddress as BoundAddress
from ._serve import freeze_startup_heap as freeze_startup_heap
from ._serve import hypercorn_config as hypercorn_config
from ._serve import serve_asgi as serve_asgi
from ._sqlite import SQLiteJournal as SQLiteJournal
from ._sqlite import open_sqlite_journal as open_sqlite_journal
from ._supervisor import ChildSpec as ChildSpec
from ._supervisor import RestartIntensity as RestartIntensity
from ._supervisor import Supervisor as Supervisor

__all__ = [
    "Actor",
    "ActorContext",
    "ActorError",
    "ActorRef",
    "ActorStats",
    "ActorStopped",
    "Appended",
    "AppendedHint",
    "AtCapacity",
    "BodyTooLarge",
    "BoundAddress",
    "ChildSpec",
    "Classifier",
    "DeadLetter",
    "Decision",
    "DecisionKind",
    "Entry",
    "EntryStatus",
    "Erased",
    "FastHistogram",
    "Fence",
    "GiveUpHook",
    "Handler",
    "Journal",
    "JournalError",
    "JournalStatistics",
    "JournalUnavailable",
    "KeyedActors",
    "KeyedStatistics",
    "Lease",
    "Mailbox",
    "MailboxFull",
    "MailboxStatistics",
    "NewEntry",
    "PostgresJournal",
    "Request",
    "Response",
    "RestartIntensity",
    "RestartLimitExceeded",
    "RetryPolicy",
    "Router",
    "RuntimeMetrics",
    "SQLiteJournal",
    "ShutdownReport",
    "StoredMedia",
    "Supervisor",
    "Timer",
    "crash_always",
    "freeze_startup_heap",
    "hypercorn_config",
    "json_response",
    "open_keyed_actors",
    "open_postgres_journal",
    "open_sqlite_journal",
    "partition_of",
    "serve_asgi",
    "text_response",
]
