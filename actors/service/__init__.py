"""The composition root: opens the journal, checks the settings, wires the edge, the bridge
and delivery together and serves them (:func:`run_bridge`, :func:`run_workers`).
"""

from ._app import Node as Node
from ._app import run_bridge as run_bridge
from ._startup import ConfigurationError as ConfigurationError
from ._startup import StartupError as StartupError
from ._startup import check_bindable as check_bindable
from ._startup import check_settings as check_settings
from ._startup import mask_secrets as mask_secrets
from ._startup import open_journal as open_journal
from ._workers import run_workers as run_workers
from ._workers import worker_environment as worker_environment

__all__ = [
    "ConfigurationError",
    "Node",
    "StartupError",
    "check_bindable",
    "check_settings",
    "mask_secrets",
    "open_journal",
    "run_bridge",
    "run_workers",
    "worker_environment",
]
