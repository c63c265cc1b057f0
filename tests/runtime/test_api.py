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
        "BoundAddress",
        "ChildSpec",
        "Classifier",
        "Decision",
        "DecisionKind",
        "FastHistogram",
        "GiveUpHook",
        "KeyedActors",
        "KeyedStatistics",
        "Mailbox",
        "MailboxFull",
        "MailboxStatistics",
        "RestartIntensity",
        "RestartLimitExceeded",
        "RetryPolicy",
        "RuntimeMetrics",
        "ShutdownReport",
        "Supervisor",
        "Timer",
        "crash_always",
        "hypercorn_config",
        "open_keyed_actors",
        "serve_asgi",
    ]


def test_every_exported_name_exists() -> None:
    for name in runtime.__all__:
        assert getattr(runtime, name) is not None, name
