"""Contact and conversation search for the sandbox: Intercom's query language over the state.

``=`` filters on ``phone``, ``external_id``, ``email``, ``role`` and
``custom_attributes.<name>`` are index lookups; other filters are evaluated as predicates on
the candidates (or, with no indexable filter at all, on every contact). Results are in
creation order, paged with an opaque ``starting_after`` cursor.

Conversation search (``contact_ids``, ``created_at``, ``updated_at``, ``id``, ``state``) scans
the conversations; the bridge only searches them to recover from a crash. Both searches lag
behind creation by the sandbox's ``search_lag_seconds``, as Intercom's index does.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any

from ._state import (
    SandboxApiError,
    SandboxState,
    StoredContact,
    StoredConversation,
    invalid,
)

__all__ = ["search_contacts", "search_conversations"]

_OPERATORS = frozenset({"=", "!=", "IN", "NIN", "<", "<=", ">", ">=", "~", "!~", "^", "$"})
_INDEXED = frozenset({"phone", "external_id", "email", "role"})
_SCALARS = (str, int, float, bool, type(None))


def _value(contact: StoredContact, name: str) -> object:
    if name.startswith("custom_attributes."):
        return contact.custom_attributes.get(name.removeprefix("custom_attributes."))
    if name in ("created_at", "updated_at"):
        return int(getattr(contact, name))
    if name in ("id", "role", "external_id", "email", "phone", "name"):
        return getattr(contact, name)
    raise invalid(f"{name} is not a searchable field")


def _conversation_value(conversation: StoredConversation, name: str) -> object:
    if name == "contact_ids":
        return conversation.contact_id
    if name in ("created_at", "updated_at"):
        return int(getattr(conversation, name))
    if name in ("id", "state"):
        return getattr(conversation, name)
    raise invalid(f"{name} is not a searchable field")


def _matches(
    item: Any,  # noqa: ANN401 - a stored contact or conversation, read through value_of
    query: dict[str, Any],
    value_of: Callable[[Any, str], object] = _value,
) -> bool:
    if query.get("operator") in ("AND", "OR"):
        results = (_matches(item, sub, value_of) for sub in query["value"])
        return all(results) if query["operator"] == "AND" else any(results)
    actual, op, want = value_of(item, query["field"]), query["operator"], query.get("value")
    if op == "=":
        return bool(actual == want or (actual is not None and str(actual) == str(want)))
    if op == "!=":
        return bool(actual != want)
    if op in ("IN", "NIN"):
        return bool((actual in (want or [])) == (op == "IN"))
    if actual is None:
        return False
    text, needle = str(actual), str(want)
    string_ops = {
        "~": needle in text,
        "!~": needle not in text,
        "^": text.startswith(needle),
        "$": text.endswith(needle),
    }
    if op in string_ops:
        return string_ops[op]
    try:
        number, bound = float(str(actual)), float(str(want))
    except ValueError:
        return False
    return {"<": number < bound, "<=": number <= bound, ">": number > bound}.get(
        op, number >= bound
    )


def _validate(query: object, depth: int = 0) -> dict[str, Any]:
    if not isinstance(query, dict):
        raise invalid("query must be an object")
    if query.get("operator") in ("AND", "OR"):
        if depth >= 2:
            raise invalid("Nesting of more than 2 levels is not supported")
        subs = query.get("value")
        if not isinstance(subs, list) or not subs or len(subs) > 15:
            raise invalid("AND/OR value must be a list of 1 to 15 filters")
        for sub in subs:
            _validate(sub, depth + 1)
        return query
    if not isinstance(query.get("field"), str):
        raise invalid("field is required")
    if not isinstance(query.get("operator"), str) or query["operator"] not in _OPERATORS:
        raise invalid(f"operator {query.get('operator')!r} is not supported")
    value = query.get("value")
    if query["operator"] in ("IN", "NIN"):
        if not isinstance(value, list) or not all(isinstance(v, _SCALARS) for v in value):
            raise invalid("IN/NIN take an array of values")
    elif not isinstance(value, _SCALARS):
        raise invalid("value must be a string, number, boolean or null")
    return query


def _candidates(state: SandboxState, query: dict[str, Any]) -> Collection[str] | None:
    """Contact ids that may match, from the indexes; None when only a full scan will do."""
    operator = query.get("operator")
    if operator == "AND":
        # The smallest index hit bounds the work (phone beats role=lead).
        hits = [h for h in (_candidates(state, sub) for sub in query["value"]) if h is not None]
        return min(hits, key=len) if hits else None
    if operator == "OR":
        union: set[str] = set()
        for sub in query["value"]:
            found = _candidates(state, sub)
            if found is None:
                return None
            union.update(found)
        return union
    field = query["field"]
    if operator == "=" and (field in _INDEXED or field.startswith("custom_attributes.")):
        return state.by_field.get((field, str(query.get("value"))), ())
    if operator == "=" and field == "id":
        return (query["value"],) if query.get("value") in state.contacts else ()
    return None


def search_contacts(
    state: SandboxState, body: dict[str, Any], *, now: float, lag: float
) -> tuple[list[StoredContact], int, str | None, int]:
    """Evaluate a ``contact_search_request``: (page, total matches, next cursor, per_page)."""
    query = _validate(body.get("query"))
    pagination = body.get("pagination") or {}
    if not isinstance(pagination, dict):
        raise invalid("pagination must be an object")
    per_page = pagination.get("per_page") or 50
    if not isinstance(per_page, int) or not 1 <= per_page <= 150:
        raise invalid("per_page must be an integer between 1 and 150")
    sort = body.get("sort") or {}
    if not isinstance(sort, dict) or sort.get("order", "ascending") not in (
        "ascending",
        "descending",
    ):
        raise SandboxApiError(
            400, "invalid_sort_order", "Sort order must be ascending or descending"
        )
    cursor = pagination.get("starting_after")
    after = -1
    if cursor:
        try:
            after = int(str(cursor).removeprefix("c"))
        except ValueError:
            raise invalid("starting_after is not a valid cursor") from None
    ids = _candidates(state, query)
    pool = state.contacts.values() if ids is None else (state.contacts[i] for i in ids)
    visible = now - lag
    matches = sorted(
        (
            c
            for c in pool
            if c.merged_into is None and c.created_at <= visible and _matches(c, query)
        ),
        key=lambda c: c.seq,
    )
    if sort.get("order") == "descending":
        matches.reverse()
        page_all = [c for c in matches if after < 0 or c.seq < after]
    else:
        page_all = [c for c in matches if c.seq > after]
    page = page_all[:per_page]
    next_cursor = f"c{page[-1].seq}" if len(page_all) > per_page else None
    return page, len(matches), next_cursor, per_page


def search_conversations(
    state: SandboxState, body: dict[str, Any], *, now: float, lag: float
) -> tuple[list[StoredConversation], int, int]:
    """Evaluate a ``search_request`` over conversations: (first page, total, per_page), in
    creation order. Deleted conversations and ones younger than ``lag`` are not found."""
    query = _validate(body.get("query"))
    pagination = body.get("pagination") or {}
    if not isinstance(pagination, dict):
        raise invalid("pagination must be an object")
    per_page = pagination.get("per_page") or 20
    if not isinstance(per_page, int) or not 1 <= per_page <= 150:
        raise invalid("per_page must be an integer between 1 and 150")
    visible = now - lag
    matches = [
        c
        for c in state.conversations.values()
        if not c.deleted and c.created_at <= visible and _matches(c, query, _conversation_value)
    ]
    return matches[:per_page], len(matches), per_page
