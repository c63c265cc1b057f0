"""What the bridge tells a client about the send under way: a reply token, and the send's id.

Some providers answer a message cheaply with a short-lived token the webhook carried (LINE's
``replyToken``: a reply is free, a push counts against the monthly quota). The bridge keeps the
thread's latest token and, around its sends to that thread, makes it the current one
(:func:`replying_with`); a client that can use it reads :data:`REPLY_TOKEN` and marks it
``used`` (a token answers once). Every other client ignores it.

:data:`SEND_ID` names the send under way, the same for each retry of it (its recorded step):
a client whose provider dedupes on a key (LINE's ``X-Line-Retry-Key``) derives the key from it,
so that a retry after an answer lost or a 5xx is not sent twice.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

__all__ = ["REPLY_TOKEN", "SEND_ID", "ReplyToken", "replying_with", "sending_as"]


@dataclass(slots=True)
class ReplyToken:
    """A token to answer ``customer``'s message with, received at UNIX time ``received_at``."""

    token: str
    customer: str
    received_at: float
    used: bool = False
    """Spent: a send answered with it, or the provider refused it (expired, used)."""


REPLY_TOKEN: ContextVar[ReplyToken | None] = ContextVar("reply_token", default=None)
"""The reply token of the sends under way in this task (None: none, push)."""


@contextmanager
def replying_with(token: ReplyToken | None) -> Iterator[ReplyToken | None]:
    """Make ``token`` the current reply token for the sends inside the block."""
    reset = REPLY_TOKEN.set(token)
    try:
        yield token
    finally:
        REPLY_TOKEN.reset(reset)


SEND_ID: ContextVar[str | None] = ContextVar("send_id", default=None)
"""The id of the send under way, stable across its retries (None: unknown)."""


@contextmanager
def sending_as(send_id: str) -> Iterator[None]:
    """Make ``send_id`` the id of the sends inside the block."""
    reset = SEND_ID.set(send_id)
    try:
        yield
    finally:
        SEND_ID.reset(reset)
