"""What the fake providers read off a :class:`runtime.Request` (body fields from JSON, form or
multipart with its files; credentials; the base URL for links; the media a send links to), and
a media download answered with its scripted fault.

The HTTP layer itself (body limits, routing, answers) is :mod:`runtime`'s.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import email.parser
import email.policy
import gzip
import hmac
import json
from dataclasses import dataclass
from typing import Final
from urllib.parse import parse_qsl

import httpx
import trio

from runtime import Request, Response

from ._state import MediaFault, SandboxState

__all__ = [
    "LinkedFile",
    "MAX_BODY",
    "Upload",
    "base_url",
    "basic_auth",
    "bearer",
    "body_fields",
    "fetch_linked",
    "form_pairs",
    "is_url",
    "media_bytes",
    "query_params",
    "relative",
    "same",
    "sniff_media_type",
]

MAX_BODY: Final = 64 * 1024 * 1024
"""Larger request bodies are answered 413 by runtime's Router before a fake sees them."""

_LINK_SECONDS: Final = 5.0
_LINK_MAX_BYTES: Final = 20 * 1024 * 1024 + 1


@dataclass(frozen=True, slots=True)
class Upload:
    """A file part of a multipart body."""

    filename: str | None
    content_type: str | None
    content: bytes


@dataclass(frozen=True, slots=True)
class LinkedFile:
    """What a fake provider found at a media URL a send gave it (fetched as the real one
    would): its type (sniffed from the bytes, else the Content-Type) and size."""

    mime_type: str
    size: int


_MAGIC: Final = (
    (b"%PDF-", "application/pdf"),
    (b"PK\x03\x04", "application/zip"),
    (b"PK\x05\x06", "application/zip"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
)


def sniff_media_type(content: bytes, declared: str | None) -> str:
    """The type of a file's bytes for the few formats the fakes check (PDF, ZIP, GIF, PNG,
    JPEG, WebP), else its declared Content-Type (bare), else application/octet-stream."""
    for magic, mime in _MAGIC:
        if content.startswith(magic):
            return mime
    if content[:4] == b"RIFF" and content[8:12] == b"WEBP":
        return "image/webp"
    bare = (declared or "").split(";", 1)[0].strip().lower()
    return bare or "application/octet-stream"


def relative(request: Request) -> Request:
    """The request with its path relative to the sandbox's mount (routers differ on whether
    ``path`` keeps the mount prefix in ``root_path``)."""
    root, path = request.root_path, request.path
    if root and path.startswith(root):
        path = path[len(root) :]
    return dataclasses.replace(request, path=path or "/")


def base_url(request: Request) -> str:
    """``scheme://host[:port]`` + ``root_path``, for the absolute URLs the fakes hand out."""
    host = request.headers.get("host") or "localhost"
    return f"{request.scheme}://{host}{request.root_path}"


def query_params(request: Request) -> dict[str, str]:
    """The query parameters (blank ones left out; a repeated one: the last)."""
    return dict(parse_qsl(request.query_string.decode("latin-1")))


def body_fields(request: Request) -> tuple[dict[str, str], dict[str, Upload]]:
    """Body fields from JSON, form or multipart (files separately), merged over the query.

    Raises:
        ValueError: an unreadable body.
    """
    values = query_params(request)
    files: dict[str, Upload] = {}
    ctype = request.headers.get("content-type", "")
    if not request.body:
        return values, files
    if ctype.startswith("application/json"):
        data = json.loads(request.body)
        if not isinstance(data, dict):
            raise ValueError("JSON body is not an object")
        values.update({k: v if isinstance(v, str) else json.dumps(v) for k, v in data.items()})
    elif ctype.startswith("multipart/form-data"):
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            b"Content-Type: " + ctype.encode("latin-1") + b"\r\n\r\n" + request.body
        )
        if not message.is_multipart():
            raise ValueError("malformed multipart body")
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            payload = part.get_payload(decode=True)
            if not isinstance(name, str) or not isinstance(payload, bytes):
                continue
            filename = part.get_filename()
            if filename is None:
                values[name] = payload.decode("utf-8")
            else:
                files[name] = Upload(filename, part.get_content_type(), payload)
    else:
        text = request.body.decode("utf-8")
        values.update(parse_qsl(text, keep_blank_values=True))
    return values, files


def form_pairs(request: Request) -> list[tuple[str, str]]:
    """A form body's fields in order (repeats kept: Twilio's ``MediaUrl``)."""
    return parse_qsl(request.body.decode("utf-8"), keep_blank_values=True)


def basic_auth(request: Request) -> tuple[str, str] | None:
    """The (user, password) of a Basic ``Authorization``, or None."""
    scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, sep, password = base64.b64decode(encoded, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return (user, password) if sep else None


def bearer(request: Request) -> str | None:
    """The token of a Bearer ``Authorization``, or None."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token if scheme.lower() == "bearer" else None


def same(given: str | None, expected: str) -> bool:
    """Whether a presented credential is the expected one (constant time)."""
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


def is_url(value: object) -> bool:
    """Whether a send's media field is a URL (else a file id)."""
    return isinstance(value, str) and value.lower().startswith(("http://", "https://"))


def media_bytes(
    state: SandboxState, request: Request, media_id: str, content: bytes, content_type: str
) -> Response:
    """A media download, or the fault scripted for it (:meth:`ProviderSandbox.break_media`)."""
    script = state.take_media_fault(media_id)
    if script is None:
        return Response(200, content, content_type)
    if script.fault is MediaFault.FORBIDDEN:
        return Response(403, b"forbidden", "text/plain")
    if script.fault is MediaFault.SERVER_ERROR:
        return Response(503, b"unavailable", "text/plain")
    if script.fault is MediaFault.REDIRECT_LOOP:
        location = base_url(request) + request.path
        return Response(302, b"", "text/plain", {"location": location})
    if script.fault is MediaFault.GZIP:
        return Response(200, gzip.compress(content), content_type, {"content-encoding": "gzip"})
    if script.fault is MediaFault.CORRUPT:
        damaged = content[:-1] + bytes([(content[-1:] or b"\0")[0] ^ 0xFF])
        return Response(200, damaged, content_type)
    return Response(200, content, content_type, drip_seconds=script.drip_seconds)


async def fetch_linked(url: str) -> LinkedFile | None:
    """GET a media URL a send names, as the provider would (no credentials; redirects
    followed; at most ``_LINK_MAX_BYTES`` and ``_LINK_SECONDS``); None when that fails."""
    with trio.move_on_after(_LINK_SECONDS):
        try:
            async with (
                httpx.AsyncClient(timeout=_LINK_SECONDS, follow_redirects=True) as client,
                client.stream("GET", url) as response,
            ):
                if not response.is_success:
                    return None
                content = b""
                async for chunk in response.aiter_bytes():
                    content += chunk
                    if len(content) > _LINK_MAX_BYTES:
                        break
                declared = response.headers.get("content-type")
                return LinkedFile(sniff_media_type(content, declared), len(content))
        except (httpx.HTTPError, httpx.InvalidURL):
            return None
    return None
