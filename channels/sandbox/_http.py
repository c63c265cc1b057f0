"""Minimal ASGI plumbing for the sandbox providers: read a request, decode its body, reply."""

from __future__ import annotations

import base64
import binascii
import email.parser
import email.policy
import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import parse_qsl

import trio

__all__ = [
    "LinkedFile",
    "Receive",
    "Reply",
    "Request",
    "Scope",
    "Send",
    "Upload",
    "read_request",
    "sniff_media_type",
    "write_reply",
]

Scope = Mapping[str, Any]
Receive = Callable[[], Awaitable[Any]]
Send = Callable[[Any], Awaitable[None]]

MAX_BODY: Final = 64 * 1024 * 1024


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


@dataclass(frozen=True, slots=True)
class Request:
    """One HTTP request to the sandbox, path relative to its mount."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    base_url: str  # scheme://host[:port] + root_path, for absolute URLs we hand out
    linked: Mapping[str, LinkedFile | None] = field(default_factory=dict)
    """The media URLs of a send, fetched before it is handled (None: could not be fetched)."""

    def segments(self) -> list[str]:
        return [s for s in self.path.split("/") if s]

    def fields(self) -> tuple[dict[str, str], dict[str, Upload]]:
        """Body fields from JSON, form or multipart (files separately), merged over the query.

        Raises:
            ValueError: an unreadable body.
        """
        values = dict(self.query)
        files: dict[str, Upload] = {}
        ctype = self.headers.get("content-type", "")
        if not self.body:
            return values, files
        if ctype.startswith("application/json"):
            data = json.loads(self.body)
            if not isinstance(data, dict):
                raise ValueError("JSON body is not an object")
            values.update({k: v if isinstance(v, str) else json.dumps(v) for k, v in data.items()})
        elif ctype.startswith("multipart/form-data"):
            message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
                b"Content-Type: " + ctype.encode("latin-1") + b"\r\n\r\n" + self.body
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
            text = self.body.decode("utf-8")
            values.update(parse_qsl(text, keep_blank_values=True))
        return values, files

    def form_pairs(self) -> list[tuple[str, str]]:
        return parse_qsl(self.body.decode("utf-8"), keep_blank_values=True)

    def basic_auth(self) -> tuple[str, str] | None:
        scheme, _, encoded = self.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            user, sep, password = base64.b64decode(encoded, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        return (user, password) if sep else None

    def bearer(self) -> str | None:
        scheme, _, token = self.headers.get("authorization", "").partition(" ")
        return token if scheme.lower() == "bearer" else None


@dataclass(slots=True)
class Reply:
    """An HTTP response to write."""

    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    drip_seconds: float = 0.0
    """When > 0, the body is sent one byte at a time with this pause after each."""
    delay_seconds: float = 0.0
    """Seconds before the answer starts (the request was acted on already)."""

    @classmethod
    def json(cls, status: int, data: object, **headers: str) -> Reply:
        return cls(status, json.dumps(data).encode(), headers=dict(headers))

    @classmethod
    def raw(cls, content: bytes, content_type: str) -> Reply:
        return cls(200, content, content_type)


class BodyTooLarge(Exception):
    """The request body is over MAX_BODY."""


async def read_request(scope: Scope, receive: Receive) -> Request:
    """Read the whole request body (up to MAX_BODY) and describe the request."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            raise BodyTooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
    root = str(scope.get("root_path", ""))
    path = str(scope["path"])
    if root and path.startswith(root):
        path = path[len(root) :]  # routers differ on whether path keeps the mount prefix
    query = dict(parse_qsl(bytes(scope.get("query_string", b"")).decode("latin-1")))
    host = headers.get("host") or _server_host(scope)
    return Request(
        method=str(scope["method"]).upper(),
        path=path or "/",
        query=query,
        headers=headers,
        body=b"".join(chunks),
        base_url=f"{scope.get('scheme', 'http')}://{host}{root}",
    )


def _server_host(scope: Scope) -> str:
    server = scope.get("server")
    if not server:
        return "localhost"
    host, port = server
    return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"


async def write_reply(send: Send, reply: Reply) -> None:
    if reply.delay_seconds > 0:
        await trio.sleep(reply.delay_seconds)
    headers = [
        (b"content-type", reply.content_type.encode()),
        (b"content-length", str(len(reply.body)).encode()),
        *((k.lower().encode(), v.encode()) for k, v in reply.headers.items()),
    ]
    await send({"type": "http.response.start", "status": reply.status, "headers": headers})
    body = reply.body
    if reply.drip_seconds > 0:
        for i in range(len(body)):
            await send({"type": "http.response.body", "body": body[i : i + 1], "more_body": True})
            await trio.sleep(reply.drip_seconds)
        body = b""
    await send({"type": "http.response.body", "body": body})
