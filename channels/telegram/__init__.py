"""Telegram bots: webhooks (``_webhook.py``), Bot API calls and client (``_api.py``) and its
registry entry (``_channel.py``)."""

from ._api import TelegramClient as TelegramClient
from ._api import TelegramConfig as TelegramConfig
from ._api import classify_telegram_error as classify_telegram_error
from ._api import telegram_entities as telegram_entities
from ._channel import TELEGRAM as TELEGRAM
from ._channel import TelegramSettings as TelegramSettings
from ._webhook import GroupPolicy as GroupPolicy
from ._webhook import parse_telegram as parse_telegram
from ._webhook import telegram_bot_id as telegram_bot_id
from ._webhook import verify_telegram_secret as verify_telegram_secret

__all__ = [
    "GroupPolicy",
    "TELEGRAM",
    "TelegramClient",
    "TelegramConfig",
    "TelegramSettings",
    "classify_telegram_error",
    "parse_telegram",
    "telegram_bot_id",
    "telegram_entities",
    "verify_telegram_secret",
]
