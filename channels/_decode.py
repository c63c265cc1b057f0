"""Turning untrusted webhook bytes into validated models, or a one-line PayloadInvalid.

Every JSON body and form body a caller sends passes one gate here: the JSON parser
(pydantic-core's, in Rust) refuses malformed text, nesting deeper than :data:`MAX_JSON_DEPTH`
and lone surrogate escapes; then :func:`check_strings` walks the parsed values once and refuses
any string (object keys included) that holds a NUL, is not UTF-8-encodable or is longer than
:data:`MAX_STRING_CHARS` (:func:`check_json_strings` skips the walk when the body's bytes show
no such string is possible). What passes can be stored by either journal backend and sent to
Intercom, so a caller's bad string is a 400 at the edge, never a journal error
(docs/architecture.md §1.4).
"""

from __future__ import annotations

import hmac
from datetime import UTC, datetime
from typing import Any, Final, TypeVar
from urllib.parse import parse_qsl

from pydantic import BaseModel, Field, ValidationError
from pydantic_core import from_json

from ._errors import PayloadInvalid, PayloadTooLarge, SignatureInvalid

__all__ = [
    "MAX_JSON_DEPTH",
    "MAX_LIST_ITEMS",
    "MAX_STRING_CHARS",
    "MAX_WEBHOOK_BYTES",
    "bounded_list",
    "check_json_strings",
    "check_size",
    "check_strings",
    "constant_time_equal",
    "form_pairs",
    "require_header",
    "require_json",
    "timestamp",
    "validate_json",
]

MAX_WEBHOOK_BYTES: Final = 1024 * 1024
"""Default cap on a webhook body; provider webhooks are a few KiB."""

# Unix seconds accepted from providers: 1970 .. 2286 (keeps datetime conversion total).
MAX_TIMESTAMP: Final = 9_999_999_999
_MAX_FORM_FIELDS: Final = 1000

MAX_STRING_CHARS: Final = 65_536
"""Longest string accepted anywhere in a webhook or API body (message texts are a few KiB)."""

MAX_JSON_DEPTH: Final = 200
"""Deepest JSON nesting accepted: pydantic-core's parser refuses anything deeper (its fixed
recursion limit), without recursing in Python. Provider payloads nest under 15 levels."""

MAX_LIST_ITEMS: Final = 1000
"""Most items in any list of a webhook (Meta batches at most 1,000 updates per request)."""

M = TypeVar("M", bound=BaseModel)


def bounded_list(*, required: bool = False) -> Any:  # noqa: ANN401 - pydantic's Field
    """A webhook list field: at most :data:`MAX_LIST_ITEMS`, and validation ends at its first
    bad item (``fail_fast``). Without it a signed 1 MB body of ``[1,1,…]`` costs pydantic
    500,000 errors: seconds of a blocked event loop and hundreds of MB."""
    if required:
        return Field(max_length=MAX_LIST_ITEMS, fail_fast=True)
    return Field(default=[], max_length=MAX_LIST_ITEMS, fail_fast=True)


def check_size(body: bytes, max_bytes: int, provider: str) -> None:
    if len(body) > max_bytes:
        raise PayloadTooLarge(f"{provider} webhook body is {len(body)} bytes, over {max_bytes}")


def _describe(exc: ValidationError) -> str:
    first = exc.errors(include_url=False, include_input=False)[0]
    where = ".".join(str(part) for part in first["loc"]) or "body"
    more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return f"{where}: {first['msg']}{more}"


def _string_fault(text: str) -> str | None:
    """Why ``text`` may not pass, or None when it may."""
    if len(text) > MAX_STRING_CHARS:
        return f"a string is over {MAX_STRING_CHARS} characters"
    if "\x00" in text:
        return "a string holds a NUL character"
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return "a string holds a lone surrogate (not UTF-8)"
    return None


def check_strings(value: object, provider: str) -> None:
    """Walk parsed JSON (or form) values once, without recursion; every string — keys
    included — must be UTF-8-encodable, free of NUL and at most :data:`MAX_STRING_CHARS` long.

    Raises:
        PayloadInvalid: naming the first fault found.
    """
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            fault = _string_fault(item)
            if fault is not None:
                raise PayloadInvalid(f"invalid {provider} payload: {fault}")
        elif isinstance(item, dict):
            pending.extend(item)  # the keys
            pending.extend(item.values())
        elif isinstance(item, list | tuple):
            pending.extend(item)


def check_json_strings(body: bytes, provider: str) -> None:
    """Check every string in a JSON body with :func:`check_strings`, after its parser (which
    refuses malformed text, nesting deeper than :data:`MAX_JSON_DEPTH` and lone surrogates).

    The walk runs only when a bad string is possible at all: the parser refuses lone surrogates
    and raw control characters, so a NUL can only arrive as the escape ``\\u0000``, and no
    string is longer than the body. A webhook of a few KiB thus costs one scan of its bytes.

    Raises:
        PayloadInvalid: not JSON, or a string fails :func:`check_strings`.
    """
    if len(body) <= MAX_STRING_CHARS and b"\\u0000" not in body:
        return
    try:
        data = from_json(body, allow_inf_nan=False)
    except ValueError as exc:
        raise PayloadInvalid(f"{provider} body is not valid JSON: {exc}") from exc
    check_strings(data, provider)


def validate_json(model: type[M], body: bytes, provider: str) -> M:
    """Validate JSON bytes into ``model``, its strings checked by :func:`check_json_strings`;
    every failure becomes PayloadInvalid."""
    try:
        value = model.model_validate_json(body)
    except ValidationError as exc:
        raise PayloadInvalid(f"invalid {provider} payload: {_describe(exc)}") from exc
    check_json_strings(body, provider)
    return value


def form_pairs(body: bytes, provider: str) -> list[tuple[str, str]]:
    """Decode an ``application/x-www-form-urlencoded`` body into ordered pairs, every name and
    value checked by :func:`check_strings`."""
    try:
        text = body.decode("utf-8")
        pairs = parse_qsl(
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
    check_strings(pairs, provider)
    return pairs


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


def require_json(content_type: str) -> None:
    """Refuse a body whose media type (without parameters) is not ``application/json``."""
    if content_type != "application/json":
        raise PayloadInvalid(f"expected application/json, got {content_type or 'none'}")
