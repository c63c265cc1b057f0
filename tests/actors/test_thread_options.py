"""The thread actors' narrow view of the settings keeps the settings' names and types."""

from __future__ import annotations

import dataclasses
import typing

from actors.bridge import ThreadOptions
from actors.core import Settings


def test_every_option_is_a_setting_of_the_same_type() -> None:
    hints = typing.get_type_hints(ThreadOptions)
    for option in dataclasses.fields(ThreadOptions):
        assert option.name in Settings.model_fields, option.name
        assert hints[option.name] == Settings.model_fields[option.name].annotation, option.name


def test_options_carry_the_values_of_the_settings() -> None:
    settings = Settings(conversation_buffer_seconds=42.0, reply_format="{text} — {teammate}")
    options = ThreadOptions.of(settings)
    assert options.conversation_buffer_seconds == 42.0
    assert options.reply_format == "{text} — {teammate}"
