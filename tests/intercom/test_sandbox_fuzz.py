"""Whatever a caller sends, the sandbox answers with an error.list, never a crash or a 5xx
(faults are off)."""

from __future__ import annotations

import json

import httpx
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from intercom.sandbox import IntercomSandbox

from .conftest import TOKEN, asgi_transport

HEADERS = {"Authorization": f"Bearer {TOKEN}", "Intercom-Version": "2.16"}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=6),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=15,
)
keys = st.sampled_from(
    [
        "role", "external_id", "email", "phone", "name", "custom_attributes", "query",
        "pagination", "sort", "from", "body", "attachment_urls", "attachment_files", "type",
        "message_type", "intercom_user_id", "admin_id", "assignee_id", "model", "data_type",
        "into", "user_id",
    ]
)  # fmt: skip
# Values that get past the first checks, so deeper validation is exercised too.
plausible = (
    st.sampled_from(
        [
            "user", "lead", "admin", "contact", "comment", "note", "close", "open", "assignment",
            "CONTACT_ID", "991267601", "0", "+1", "x@example.com", "phone", "=", "IN", "AND",
            "string", "https://cdn.example.com/a.png", "aGk=",
        ]
    )
    | json_values
    | st.fixed_dictionaries({}, optional={"type": json_values, "id": st.just("CONTACT_ID")})
    | st.lists(
        st.fixed_dictionaries({}, optional={"data": st.just("aGk=") | json_values}), max_size=2
    )
)  # fmt: skip
bodies = st.dictionaries(keys, plausible, max_size=6) | json_values
routes = st.sampled_from(
    [
        ("POST", "/contacts/search"),
        ("POST", "/contacts"),
        ("PUT", "/contacts/{contact}"),
        ("POST", "/contacts/merge"),
        ("POST", "/data_attributes"),
        ("POST", "/conversations"),
        ("POST", "/conversations/{conversation}/reply"),
        ("POST", "/conversations/{conversation}/parts"),
    ]
)


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(calls=st.lists(st.tuples(routes, bodies), min_size=1, max_size=5))
def test_any_body_gets_an_answer_below_500(calls: list[tuple[tuple[str, str], object]]) -> None:
    async def main() -> None:
        sandbox = IntercomSandbox(access_tokens=[TOKEN])
        transport = asgi_transport(sandbox)
        async with httpx.AsyncClient(transport=transport, base_url="http://sb") as http:
            contact = (await http.post("/contacts", headers=HEADERS, json={"role": "lead"})).json()
            created = await http.post(
                "/conversations",
                headers=HEADERS,
                json={"from": {"type": "lead", "id": contact["id"]}, "body": "hi"},
            )
            ids = {"contact": contact["id"], "conversation": created.json()["conversation_id"]}
            for (method, path), body in calls:
                content = json.dumps(body).replace("CONTACT_ID", ids["contact"])
                answer = await http.request(
                    method, path.format(**ids), headers=HEADERS, content=content
                )
                assert answer.status_code < 500, (method, path, body, answer.text)
                if answer.status_code >= 400:
                    assert answer.json()["type"] == "error.list"

    trio.run(main)


control_routes = st.sampled_from(
    [
        "/_sandbox/config",
        "/_sandbox/contacts/merge",
        "/_sandbox/teammates/reply",
        "/_sandbox/teammates/note",
        "/_sandbox/teammates/assign",
        "/_sandbox/teammates/close",
        "/_sandbox/teammates/open",
    ]
)
control_keys = st.sampled_from(
    [
        "conversation_id", "attachments", "from", "into",
        "rate_limit", "error_rate", "search_lag_seconds", "webhook_topics", "auto_reply_text",
    ]
)  # fmt: skip


control_bodies = st.fixed_dictionaries(
    {"conversation_id": st.just("1") | json_values},  # "1" reaches past the id check
    optional={"body": json_values, "admin_id": json_values, "assignee_id": json_values},
) | st.dictionaries(control_keys, json_values, max_size=4)


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(calls=st.lists(st.tuples(control_routes, control_bodies), min_size=1, max_size=4))
def test_control_api_refuses_bad_input_cleanly(calls: list[tuple[str, object]]) -> None:
    async def main() -> None:
        sandbox = IntercomSandbox(access_tokens=[TOKEN])
        transport = asgi_transport(sandbox)
        async with httpx.AsyncClient(transport=transport, base_url="http://sb") as http:
            for path, body in calls:
                answer = await http.post(path, content=json.dumps(body))
                assert answer.status_code < 500, (path, body, answer.text)

    trio.run(main)
