"""The channel registry: every channel the bridge speaks, one line each.

Adding a channel is its own subpackage (webhook side, API side, and a ``_channel.py`` building
its :class:`~channels.ChannelSpec` and settings view), a value of :class:`~channels.Channel`,
and one line here.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Final

from ._model import Channel
from ._spec import ChannelSpec
from .instagram import INSTAGRAM
from .line import LINE
from .messenger import MESSENGER
from .telegram import TELEGRAM
from .twilio import TWILIO
from .viber import VIBER
from .whatsapp import WHATSAPP

__all__ = ["CHANNELS", "channel_spec"]

CHANNELS: Final[Mapping[Channel, ChannelSpec[Any]]] = MappingProxyType(
    {spec.channel: spec for spec in (WHATSAPP, TWILIO, TELEGRAM, MESSENGER, INSTAGRAM, VIBER, LINE)}
)
"""Every channel's spec, in :class:`~channels.Channel` order of registration."""


def channel_spec(channel: Channel) -> ChannelSpec[Any]:
    """The spec of ``channel``."""
    return CHANNELS[channel]
