"""What tells Messenger and Instagram apart in the code they share: :class:`MetaApp`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from .._model import Channel

__all__ = ["INSTAGRAM", "MESSENGER", "MetaApp"]


@dataclass(frozen=True, slots=True)
class MetaApp:
    """What tells Messenger and Instagram apart in the shared code."""

    channel: Channel
    object: str
    """The envelope's ``object``: ``page`` or ``instagram``."""
    name: str
    """How the provider is named in messages: ``messenger``, ``instagram``."""
    window_subcodes: frozenset[int]
    """``error_subcode`` values meaning the messaging window is closed."""


MESSENGER: Final = MetaApp(Channel.MESSENGER, "page", "messenger", frozenset({2018278}))
INSTAGRAM: Final = MetaApp(Channel.INSTAGRAM, "instagram", "instagram", frozenset({2534022}))
