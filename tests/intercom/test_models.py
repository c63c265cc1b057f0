"""Model normalisation: plain text from HTML bodies, unassigned conversations."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from intercom import Conversation, html_to_text


@pytest.mark.parametrize(
    ("body", "text"),
    [
        (None, ""),
        ("", ""),
        ("plain words", "plain words"),
        ("<p>Hi</p>", "Hi"),
        ("<p>One</p><p>Two<br>Three</p>", "One\nTwo\nThree"),
        ("<p>Tom &amp; Jerry &lt;3</p>", "Tom & Jerry <3"),
        ('<p><a href="https://x.example">link</a> here</p>', "link here"),
        ("<ul><li>a</li><li>b</li></ul>", "a\nb"),
        ("x < y and y > z", "x < y and y > z"),
    ],
)
def test_html_to_text(body: str | None, text: str) -> None:
    assert html_to_text(body) == text


@given(st.text(alphabet=st.characters(blacklist_characters="<")))
def test_text_without_tags_is_unchanged(text: str) -> None:
    assert html_to_text(text) == text


@pytest.mark.parametrize("unassigned", [None, 0, "0", ""])
def test_unassigned_is_none(unassigned: object) -> None:
    conversation = Conversation.model_validate(
        {"type": "conversation", "id": "1", "admin_assignee_id": unassigned}
    )
    assert conversation.admin_assignee_id is None
    assert conversation.last_part is None


def test_assigned_is_a_string_id() -> None:
    conversation = Conversation.model_validate({"id": "1", "admin_assignee_id": 991267601})
    assert conversation.admin_assignee_id == "991267601"
