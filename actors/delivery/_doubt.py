"""Effects in doubt: an external call whose outcome was lost (a crash, a timeout, a 5xx, a
delivery cut off) may or may not have happened, and Intercom's search cannot see it at once.

Whoever meets such an effect records nothing new and does not repeat it: it raises
:class:`InDoubt`, the classifier retries the same entry after ``seconds``, and the next attempt
looks for what may have been created before creating anything (docs/architecture.md §5).
"""

from __future__ import annotations

__all__ = ["InDoubt", "IntentRecord"]

import json
from dataclasses import dataclass


class InDoubt(Exception):
    """Something may have been created or sent and cannot be seen yet: look again later."""

    wait_reason = "creation in doubt"
    """The reason of the classifier's wait (see actors/delivery/_classify.py)."""

    def __init__(self, what: str, seconds: float) -> None:
        super().__init__(f"{what} is in doubt; looking again in {seconds:.1f} s")
        self.what = what
        self.seconds = max(0.0, seconds)


@dataclass(frozen=True, slots=True)
class IntentRecord:
    """What the journal remembers of an effect about to happen: when it was started (UNIX
    time). Recorded before the call, removed when its outcome is recorded."""

    started_at: float

    def encode(self) -> bytes:
        return json.dumps({"started_at": self.started_at}).encode()

    @classmethod
    def decode(cls, raw: bytes) -> IntentRecord:
        data = json.loads(raw)
        return cls(started_at=float(data["started_at"]))
