"""docs/going-live.md names only what exists: settings, routes, the Intercom topic and the
``threadline check`` options it tells an operator to use."""

from __future__ import annotations

import re

from actors.core import Settings
from actors.tools import build_parser
from channels import CHANNELS
from intercom import CONVERSATION_TOPICS, TEAMMATE_MESSAGE_TOPICS
from tests.deploy.conftest import REPO

GUIDE = (REPO / "docs" / "going-live.md").read_text(encoding="utf-8")
ROUTES = {"/webhooks/intercom", *(spec.route for spec in CHANNELS.values())}


def test_every_setting_it_names_is_a_setting() -> None:
    named = set(re.findall(r"THREADLINE_[A-Z_]+[A-Z]", GUIDE))
    assert len(named) > 15
    fields = {f"THREADLINE_{name.upper()}" for name in Settings.model_fields}
    assert named <= fields, named - fields


def test_every_webhook_path_it_names_is_a_bridge_route() -> None:
    named = set(re.findall(r"/webhooks/[a-z]+", GUIDE))
    assert named == ROUTES


def test_the_topics_it_subscribes_are_the_ones_the_bridge_acts_on() -> None:
    subscribed = set(re.findall(r"\*\*`(conversation\.[a-z.]+)`\*\*", GUIDE))
    assert subscribed == set(TEAMMATE_MESSAGE_TOPICS)
    assert TEAMMATE_MESSAGE_TOPICS <= CONVERSATION_TOPICS


def test_the_check_command_and_its_options_exist() -> None:
    args = build_parser().parse_args(
        ["check", "--whatsapp-phone-number-id", "106540352242922", "--timeout", "10"]
    )
    assert args.command == "check"
    assert args.whatsapp_phone_number_id == ["106540352242922"]
    assert "threadline check --whatsapp-phone-number-id" in GUIDE
