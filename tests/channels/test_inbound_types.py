"""The parsers keep every inbound message type, and render_inbound says what each one was."""

from __future__ import annotations

import json

from channels import (
    Ignored,
    InboundMessage,
    SharedContact,
    parse_telegram,
    parse_whatsapp,
    render_inbound,
)
from channels.sandbox import telegram_update_webhook

BOT = "7000000001"


def whatsapp_body(message: dict[str, object]) -> bytes:
    value = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550002222", "phone_number_id": "106540352242922"},
        "messages": [
            {"from": "15550001111", "id": "wamid.X", "timestamp": "1750000000", **message}
        ],
    }
    envelope = {
        "object": "whatsapp_business_account",
        "entry": [{"id": "1", "changes": [{"field": "messages", "value": value}]}],
    }
    body = json.dumps(envelope).encode()
    return body


def one_message(body: bytes) -> InboundMessage:
    (event,) = parse_whatsapp(body)
    assert isinstance(event, InboundMessage), event
    return event


def test_whatsapp_button_and_interactive_replies_carry_their_titles() -> None:
    button = one_message(whatsapp_body({"type": "button", "button": {"text": "Confirm"}}))
    assert render_inbound(button) == ["Confirm"]
    listed = one_message(
        whatsapp_body(
            {
                "type": "interactive",
                "interactive": {"type": "list_reply", "list_reply": {"id": "1", "title": "Blue"}},
            }
        )
    )
    assert render_inbound(listed) == ["Blue"]
    flow = one_message(whatsapp_body({"type": "interactive", "interactive": {"type": "nfm_reply"}}))
    assert render_inbound(flow) == ["[unsupported message type: interactive nfm_reply]"]


def test_whatsapp_reaction_removed_has_no_emoji_field() -> None:
    removed = one_message(
        whatsapp_body({"type": "reaction", "reaction": {"message_id": "wamid.Y"}})
    )
    assert render_inbound(removed) == ["removed their reaction to: message wamid.Y"]
    assert render_inbound(removed, "hello") == ["removed their reaction to: “hello”"]


def test_whatsapp_unknown_type_is_named_and_system_events_are_not_messages() -> None:
    order = one_message(whatsapp_body({"type": "order", "order": {"catalog_id": "1"}}))
    assert render_inbound(order) == ["[unsupported message type: order]"]
    (system,) = parse_whatsapp(
        whatsapp_body({"type": "system", "system": {"type": "customer_identity_changed"}})
    )
    assert isinstance(system, Ignored)
    assert system.what == "system"


def test_a_contact_card_without_details_still_reads() -> None:
    card = one_message(whatsapp_body({"type": "contacts", "contacts": [{"name": {}}]}))
    assert card.contacts == (SharedContact(),)
    assert render_inbound(card) == ["👤 Contact card: (no name)"]


def test_long_quotes_are_shortened_to_one_line() -> None:
    reply = one_message(
        whatsapp_body({"type": "text", "text": {"body": "ok"}, "context": {"id": "wamid.Z"}})
    )
    quoted = render_inbound(reply, "line one\nline two " + "x" * 200)[0]
    assert quoted.startswith("> line one line two x")
    assert quoted.endswith("…")
    assert len(quoted) == 2 + 100


def test_telegram_group_messages_without_a_member_are_not_bridged_per_member() -> None:
    anonymous = {
        "message_id": 5,
        "date": 1750000000,
        "chat": {"id": -100123, "type": "supergroup", "title": "Buyers"},
        "sender_chat": {"id": -100123, "type": "supergroup"},
        "text": "posted as the group",
    }
    body = telegram_update_webhook("s" * 16, 9, "message", anonymous).body
    (event,) = parse_telegram(body, BOT, groups="per-member")
    assert isinstance(event, Ignored)
    assert event.what == "group"
    (post,) = parse_telegram(
        telegram_update_webhook("s" * 16, 10, "channel_post", anonymous).body, BOT
    )
    assert isinstance(post, Ignored)
    assert post.what == "update"
