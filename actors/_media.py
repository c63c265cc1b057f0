"""A small local store for attachments too large to upload into Intercom.

Intercom takes files inline (base64 ``attachment_files``) only up to a safe size; a larger file
is kept here under an unguessable token and linked from the conversation, served by the bridge
at ``{THREADLINE_PUBLIC_URL}/media/{token}``. Nothing is dropped.
"""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

import trio

__all__ = ["MediaStore", "StoredFile"]

_TOKEN = re.compile(r"^[A-Za-z0-9_-]{20,64}$")


@dataclass(frozen=True, slots=True)
class StoredFile:
    """A stored attachment."""

    path: Path
    mime_type: str
    filename: str


class MediaStore:
    """Files under ``directory``, each with a JSON sidecar holding its type and name."""

    def __init__(self, directory: str | Path) -> None:
        self._dir = Path(directory)

    async def save(self, content: bytes, mime_type: str, filename: str) -> str:
        """Store ``content``; returns its token."""
        token = secrets.token_urlsafe(24)
        meta = json.dumps({"mime_type": mime_type, "filename": filename}).encode()

        def write() -> None:
            self._dir.mkdir(parents=True, exist_ok=True)
            (self._dir / token).write_bytes(content)
            (self._dir / f"{token}.json").write_bytes(meta)

        await trio.to_thread.run_sync(write)
        return token

    async def open(self, token: str) -> StoredFile | None:
        """The stored file for ``token``, or None (also for a malformed token)."""
        if not _TOKEN.match(token):
            return None

        def read() -> StoredFile | None:
            path = self._dir / token
            try:
                meta = json.loads((self._dir / f"{token}.json").read_bytes())
            except (OSError, ValueError):
                return None
            if not path.is_file():
                return None
            return StoredFile(path, str(meta["mime_type"]), str(meta["filename"]))

        return await trio.to_thread.run_sync(read)
