"""What our clients send, checked against the providers' own API descriptions in tests/specs."""

from __future__ import annotations

import functools
import json
from typing import Any

import pytest
import yaml
from openapi_schema_validator import OAS31Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from channels import Channel, OutboundMedia, ThreadKey
from channels.twilio import message_form
from channels.whatsapp import media_message, text_message

from .conftest import specs_dir

BASE_KEYS = {"messaging_product", "recipient_type", "to", "context"}


@functools.cache
def whatsapp_spec() -> dict[str, Any]:
    path = specs_dir() / "whatsapp/business-messaging-api_v23.0.yaml"
    with path.open() as file:
        spec: dict[str, Any] = yaml.load(file, Loader=yaml.CSafeLoader)
    return spec


def check_whatsapp(message: dict[str, object]) -> None:
    """Validate against Meta's ``Message`` schema. The spec puts
    ``additionalProperties: false`` inside an ``allOf`` branch, which no instance can satisfy,
    so the base properties and the type-specific branch are checked separately."""
    spec = whatsapp_spec()
    registry = Registry().with_resource(
        "urn:wa", Resource.from_contents(spec, default_specification=DRAFT202012)
    )
    schemas = spec["components"]["schemas"]
    base = OAS31Validator(
        {"$ref": "urn:wa#/components/schemas/BaseMessageProperties"}, registry=registry
    )
    base.validate(message)
    target = schemas["Message"]["discriminator"]["mapping"][message["type"]].rsplit("/", 1)[1]
    branch = {**schemas[target]["allOf"][1], "$id": "urn:wa-branch"}
    specific = {k: v for k, v in message.items() if k not in BASE_KEYS}
    OAS31Validator(
        json.loads(json.dumps(branch).replace('"#/components', '"urn:wa#/components')),
        registry=registry,
    ).validate(specific)


@pytest.mark.parametrize(
    "message",
    [
        text_message("15550001111", "hello", None),
        text_message("15550001111", "hello", "wamid.X"),
        media_message(
            "15550001111", OutboundMedia(mime_type="image/png", url="https://x/a.png"), None, "c"
        ),
        media_message(
            "1", OutboundMedia(mime_type="application/pdf", filename="a.pdf"), "123", "c"
        ),
        media_message("1", OutboundMedia(mime_type="audio/ogg", url="https://x/a.ogg"), None, "c"),
        media_message("1", OutboundMedia(mime_type="video/mp4", url="https://x/a.mp4"), None, None),
    ],
    ids=["text", "reply", "image-link", "document-id", "audio", "video"],
)
def test_whatsapp_send_bodies_match_metas_schema(message: dict[str, object]) -> None:
    check_whatsapp(message)


def test_the_schema_check_catches_a_wrong_body() -> None:
    # jsonschema's ValidationError: jsonschema ships no type stubs, so match the message.
    with pytest.raises(Exception, match="'recipient_type' is a required property"):
        check_whatsapp({"messaging_product": "whatsapp", "to": "1", "type": "text", "text": {}})


def test_twilio_send_fields_are_create_message_parameters() -> None:
    spec = json.loads((specs_dir() / "twilio/twilio_api_v2010.json").read_text())
    operation = spec["paths"]["/2010-04-01/Accounts/{AccountSid}/Messages.json"]["post"]
    schema = operation["requestBody"]["content"]["application/x-www-form-urlencoded"]["schema"]
    key = ThreadKey(
        channel=Channel.TWILIO, account="+15550002222", customer="whatsapp:+15550001111"
    )
    fields = message_form(
        key, "hi", "https://x/a.png", "https://bridge.example.com/webhooks/twilio"
    )
    assert {name for name, _ in fields} <= set(schema["properties"])
    assert set(schema["required"]) <= {name for name, _ in fields}
    assert dict(fields)["From"] == "whatsapp:+15550002222"
