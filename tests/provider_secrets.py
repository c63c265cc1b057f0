"""Fake credentials shaped like the real ones, so tests can check real secrets pass start-up.

Generated afresh on every import (none of them is a real credential): Meta app secrets and
Twilio auth tokens are 32 hex digits, Twilio account SIDs ``AC`` + 32 hex, Intercom access
tokens base64 (with ``=`` padding), Intercom client secrets UUIDs, Telegram bot tokens
``<bot id>:<35 characters>``, Telegram secret tokens up to 256 of ``A-Za-z0-9_-``.
"""

from __future__ import annotations

import base64
import secrets
import uuid

__all__ = ["REAL_LOOKING"]

REAL_LOOKING: dict[str, str] = {
    "THREADLINE_INTERCOM_ACCESS_TOKEN": base64.b64encode(
        f"tok:{uuid.uuid4()}:1:0".encode()
    ).decode(),
    "THREADLINE_INTERCOM_CLIENT_SECRET": str(uuid.uuid4()),
    "THREADLINE_WHATSAPP_APP_SECRET": secrets.token_hex(16),
    "THREADLINE_WHATSAPP_VERIFY_TOKEN": secrets.token_urlsafe(24),
    "THREADLINE_WHATSAPP_ACCESS_TOKEN": "EAAG" + secrets.token_urlsafe(150).replace("-", "a"),
    "THREADLINE_TWILIO_ACCOUNT_SID": "AC" + secrets.token_hex(16),
    "THREADLINE_TWILIO_AUTH_TOKEN": secrets.token_hex(16),
    "THREADLINE_TELEGRAM_BOT_TOKEN": f"{secrets.randbelow(10**10)}:{secrets.token_urlsafe(26)}",
    "THREADLINE_TELEGRAM_SECRET_TOKEN": secrets.token_urlsafe(48),
    "THREADLINE_MESSENGER_APP_SECRET": secrets.token_hex(16),
    "THREADLINE_MESSENGER_VERIFY_TOKEN": secrets.token_urlsafe(24),
    "THREADLINE_MESSENGER_PAGE_ACCESS_TOKEN": "EAAG" + secrets.token_urlsafe(150).replace("-", "a"),
    "THREADLINE_INSTAGRAM_APP_SECRET": secrets.token_hex(16),
    "THREADLINE_INSTAGRAM_VERIFY_TOKEN": secrets.token_urlsafe(24),
    "THREADLINE_INSTAGRAM_ACCESS_TOKEN": "IGAA" + secrets.token_urlsafe(150).replace("-", "a"),
    "THREADLINE_VIBER_AUTH_TOKEN": "-".join(secrets.token_hex(8) for _ in range(3)),
    "THREADLINE_VIBER_BOT_NAME": "Threadline Support",
    "THREADLINE_LINE_CHANNEL_SECRET": secrets.token_hex(16),
    "THREADLINE_LINE_CHANNEL_ACCESS_TOKEN": secrets.token_urlsafe(128),
    "THREADLINE_API_TOKEN": secrets.token_urlsafe(32),
    "THREADLINE_METRICS_TOKEN": secrets.token_urlsafe(32),
}
