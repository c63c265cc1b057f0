"""What makes a value unusable as a secret, for the environment variables (``Settings``) and the
accounts file alike: empty, padded, a placeholder (``CHANGE-ME``, ``changeme``, ``xxx``,
``TODO``, …), shorter than ``MIN_SECRET_LENGTH``, or not of the form a provider requires."""

from __future__ import annotations

import re
from typing import Final

__all__ = ["MIN_SECRET_LENGTH", "format_problem", "is_placeholder", "secret_problem"]

MIN_SECRET_LENGTH = 8
"""The shortest secret or token accepted. Real ones are far longer: a Meta app secret and a
Twilio auth token are 32 hex digits, Intercom's client secret and access token are longer still;
a Telegram ``secret_token`` (1-256 of ``A-Za-z0-9_-``) is the operator's choice."""

_PLACEHOLDERS = frozenset({
    "changeme", "change-me", "change_me", "change me", "replaceme", "replace-me", "replace_me",
    "placeholder", "secret", "token", "password", "passwd", "todo", "tbd", "fixme", "example",
    "dummy", "test", "none", "null", "nil", "undefined", "default", "your-secret", "your_secret",
})  # fmt: skip
_PLACEHOLDER_PARTS = ("changeme", "change-me", "change_me", "replaceme", "replace-me", "replace_me")
_FORMATS: Final = {
    "bot_token": (re.compile(r"[0-9]+:[A-Za-z0-9_-]+"), "is not a bot token (<bot id>:<secret>)"),
    "secret_token": (
        re.compile(r"[A-Za-z0-9_-]{1,256}"),
        "must be 1-256 characters of A-Z, a-z, 0-9, _ and - (Telegram's rule)",
    ),
}
"""Telegram's secrets by their field name: the form the Bot API requires, and why not."""


def is_placeholder(value: str) -> bool:
    """A value an example or template left in place of a real secret (case-insensitive)."""
    folded = value.strip().casefold()
    return (
        folded in _PLACEHOLDERS
        or any(part in folded for part in _PLACEHOLDER_PARTS)
        or "placeholder" in folded
        or (len(set(folded)) == 1 and folded[0] in "x*.0#?-_")  # xxx, ********, 00000000
        or (folded.startswith("<") and folded.endswith(">"))  # <your app secret>
        or (folded.startswith("${") and folded.endswith("}"))  # a variable nobody expanded
    )


def secret_problem(value: str) -> str | None:
    """Why ``value`` cannot be a secret (empty, padded, a placeholder, too short), or None."""
    if not value.strip():
        return "is set but empty: set the real value"
    if value != value.strip():
        return "has leading or trailing whitespace"
    if is_placeholder(value):
        return "is a placeholder: set the real value"
    if len(value) < MIN_SECRET_LENGTH:
        return f"is shorter than {MIN_SECRET_LENGTH} characters: set the real value"
    return None


def format_problem(field: str, value: str) -> str | None:
    """Why ``value`` is not of the form the provider requires of the secret ``field``
    (``bot_token``, ``secret_token``: Telegram's; ``telegram_bot_token`` alike), or None."""
    rule = _FORMATS.get(field.removeprefix("telegram_"))
    if rule is None or rule[0].fullmatch(value):
        return None
    return rule[1]
