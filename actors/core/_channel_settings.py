"""Each channel's settings view (``channels``' ``*Settings``): which ``THREADLINE_*`` settings
fill it, which of them are secrets, and what an account of the accounts file puts in it.

One row per channel (:data:`CHANNEL_FIELDS`); :func:`env_view` builds a channel's view from the
settings (the one-account shorthand), :func:`account_view` a view of an accounts file's entry.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar

from channels import (
    Channel,
    InstagramSettings,
    LineSettings,
    MessengerSettings,
    TelegramSettings,
    TwilioSettings,
    ViberSettings,
    WhatsAppSettings,
)

from ._account_fields import AccountEntry

__all__ = ["CHANNEL_FIELDS", "ChannelFields", "ChannelViews", "account_view", "env_view"]

_V = TypeVar("_V")

_MEDIA_DOWNLOAD: Final = {
    "upload_max_bytes": "max_media_bytes",
    "upload_fetch_seconds": "media_download_timeout_seconds",
}
"""A file the channel has the bridge fetch is fetched within the limits of a download from a
provider."""


@dataclass(frozen=True, slots=True)
class ChannelFields:
    """How one channel's settings view is filled."""

    view: type[Any]
    """The channel's settings view (``WhatsAppSettings``, …)."""
    secrets: tuple[str, ...]
    """Its secrets: ``THREADLINE_<CHANNEL>_<NAME>``, and an account's field of the same name in
    the accounts file."""
    own: tuple[str, ...]
    """Its other fields set from ``THREADLINE_<CHANNEL>_<NAME>``."""
    shared: Mapping[str, str] = field(default_factory=dict)
    """Its fields set from a setting every channel has (its field: the setting)."""
    identifiers: tuple[str, ...] = ()
    """Of ``own``, what configures its one account besides the secrets (Twilio's account SID);
    of the accounts file, an account's field of the same name."""
    attributes: tuple[str, ...] = ()
    """Its fields set from an account's field of the same name (besides the identifiers)."""
    numbers: str | None = None
    """Its field that holds the business accounts an account of the file owns."""
    number: str | None = None
    """Its field that holds the one business account an account of the file owns (LINE's bot)."""

    @property
    def credentials(self) -> tuple[str, ...]:
        """What configures its one account (``THREADLINE_<CHANNEL>_<NAME>``)."""
        return (*self.identifiers, *self.secrets)


CHANNEL_FIELDS: Mapping[Channel, ChannelFields] = {
    Channel.WHATSAPP: ChannelFields(
        WhatsAppSettings,
        secrets=("app_secret", "verify_token", "access_token"),
        own=(
            "base_url",
            "business_account_id",
            "reengagement_template",
            "reengagement_language",
            "template_cache_seconds",
        ),
        attributes=("business_account_id",),
        numbers="phone_number_ids",
    ),
    Channel.TWILIO: ChannelFields(
        TwilioSettings,
        secrets=("auth_token",),
        own=("account_sid", "base_url"),
        shared={"public_url": "public_url"},  # the URL Twilio signs
        identifiers=("account_sid",),
        attributes=("subaccount_sid",),
        numbers="numbers",
    ),
    Channel.TELEGRAM: ChannelFields(
        TelegramSettings,
        secrets=("bot_token", "secret_token"),
        own=("base_url", "groups"),
        shared=_MEDIA_DOWNLOAD,  # a document the bot uploads
    ),
    Channel.MESSENGER: ChannelFields(
        MessengerSettings,
        secrets=("app_secret", "verify_token", "page_access_token"),
        own=("base_url", "human_agent"),
        numbers="page_ids",
    ),
    Channel.INSTAGRAM: ChannelFields(
        InstagramSettings,
        secrets=("app_secret", "verify_token", "access_token"),
        own=("base_url", "human_agent"),
        numbers="account_ids",
    ),
    Channel.VIBER: ChannelFields(
        ViberSettings,
        secrets=("auth_token",),
        own=("base_url", "bot_name"),
        shared=_MEDIA_DOWNLOAD,  # a file whose size is learnt
        attributes=("bot_name",),
    ),
    Channel.LINE: ChannelFields(
        LineSettings,
        secrets=("channel_secret", "channel_access_token"),
        own=("base_url", "data_base_url", "groups"),
        number="bot_user_id",
    ),
}


_CHANNEL_OF: Final = {fields.view: channel for channel, fields in CHANNEL_FIELDS.items()}


def env_view(settings: object, view: type[_V]) -> _V:
    """The settings view ``view`` of a channel, filled from ``settings`` (a ``Settings``)."""
    channel = _CHANNEL_OF[view]
    fields = CHANNEL_FIELDS[channel]
    values = {
        name: getattr(settings, f"{channel.value}_{name}")
        for name in (*fields.secrets, *fields.own)
    }
    values.update({name: getattr(settings, of) for name, of in fields.shared.items()})
    return view(**values)


def account_view(base: Any, entry: AccountEntry) -> Any:  # noqa: ANN401 - a channel's view
    """The channel's global view ``base`` with ``entry``'s credentials and numbers."""
    fields = CHANNEL_FIELDS[entry.channel]
    values: dict[str, Any] = {name: entry.secret(name) for name in fields.secrets}
    values.update(
        (name, getattr(entry, name)) for name in (*fields.identifiers, *fields.attributes)
    )
    if fields.numbers is not None:
        values[fields.numbers] = frozenset(entry.numbers)
    if fields.number is not None:
        values[fields.number] = entry.numbers[0] if entry.numbers else None
    return dataclasses.replace(base, account_id=entry.id, **values)


class ChannelViews:
    """What each channel's registry entry is given: its settings view, one property per channel
    (``Settings`` has them)."""

    @property
    def whatsapp(self) -> WhatsAppSettings:
        """The ``THREADLINE_WHATSAPP_*`` settings."""
        return env_view(self, WhatsAppSettings)

    @property
    def twilio(self) -> TwilioSettings:
        """The ``THREADLINE_TWILIO_*`` settings, with the public URL Twilio signs."""
        return env_view(self, TwilioSettings)

    @property
    def telegram(self) -> TelegramSettings:
        """The ``THREADLINE_TELEGRAM_*`` settings; a document the bot uploads is fetched
        within the limits of a download from a provider."""
        return env_view(self, TelegramSettings)

    @property
    def messenger(self) -> MessengerSettings:
        """The ``THREADLINE_MESSENGER_*`` settings."""
        return env_view(self, MessengerSettings)

    @property
    def instagram(self) -> InstagramSettings:
        """The ``THREADLINE_INSTAGRAM_*`` settings."""
        return env_view(self, InstagramSettings)

    @property
    def viber(self) -> ViberSettings:
        """The ``THREADLINE_VIBER_*`` settings; a file's size is learnt within the limits of
        a download from a provider."""
        return env_view(self, ViberSettings)

    @property
    def line(self) -> LineSettings:
        """The ``THREADLINE_LINE_*`` settings."""
        return env_view(self, LineSettings)
