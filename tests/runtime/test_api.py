"""Pins the runtime's public API: a change here is a deliberate change of the contract."""

from __future__ import annotations

import runtime


def test_all_is_sorted_and_exact() -> None:
    assert runtime.__all__ == sorted(runtime.__all__)
    assert runtime.__all__ == [
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


def test_every_exported_name_exists() -> None:
    for name in runtime.__all__:
        assert getattr(runtime, name) is not None, name
