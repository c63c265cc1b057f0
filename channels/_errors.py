"""Exceptions of the channel adapters.

Two trees. Inbound webhooks that we refuse (the ingress maps them to 4xx, never retried)::

    WebhookRejected(Exception)      .reason: one line, safe to return to the caller
      SignatureInvalid              missing or wrong signature / secret / verify token   → 401
        AccountMismatch             signed by one account, about a number or bot of another → 401
      PayloadInvalid                not a payload we can read (JSON, form, schema, range) → 400
      PayloadTooLarge               body over the size cap                                → 413

Outbound calls to a provider (sends and media downloads); the bridge's ``classify`` decides
what is retried, these only say what happened, and mark (class attribute ``transient``) the
ones after which the same call may succeed later; a rate-limited one also has ``retry_after``::

    ChannelError(Exception)         .code (provider error code), .status (HTTP), both optional
      SendRateLimited               throttled (transient); .retry_after seconds when told
      SendTransient                 5xx, timeout or transport failure: worth retrying (transient)
        SendInDoubt                 no answer in time: the provider may have acted (no resend)
      RecipientUnavailable          invalid, blocked, unsubscribed or unreachable recipient
      OutsideCustomerWindow         WhatsApp 24-hour window closed (131047, Twilio 63016)
      SendRejected                  any other refusal (4xx, bad credentials, bad request)
      MediaUnavailable              media expired, missing, or failed its checksum
      MediaTooLarge                 media over the download cap (declared or streamed)
      MediaHostForbidden            media URL outside the allow-list; nothing was fetched

Messages never contain tokens, secrets or auth headers.
"""

from __future__ import annotations

from typing import ClassVar

__all__ = [
    "AccountMismatch",
    "ChannelError",
    "MediaHostForbidden",
    "MediaTooLarge",
    "MediaUnavailable",
    "OutsideCustomerWindow",
    "PayloadInvalid",
    "PayloadTooLarge",
    "RecipientUnavailable",
    "SendInDoubt",
    "SendRateLimited",
    "SendRejected",
    "SendTransient",
    "SignatureInvalid",
    "WebhookRejected",
]


def _one_line(text: str, limit: int = 300) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


class WebhookRejected(Exception):
    """An inbound webhook we refuse; ``reason`` is one line fit for the HTTP response."""

    def __init__(self, reason: str) -> None:
        self.reason = _one_line(reason)
        super().__init__(self.reason)


class SignatureInvalid(WebhookRejected):
    """The request is unsigned or its signature, secret header or verify token is wrong."""


class AccountMismatch(SignatureInvalid):
    """The signature is an account's, but the payload is about a business number or bot that
    is not that account's (another account's secret never vouches for it)."""


class PayloadInvalid(WebhookRejected):
    """The body is not a payload of this provider that we can read."""


class PayloadTooLarge(WebhookRejected):
    """The body is larger than the configured cap."""


class ChannelError(Exception):
    """A provider call (send or media download) failed.

    Attributes:
        code: the provider's error code when it gave one (Graph ``error.code``, Twilio
            ``code``, Telegram ``error_code``), else None.
        status: the HTTP status when there was a response, else None.
        transient: (class) whether the same call may succeed later (5xx, 429, timeouts).
    """

    transient: ClassVar[bool] = False

    def __init__(self, message: str, *, code: int | None = None, status: int | None = None) -> None:
        self.code = code
        self.status = status
        super().__init__(_one_line(message))


class SendRateLimited(ChannelError):
    """The provider throttled us; ``retry_after`` is the wait in seconds when it said so."""

    transient = True

    def __init__(
        self,
        message: str,
        *,
        code: int | None = None,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.retry_after = retry_after
        super().__init__(message, code=code, status=status)


class SendTransient(ChannelError):
    """A 5xx, timeout or transport failure: the same call may succeed later."""

    transient = True


class SendInDoubt(SendTransient):
    """The request went out but its answer did not come in time: the provider may have acted
    on it. Safe to repeat for a read (a download); a send is not repeated (no provider offers
    a lookup), its sender leaves a note instead."""


class RecipientUnavailable(ChannelError):
    """The recipient is invalid, blocked us, unsubscribed, or cannot be reached."""


class OutsideCustomerWindow(ChannelError):
    """A free-form message outside WhatsApp's 24-hour customer-service window."""


class SendRejected(ChannelError):
    """Any other refusal by the provider (bad request, bad credentials, unsupported media)."""


class MediaUnavailable(ChannelError):
    """The media is gone (expired or unknown id) or its content failed the checksum."""


class MediaTooLarge(ChannelError):
    """The media is larger than the download cap; reading stopped at the cap."""


class MediaHostForbidden(ChannelError):
    """A media URL points outside the allowed origins; no request was made to it."""
