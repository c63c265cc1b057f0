"""The provider error ladder, written once: a failed provider response → the
:class:`~channels.ChannelError` tree (pure).

Each provider reads its own error body (its code and message) and names its codes by meaning
(:class:`ErrorCodes`); :func:`classify_error` climbs the same ladder for all of them: the
customer-service window, rate limits (with ``Retry-After``), the recipient, transient (5xx),
anything else refused.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from ._errors import (
    ChannelError,
    OutsideCustomerWindow,
    RecipientUnavailable,
    SendRateLimited,
    SendRejected,
    SendTransient,
)
from ._http import retry_after_seconds

__all__ = ["ErrorCodes", "classify_error"]


@dataclass(frozen=True, slots=True)
class ErrorCodes:
    """A provider's error codes by what they mean to the bridge."""

    window: frozenset[int] = frozenset()
    """WhatsApp's 24-hour customer-service window is closed."""
    rate: frozenset[int] = frozenset()
    """Throttled (as HTTP 429 always is)."""
    recipient: frozenset[int] = frozenset()
    """The recipient is invalid, blocked, unsubscribed or unreachable."""
    transient: frozenset[int] = frozenset()
    """Worth retrying (as any 5xx is)."""


def classify_error(
    provider: str,
    response: httpx.Response,
    code: int | None,
    message: str,
    codes: ErrorCodes,
    *,
    recipient: bool = False,
    retry_after: float | None = None,
    code_in_text: bool = True,
    exhausted: bool = False,
) -> ChannelError:
    """The error for ``response``, whose body said ``code`` and ``message``.

    ``recipient``: the provider's body says the recipient is unavailable in a way a code does
    not (Telegram's descriptions). ``retry_after``: the body's own retry delay, before the
    ``Retry-After`` header. ``code_in_text``: whether the line names the code (off where the
    code is the HTTP status). ``exhausted``: the body says a quota is spent (LINE's "monthly
    limit" 429), which no retry within the period cures: refused, not throttled.
    """
    status = response.status_code
    text = f"{provider} HTTP {status}"
    text += f" error {code}" if code is not None and code_in_text else ""
    text += f": {message}" if message else ""
    if code in codes.window:
        return OutsideCustomerWindow(text, code=code, status=status)
    if exhausted:
        return SendRejected(text, code=code, status=status)
    if code in codes.rate or status == 429:
        if retry_after is None:
            retry_after = retry_after_seconds(response.headers.get("retry-after"))
        return SendRateLimited(text, code=code, status=status, retry_after=retry_after)
    if code in codes.recipient or recipient:
        return RecipientUnavailable(text, code=code, status=status)
    if status >= 500 or code in codes.transient:
        return SendTransient(text, code=code, status=status)
    return SendRejected(text, code=code, status=status)
