"""Meta's webhook checks, shared by Messenger, Instagram and WhatsApp: ``X-Hub-Signature-256``
(:func:`verify_meta_signature`) and the ``GET`` verification handshake
(:func:`verify_meta_handshake`)."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from typing import Final

from pydantic import SecretStr

from runtime import Request

from .._decode import constant_time_equal, require_header, require_json
from .._errors import SignatureInvalid

__all__ = [
    "answer_meta_handshake",
    "verify_meta_handshake",
    "verify_meta_request",
    "verify_meta_signature",
]

SIGNATURE_HEADER: Final = "X-Hub-Signature-256"


def verify_meta_signature(body: bytes, signature: str | None, app_secret: str) -> None:
    """Check ``X-Hub-Signature-256`` (``sha256=<hex HMAC-SHA256 of the raw body>``).

    Runs over the exact bytes received (never re-serialized JSON), in constant time. The
    legacy ``X-Hub-Signature`` (SHA-1) is not read.

    Raises:
        SignatureInvalid: the header is missing, malformed or does not match.
    """
    value = require_header(signature, SIGNATURE_HEADER)
    scheme, _, given = value.partition("=")
    if scheme.strip().lower() != "sha256" or not given:
        raise SignatureInvalid(f"{SIGNATURE_HEADER} is not of the form sha256=<hex>")
    expected = hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()
    if not constant_time_equal(given.strip().lower(), expected):
        raise SignatureInvalid(f"{SIGNATURE_HEADER} does not match the body")


def verify_meta_handshake(query: Mapping[str, str], verify_token: str) -> str:
    """Meta's GET verification: return ``hub.challenge`` to echo as the ``text/plain`` body.

    Raises:
        SignatureInvalid: ``hub.mode`` is not ``subscribe``, the token differs (constant-time
            compare) or the challenge is missing (the ingress answers 403, as Meta expects).
    """
    if query.get("hub.mode") != "subscribe":
        raise SignatureInvalid("hub.mode is not 'subscribe'")
    if not constant_time_equal(query.get("hub.verify_token", ""), verify_token):
        raise SignatureInvalid("hub.verify_token does not match")
    challenge = query.get("hub.challenge", "")
    if not challenge:
        raise SignatureInvalid("hub.challenge is missing")
    return challenge


def verify_meta_request(request: Request, app_secret: SecretStr | None) -> None:
    """A webhook ``POST``'s checks before parsing: its signature with the app secret (which the
    spec's ``receives`` made sure of), then a JSON content type.

    Raises:
        SignatureInvalid: the signature is missing or does not match.
        PayloadInvalid: the body is not declared ``application/json``.
    """
    assert app_secret is not None  # the spec's receives
    verify_meta_signature(
        request.body, request.headers.get("x-hub-signature-256"), app_secret.get_secret_value()
    )
    require_json(request.content_type)


def answer_meta_handshake(query: Mapping[str, str], verify_token: SecretStr | None) -> str | None:
    """:func:`verify_meta_handshake` with a view's verify token; None without one (404)."""
    if verify_token is None:
        return None
    return verify_meta_handshake(query, verify_token.get_secret_value())
