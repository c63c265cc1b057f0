"""Sandbox configuration (each of Intercom's awkward behaviours switchable at runtime) and the
per-window rate limiter."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["FaultPlan", "RateLimiter", "SandboxAdmin", "SandboxConfig", "decide_fault"]


class SandboxAdmin(BaseModel):
    """A scripted teammate of the sandbox workspace."""

    model_config = ConfigDict(frozen=True)

    id: str
    name: str
    email: str


class SandboxConfig(BaseModel):
    """Everything switchable in the sandbox; change it in-process or by ``POST
    /_sandbox/config`` with a partial JSON object (validated, applied atomically).

    Attributes:
        search_lag_seconds: a new contact stays invisible to ``/contacts/search`` this long.
        rate_limit: requests per window (None: no limit and no ``X-RateLimit-*`` headers).
        rate_window_seconds: window length (Intercom: 10 s); windows align to the UNIX epoch.
        latency_seconds: added to every API answer.
        answer_delay_seconds: added to every successful API answer *after* its change is made
            (a create visible in the sandbox before its caller hears of it).
        answer_delay_endpoints: the endpoints (``assign_conversation``, …) the answer delay
            applies to; empty: every endpoint.
        error_rate: share of API requests answered 5xx (before any state change).
        timeout_rate: share of API requests held ``timeout_hold_seconds`` and then answered 504.
        conflicts: creating a contact with an existing external id or email answers 409
            ``conflict`` naming the existing id (never for a duplicate phone), as Intercom
            does; off, duplicates are created.
        strict_custom_attributes: unknown custom attribute keys are rejected with 400.
        webhook_url / client_secret: where and how teammate (and API-caused) webhooks go.
        webhook_topics: topics delivered (Intercom delivers only subscribed topics).
        api_webhooks: also emit webhooks for changes made through the API (admin replies by
            the bridge come back as ``conversation.admin.replied``, as with real Intercom).
        app_package_code: set on every part created through the API.
        auto_reply_seconds: when set, a teammate answers every customer message this long
            after it arrives (``auto_reply_text`` with ``{body}`` replaced), with the usual
            webhook; replies keep per-conversation order. Needs the background worker.
        auto_reply_admin_id: who answers (default: the assignee, else the first teammate
            other than the token's admin).
        drop_next_parts: test fault, off by default: the next N contact replies are answered
            200 with their part but never stored (a lost message, for checking checkers).
        swap_next_parts: test fault, off by default: each of the next N contact replies is
            stored only after the following contact reply in the same conversation (two
            adjacent parts reordered). Both count down to 0 as they fire.
        assignment_rules_team_id: the team the workspace's assignment rules give every
            conversation (``POST /conversations/{id}/run_assignment_rules``); None: no rule
            matches and the conversation stays as it is.
    """

    model_config = ConfigDict(validate_assignment=True, extra="forbid")

    search_lag_seconds: float = Field(default=0.0, ge=0)
    rate_limit: int | None = Field(default=None, ge=1)
    rate_window_seconds: float = Field(default=10.0, gt=0)
    latency_seconds: float = Field(default=0.0, ge=0)
    answer_delay_seconds: float = Field(default=0.0, ge=0)
    answer_delay_endpoints: frozenset[str] = frozenset()
    error_rate: float = Field(default=0.0, ge=0, le=1)
    timeout_rate: float = Field(default=0.0, ge=0, le=1)
    timeout_hold_seconds: float = Field(default=30.0, ge=0)
    conflicts: bool = True
    strict_custom_attributes: bool = True
    webhook_url: str | None = None
    client_secret: str = "sandbox-client-secret"  # noqa: S105 - a public default for the fake
    webhook_topics: frozenset[str] = frozenset(
        {
            "conversation.admin.replied",
            "conversation.admin.noted",
            "conversation.admin.assigned",
            "conversation.admin.open.assigned",
            "conversation.admin.closed",
            "conversation.admin.opened",
            "conversation.admin.snoozed",
            "conversation.deleted",
            "contact.merged",
        }
    )
    api_webhooks: bool = True
    app_package_code: str = "threadline-sandbox"
    auto_reply_seconds: float | None = Field(default=None, ge=0)
    auto_reply_text: str = "Thanks for your message: {body}"
    auto_reply_admin_id: str | None = None
    drop_next_parts: int = Field(default=0, ge=0)
    swap_next_parts: int = Field(default=0, ge=0)
    assignment_rules_team_id: str | None = Field(default=None, pattern=r"^[0-9]+$")


_WINDOW_HISTORY = 1000  # windows the limiter remembers for ``stats()["windows"]``


@dataclass(slots=True)
class RateLimiter:
    """Counts requests per epoch-aligned window, like Intercom's 10-second windows (its
    ``X-RateLimit-Reset`` values are multiples of 10 s), and remembers the last windows'
    counts: ``{index: [limit, allowed, refused]}``."""

    window_index: int = -1
    count: int = 0
    history: dict[int, list[int]] = field(default_factory=dict)
    window: float = 10.0

    def hit(self, limit: int, window: float, now: float) -> tuple[bool, dict[str, str]]:
        """Count one request at wall time ``now``; (allowed, X-RateLimit-* headers)."""
        index = math.floor(now / window)
        if index != self.window_index:
            self.window_index = index
            self.count = 0
        self.count += 1
        self.window = window
        counts = self.history.setdefault(index, [limit, 0, 0])
        counts[0] = limit
        counts[1 if self.count <= limit else 2] += 1
        if len(self.history) > _WINDOW_HISTORY:
            del self.history[next(iter(self.history))]
        reset = math.ceil((index + 1) * window)
        headers = {
            "X-RateLimit-Limit": str(limit),
            "X-RateLimit-Remaining": str(max(0, limit - self.count)),
            "X-RateLimit-Reset": str(reset),
        }
        return self.count <= limit, headers

    def windows(self) -> list[dict[str, Any]]:
        """The remembered windows, oldest first: start (UNIX time), limit, allowed, refused."""
        return [
            {"start": index * self.window, "limit": limit, "allowed": allowed, "refused": refused}
            for index, (limit, allowed, refused) in self.history.items()
        ]


@dataclass(frozen=True, slots=True)
class FaultPlan:
    """What to do to one API request: add latency, answer 5xx, or hold it open."""

    latency: float = 0.0
    error_status: int | None = None
    hold: float | None = None


def decide_fault(config: SandboxConfig, rng: random.Random) -> FaultPlan:
    """Draw the faults for one request from the configured shares (seeded ``rng``)."""
    if config.timeout_rate and rng.random() < config.timeout_rate:
        return FaultPlan(latency=config.latency_seconds, hold=config.timeout_hold_seconds)
    if config.error_rate and rng.random() < config.error_rate:
        return FaultPlan(latency=config.latency_seconds, error_status=rng.choice((500, 502, 503)))
    return FaultPlan(latency=config.latency_seconds)
