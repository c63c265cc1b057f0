"""Known third-party quirks the suite tolerates, each with its upstream reference."""

from __future__ import annotations

import pytest

HTTPX_3686 = pytest.mark.filterwarnings(
    "ignore:Exception ignored in. <async_generator object ByteStream:"
    "pytest.PytestUnraisableExceptionWarning"
)
"""When the server answers (or dies) before an upload ends, httpx abandons its own request-body
generator unclosed and its finalizer complains (encode/httpx#3686, fix pending in #3777)."""
