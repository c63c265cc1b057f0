"""Pins the tools' public API (``actors.tools``): a change here is a deliberate change of the
contract tests, benchmarks and the ``threadline`` console script rely on."""

from __future__ import annotations

import subprocess
import sys

import actors.tools


def test_all_is_sorted_and_exact() -> None:
    assert actors.tools.__all__ == sorted(actors.tools.__all__)
    assert actors.tools.__all__ == [
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


def test_every_exported_name_exists() -> None:
    for name in actors.tools.__all__:
        assert getattr(actors.tools, name) is not None, name


def test_the_load_test_driver_loads_on_first_use() -> None:
    # ``threadline serve`` imports this package; the load test's driver is not its business.
    probe = (
        "import sys, actors.tools\n"
        "assert 'actors.tools._loadtest' not in sys.modules\n"
        "from actors.tools import run_loadtest\n"
        "assert 'actors.tools._loadtest' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", probe], check=True, timeout=120)  # noqa: S603
