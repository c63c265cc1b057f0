"""Teammates' names for signing replies on the customer's channel.

A reply reads ``THREADLINE_REPLY_FORMAT`` (``{teammate}: {text}``); ``{teammate}`` is, in order:

1. the name of the part's author, as Intercom's notification gives it;
2. when that is missing or blank, the author's name in Intercom's admin list (by the author's
   id);
3. then the name of the default operator (``THREADLINE_INTERCOM_DEFAULT_ADMIN_ID``);
4. ``Support`` when none of these is known.

The admin list (``GET /admins``) is fetched once per process and cached; it is fetched again
only for an id it does not hold, at most every :data:`REFRESH_SECONDS`, and a failed fetch
is not retried for :data:`RETRY_SECONDS` (the reply is signed with what is known meanwhile: a
name lookup never holds up or fails a reply).
"""

from __future__ import annotations

import logging
from typing import Final

import trio

from intercom import IntercomClient, IntercomError

__all__ = ["FALLBACK_SIGNATURE", "AdminNames"]

logger = logging.getLogger("threadline.admins")

FALLBACK_SIGNATURE: Final = "Support"
REFRESH_SECONDS: Final = 600.0
"""An id missing from the cached list fetches it again after this long (a new teammate)."""
RETRY_SECONDS: Final = 60.0
"""A failed fetch of the list is not tried again for this long."""


class AdminNames:
    """The workspace's admin names by id, fetched lazily and cached (one per process)."""

    def __init__(self) -> None:
        self._names: dict[str, str] = {}
        self._fetched_at: float | None = None  # trio clock of the last fetch, failed or not
        self._failed = False
        self._lock = trio.Lock()

    async def signature(
        self,
        client: IntercomClient,
        author_name: str | None,
        author_id: str | None,
        default_admin_id: str | None,
    ) -> str:
        """The name a teammate's reply is signed with (the module docstring's order)."""
        if author_name and author_name.strip():
            return author_name.strip()
        for admin_id in (author_id, default_admin_id):
            if admin_id:
                name = await self.name(client, admin_id)
                if name:
                    return name
        return FALLBACK_SIGNATURE

    async def name(self, client: IntercomClient, admin_id: str) -> str | None:
        """The admin's name, or None when Intercom does not know it (or cannot say now)."""
        if admin_id not in self._names and self._due():
            async with self._lock:
                if admin_id not in self._names and self._due():  # not fetched meanwhile
                    await self._fetch(client)
        name = self._names.get(admin_id, "").strip()
        return name or None

    def _due(self) -> bool:
        if self._fetched_at is None:
            return True
        wait = RETRY_SECONDS if self._failed else REFRESH_SECONDS
        return trio.current_time() - self._fetched_at >= wait

    async def _fetch(self, client: IntercomClient) -> None:
        self._fetched_at = trio.current_time()
        try:
            admins = await client.list_admins()
        except IntercomError as exc:
            self._failed = True
            logger.warning("admin names not fetched (replies fall back): %s", exc)
            return
        self._failed = False
        self._names = {admin.id: admin.name for admin in admins}
