"""Threadline's tooling: the ``threadline`` command line, the sandboxes on one port, the
embedded stack, the demo, the load generator and the load test.

The tools drive the product from outside, as an operator or a test does; no product module of
``actors/`` imports this package (an import-linter contract checks it). Tests and benchmarks
import the tools from here only.

The load test's driver and HTML report load on first use (as ``threadline loadtest`` always
loaded them): ``threadline serve`` imports this package and should not pay for them.
"""

from typing import TYPE_CHECKING

from ._check import CheckResult as CheckResult
from ._check import run_checks as run_checks
from ._cli import build_parser as build_parser
from ._cli import main as main
from ._demo import run_demo as run_demo
from ._embedded import PUBLIC_URL as PUBLIC_URL
from ._embedded import Stack as Stack
from ._embedded import open_stack as open_stack
from ._loadcheck import LoadLedger as LoadLedger
from ._loadcheck import LoadReport as LoadReport
from ._loadcheck import bucket_for as bucket_for
from ._loadcheck import count_out_of_order as count_out_of_order
from ._loadcheck import percentiles as percentiles
from ._loadcheck import read_mark as read_mark
from ._loadgen import LoadMedia as LoadMedia
from ._loadgen import LoadPlan as LoadPlan
from ._loadgen import LoadProgress as LoadProgress
from ._loadgen import PartsFeed as PartsFeed
from ._loadgen import Target as Target
from ._loadgen import load_webhook as load_webhook
from ._loadgen import run_load as run_load
from ._sandbox import SANDBOX_SECRETS as SANDBOX_SECRETS
from ._sandbox import SandboxApp as SandboxApp
from ._sandbox import SandboxSecrets as SandboxSecrets
from ._sandbox import meta_settings as meta_settings
from ._sandbox import sandbox_settings_env as sandbox_settings_env

if TYPE_CHECKING:
    from ._loadtest import Faults as Faults
    from ._loadtest import LoadtestOptions as LoadtestOptions
    from ._loadtest import run_loadtest as run_loadtest
    from ._loadtest import summary_lines as summary_lines
    from ._loadtest_report import render_html as render_html

__all__ = [
    "CheckResult",
    "Faults",
    "LoadLedger",
    "LoadMedia",
    "LoadPlan",
    "LoadProgress",
    "LoadReport",
    "LoadtestOptions",
    "PUBLIC_URL",
    "PartsFeed",
    "SANDBOX_SECRETS",
    "SandboxApp",
    "SandboxSecrets",
    "Stack",
    "Target",
    "bucket_for",
    "build_parser",
    "count_out_of_order",
    "load_webhook",
    "main",
    "meta_settings",
    "open_stack",
    "percentiles",
    "read_mark",
    "render_html",
    "run_checks",
    "run_demo",
    "run_load",
    "run_loadtest",
    "sandbox_settings_env",
    "summary_lines",
]

_LAZY = {
    "Faults": "._loadtest",
    "LoadtestOptions": "._loadtest",
    "run_loadtest": "._loadtest",
    "summary_lines": "._loadtest",
    "render_html": "._loadtest_report",
}


def __getattr__(name: str) -> object:
    """The load test's names, imported on first use."""
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(_LAZY[name], __name__), name)
    globals()[name] = value
    return value
