"""The Intercom package's exceptions.

::

    IntercomError(Exception)              .status, .request_id (both may be None)
      IntercomTransportError              no response at all (wraps httpx.TransportError)
        IntercomTimeout                   no response in time (wraps httpx.TimeoutException)
      IntercomRateLimited                 429; .retry_after seconds until the window refills
      IntercomUnavailable                 5xx
      IntercomRejected                    any other 4xx; .codes from the error.list body
        IntercomAuthError                 401 / 403
        IntercomNotFound                  404 (unknown or deleted resource)
        IntercomContactMerged             410; .canonical_id from the Link header when present
    WebhookError(Exception)               an Intercom webhook we must answer 4xx to
      WebhookSignatureInvalid             missing, malformed or wrong X-Hub-Signature
      NotificationInvalid                 body is not a notification_event we can read

Names say what happened; the class attribute ``transient`` marks those after which the same
request may succeed later (no response, 429, 5xx), and a rate-limited one has ``retry_after``.
What is retried is decided by the caller's retry policy (``classify``), never here: the client
has no retry loop.
"""

from __future__ import annotations

from typing import ClassVar

__all__ = [
    "IntercomAuthError",
    "IntercomContactMerged",
    "IntercomError",
    "IntercomNotFound",
    "IntercomRateLimited",
    "IntercomRejected",
    "IntercomTimeout",
    "IntercomTransportError",
    "IntercomUnavailable",
    "NotificationInvalid",
    "WebhookError",
    "WebhookSignatureInvalid",
]


class IntercomError(Exception):
    """Base of every error raised by the Intercom client.

    Attributes:
        status: the HTTP status of the response, or None when there was no response.
        request_id: Intercom's ``request_id`` from the ``error.list`` body, when it sent one.
        transient: (class) whether the same request may succeed later (no response, 429, 5xx).
    """

    transient: ClassVar[bool] = False

    def __init__(
        self, message: str, *, status: int | None = None, request_id: str | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.request_id = request_id


class IntercomTransportError(IntercomError):
    """The request got no response (connection refused, reset, protocol error)."""

    transient = True


class IntercomTimeout(IntercomTransportError):
    """The request got no response within the HTTP client's timeout."""


class IntercomRateLimited(IntercomError):
    """Intercom answered 429: the rate-limit window is spent.

    Attributes:
        retry_after: seconds until the window refills, from ``X-RateLimit-Reset`` or
            ``Retry-After`` (0 when Intercom said neither).
        codes: the error codes of the body (usually ``rate_limit_exceeded``).
    """

    transient = True

    def __init__(
        self,
        message: str,
        *,
        retry_after: float,
        codes: tuple[str, ...] = (),
        status: int | None = 429,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message, status=status, request_id=request_id)
        self.retry_after = retry_after
        self.codes = codes


class IntercomUnavailable(IntercomError):
    """Intercom answered with a 5xx status."""

    transient = True


class IntercomRejected(IntercomError):
    """Intercom refused the request with a 4xx status (other than 429).

    Attributes:
        codes: the ``code`` of every entry in the ``error.list`` body, in order.
        messages: the matching ``message`` values (empty strings when absent).
    """

    def __init__(
        self,
        message: str,
        *,
        codes: tuple[str, ...] = (),
        messages: tuple[str, ...] = (),
        status: int | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message, status=status, request_id=request_id)
        self.codes = codes
        self.messages = messages


class IntercomAuthError(IntercomRejected):
    """401 or 403: the access token is invalid or lacks a permission or plan feature."""


class IntercomNotFound(IntercomRejected):
    """404: the resource does not exist (or was deleted, for conversations)."""


class IntercomContactMerged(IntercomRejected):
    """410: the contact was merged into another one.

    Attributes:
        canonical_id: the id of the contact it was merged into, from the ``Link`` header
            (``</contacts/{id}>; rel="canonical"``), or None when the header is absent.
    """

    def __init__(
        self,
        message: str,
        *,
        canonical_id: str | None,
        codes: tuple[str, ...] = (),
        messages: tuple[str, ...] = (),
        status: int | None = 410,
        request_id: str | None = None,
    ) -> None:
        super().__init__(
            message, codes=codes, messages=messages, status=status, request_id=request_id
        )
        self.canonical_id = canonical_id


class WebhookError(Exception):
    """An incoming Intercom webhook that must be refused (a 4xx, never retried by us)."""


class WebhookSignatureInvalid(WebhookError):
    """``X-Hub-Signature`` is missing, malformed, or does not match the body."""


class NotificationInvalid(WebhookError):
    """The body is not a ``notification_event`` we can read; the message is a one-line reason."""
