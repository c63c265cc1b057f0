"""What every layer of the bridge shares: its settings (``THREADLINE_*``, with a view per
channel), its Prometheus metrics and its log fields.

Imports no other part of ``actors`` (import-linter: the layers contract in ``pyproject.toml``).
"""

from ._logging import JsonFormatter as JsonFormatter
from ._logging import LogLimiter as LogLimiter
from ._logging import configure_logging as configure_logging
from ._logging import log_fields as log_fields
from ._logging import redact as redact
from ._logging import thread_hash as thread_hash
from ._metrics import SEND_OUTCOMES as SEND_OUTCOMES
from ._metrics import STATUSES as STATUSES
from ._metrics import WEBHOOK_ROUTES as WEBHOOK_ROUTES
from ._metrics import BridgeMetrics as BridgeMetrics
from ._metrics import package_version as package_version
from ._profiles import AccountProfile as AccountProfile
from ._settings import Settings as Settings
from ._settings import parse_bind as parse_bind

__all__ = [
    "AccountProfile",
    "BridgeMetrics",
    "JsonFormatter",
    "LogLimiter",
    "SEND_OUTCOMES",
    "STATUSES",
    "Settings",
    "WEBHOOK_ROUTES",
    "configure_logging",
    "log_fields",
    "package_version",
    "parse_bind",
    "redact",
    "thread_hash",
]
