"""What marks a new conversation in Intercom as the account's (issue 18): its tags, its
assignment to the account's team or teammate, the workspace's assignment rules, and its read
state. Each is a recorded step of the entry that opened the conversation
(:mod:`actors.delivery._steps`), so that a retry or a restart does not do it twice:

=====================  ============================================  ===========================
step                   Intercom call                                 found in doubt
=====================  ============================================  ===========================
``mark:tag:<name>``    ``POST /tags`` (once per name and process),   done again (idempotent)
                       ``POST /conversations/{id}/tags``
``mark:rules``         ``POST /conversations/{id}/run_assignment_    done when the conversation
                       rules``                                       has an assignee
``mark:team``          ``POST /conversations/{id}/parts``            done when the team is its
                       (``assignment``, ``type: team``)              assignee
``mark:assignee``      the same with ``type: admin``                 done when the teammate is
``mark:read``          ``PUT /conversations/{id}`` (``read: true``)  done again (idempotent)
=====================  ============================================  ===========================

A mark Intercom refuses for good (4xx: a plan without assignment rules, an unknown team) is
logged and recorded as failed: the customer's message is in Intercom already, and a
misconfigured mark must not hold the thread's later messages.
"""

from __future__ import annotations

import logging

import trio

from intercom import IntercomClient, Tag

__all__ = ["TagIds"]

logger = logging.getLogger("threadline.thread")


class TagIds:
    """Tag ids by name, asked of Intercom once per name and process (``POST /tags`` finds or
    creates the tag; names are case insensitive there)."""

    def __init__(self) -> None:
        self._ids: dict[str, str] = {}
        self._lock = trio.Lock()

    async def id_of(self, client: IntercomClient, name: str) -> str:
        key = name.casefold()
        known = self._ids.get(key)
        if known is not None:
            return known
        async with self._lock:  # concurrent threads of one new tag ask once
            known = self._ids.get(key)
            if known is None:
                tag: Tag = await client.ensure_tag(name)
                known = self._ids[key] = tag.id
            return known
