"""Turning untrusted webhook bytes into validated models, or a one-line PayloadInvalid."""

from __future__ import annotations

import hmac
from datetime import UTC, datetime
from typing import Final, TypeVar
from urllib.parse import parse_qsl

from pydantic import BaseModel, ValidationError

from ._errors import PayloadInvalid, PayloadTooLarge, SignatureInvalid

__all__ = [
    "MAX_WEBHOOK_BYTES",
    "check_size",
    "constant_time_equal",
    "form_pairs",
    "require_header",
    "timestamp",
    "validate_json",
]

MAX_WEBHOOK_BYTES: Final = 1024 * 1024
"""Default cap on a webhook body; provider webhooks are a few KiB."""

# Unix seconds accepted from providers: 1970 .. 2286 (keeps datetime conversion total).
MAX_TIMESTAMP: Final = 9_999_999_999
_MAX_FORM_FIELDS: Final = 1000

M = TypeVar("M", bound=BaseModel)


def check_size(body: bytes, max_bytes: int, provider: str) -> None:
    if len(body) > max_bytes:
        raise PayloadTooLarge(f"{provider} webhook body is {len(body)} bytes, over {max_bytes}")


def _describe(exc: ValidationError) -> str:
    first = exc.errors(include_url=False, include_input=False)[0]
    where = ".".join(str(part) for part in first["loc"]) or "body"
    more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return f"{where}: {first['msg']}{more}"


def validate_json(model: type[M], body: bytes, provider: str) -> M:
    """Validate JSON bytes into ``model``; every failure becomes PayloadInvalid."""
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        raise PayloadInvalid(f"invalid {provider} payload: {_describe(exc)}") from exc


def form_pairs(body: bytes, provider: str) -> list[tuple[str, str]]:
    """Decode an ``application/x-www-form-urlencoded`` body into ordered pairs."""
    try:
        text = body.decode("utf-8")
        return parse_qsl(
            text,
            keep_blank_values=True,
            encoding="utf-8",
            errors="strict",
            max_num_fields=_MAX_FORM_FIELDS,
        )
    except UnicodeDecodeError as exc:
        raise PayloadInvalid(f"{provider} form body is not UTF-8") from exc
    except ValueError as exc:
        raise PayloadInvalid(f"{provider} form body is malformed: {exc}") from exc


def timestamp(seconds: int) -> datetime:
    """Unix seconds (validated to ``0..MAX_TIMESTAMP``) as an aware UTC datetime."""
    return datetime.fromtimestamp(seconds, tz=UTC)


def constant_time_equal(given: str, expected: str) -> bool:
    """Compare two ASCII-ish strings in constant time (non-ASCII input simply fails)."""
    try:
        return hmac.compare_digest(given.encode("ascii"), expected.encode("ascii"))
    except UnicodeEncodeError:
        return False


def require_header(value: str | None, name: str) -> str:
    if value is None or not value:
        raise SignatureInvalid(f"missing {name} header")
    return value
