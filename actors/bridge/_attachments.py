"""An inbound message's text for Intercom and the files to upload, downloaded now: a failed
or slow attachment becomes a placeholder line, never holding up or dead-lettering its message."""

from __future__ import annotations

import logging
from typing import Final

import httpx
import trio

from channels import (
    ChannelError,
    DownloadedMedia,
    InboundMessage,
    MediaRef,
    MediaTooLarge,
    SendRateLimited,
    SendTransient,
    render_inbound,
)
from intercom import AttachmentFile

from ..core import log_fields
from ._base import Services, ThreadOptions
from ._gateway import ChannelClient
from ._jobs import ThreadState

__all__ = ["MEDIA_DOWNLOAD_ATTEMPTS", "prepare"]

logger = logging.getLogger("threadline.thread")


async def prepare(
    message: InboundMessage, state: ThreadState, services: Services, key_text: str
) -> tuple[str, list[AttachmentFile]]:
    """The message's text for Intercom and the files to upload (downloaded now)."""
    settings = services.options
    lines = render_inbound(message, state.recall(message.reply_to))
    if message.location is not None:
        loc = message.location
        label = " ".join(part for part in (loc.name, loc.address) if part)
        link = f"https://maps.google.com/?q={loc.latitude},{loc.longitude}"
        lines.append(f"📍 {label} {link}".replace("  ", " "))
    files: list[AttachmentFile] = []
    client = services.gateway.client(message.key.channel, message.key.account)
    attachments = message.attachments[: settings.max_attachments_per_message]
    if len(message.attachments) > len(attachments):
        skipped = len(message.attachments) - len(attachments)
        lines.append(f"[{skipped} more attachment(s) not bridged: limit reached]")
    for index, ref in enumerate(attachments):
        name = ref.filename or f"{ref.kind.value}-{index + 1}{_extension(ref.mime_type)}"
        if client is None:
            lines.append(
                f"[{ref.kind.value} not downloaded: {message.key.channel.value} account "
                f"{message.key.account} not configured]"
            )
            continue
        media = await _download(client, ref, name, settings)
        if isinstance(media, str):  # a placeholder: the message goes on without the file
            lines.append(media)
            continue
        mime = media.mime_type or ref.mime_type or "application/octet-stream"
        name = media.filename or name
        if len(media.content) > settings.intercom_max_attachment_bytes:
            try:
                token = await services.media.save(media.content, mime, name)
            except OSError as exc:
                logger.error(
                    "oversize attachment not stored: %s",
                    exc,
                    extra=log_fields(key=key_text),
                )
                lines.append(f"[{name}: too large to attach and could not be kept]")
                continue
            url = f"{settings.public_url.rstrip('/')}/media/{token}"
            size = len(media.content) / (1024 * 1024)
            lines.append(f"📎 {name} ({size:.1f} MB, too large to attach): {url}")
            continue
        files.append((name, mime, media.content))
    return "\n".join(lines), files


MEDIA_DOWNLOAD_ATTEMPTS: Final = 3
"""Tries of one attachment failing transiently (5xx, 429, timeouts, transport), all within
``THREADLINE_MEDIA_DOWNLOAD_TIMEOUT_SECONDS``; then it becomes a placeholder."""


async def _download(
    client: ChannelClient, ref: MediaRef, name: str, settings: ThreadOptions
) -> DownloadedMedia | str:
    """The attachment, or the placeholder line saying why not: a failed or slow attachment never
    holds up or dead-letters its message. The whole download — the provider's lookup, connect,
    headers, body and the retries of transient failures — runs under one deadline."""
    timeout = settings.media_download_timeout_seconds
    failure: Exception | None = None
    with trio.move_on_after(timeout) as deadline:
        for attempt in range(1, MEDIA_DOWNLOAD_ATTEMPTS + 1):
            try:
                return await client.download(ref, max_bytes=settings.max_media_bytes)
            except MediaTooLarge:
                limit = settings.max_media_bytes // (1024 * 1024)
                return f"[{name}: larger than the {limit} MB download limit, not bridged]"
            except (SendTransient, SendRateLimited) as exc:
                failure = exc
                wait = getattr(exc, "retry_after", None) or 0.5 * 2 ** (attempt - 1)
                if attempt == MEDIA_DOWNLOAD_ATTEMPTS or trio.current_time() + wait >= (
                    deadline.deadline
                ):
                    break
                await trio.sleep(wait)
            except (ChannelError, httpx.HTTPError, httpx.InvalidURL, httpx.StreamError) as exc:
                failure = exc
                break
            except Exception as exc:  # a bug of ours must not cost the customer's text either
                logger.exception("attachment download failed unexpectedly")
                failure = exc
                break
    if deadline.cancelled_caught or failure is None:
        why = f"timed out after {timeout:g} s"
    elif isinstance(failure, ChannelError):
        text = str(failure)
        why = text.partition(": ")[2] or text  # without the "whatsapp media download: " prefix
    else:
        why = type(failure).__name__
    logger.warning("attachment not downloaded: %s", why[:120])
    return f"[{name}: could not be downloaded ({why[:120]})]"


def _extension(mime: str | None) -> str:
    known = {
        "image/jpeg": ".jpg", "image/png": ".png", "image/webp": ".webp", "image/gif": ".gif",
        "application/pdf": ".pdf", "audio/ogg": ".ogg", "audio/mpeg": ".mp3", "video/mp4": ".mp4",
    }  # fmt: skip
    return known.get((mime or "").split(";", 1)[0].strip(), "")
