"""Fixtures of the deploy checks: the real tools (promtool) and one live run of a bridge.

The live run starts the sandboxes and a real bridge in-process (SQLite in a temporary folder),
plays a short scenario that touches every metric family (delivered messages on three channels, a
teammate reply, a rejected signature, an Intercom outage that dead-letters an entry), and keeps
the ``/metrics`` scrape and every log line the production logging configuration wrote. It runs
once per session (about a second) and the tests read what it observed.

Where promtool or docker-compose is missing the tests skip locally but FAIL under ``CI=true``
(``tests/ensure-tools.sh``, run by ``make test``, installs it).
"""

from __future__ import annotations

import io
import logging
import os
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
import yaml

from actors.core import configure_logging
from actors.tools import SANDBOX_SECRETS, Stack, open_stack, sandbox_settings_env

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
METRICS_TOKEN = "deploy-test-metrics-token"
API_TOKEN = "sandbox-api-token"  # what open_stack configures
DELIVERED_BODY = "BODY-delivered-7f3a my order number is 1234"
DEAD_BODY = "BODY-dead-lettered-9c1e please call me back"
REPLY_BODY = "BODY-teammate-reply-4d2b your parcel ships today"
BODIES = (DELIVERED_BODY, DEAD_BODY, REPLY_BODY)
PHONES = ("15550001111", "15550003333", "15550004444")


class StrictLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing a key given twice in one mapping.

    Plain YAML loaders keep the last value silently; a duplicated key in a manifest is almost
    always a mistake that hides a setting.
    """

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[object] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # `<<: *anchor`, resolved by the base class
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def load_yaml(path: Path) -> list[Any]:
    """Every document of a YAML file, strictly."""
    with path.open(encoding="utf-8") as f:
        return [doc for doc in yaml.load_all(f, Loader=StrictLoader) if doc is not None]


@dataclass(frozen=True)
class LiveRun:
    """What one scenario against a real bridge left behind."""

    scrape: str
    """The ``/metrics`` body at the end, fetched with the bearer token."""
    scrape_before_outage: str
    """The ``/metrics`` body after the healthy traffic, before the Intercom outage."""
    unauthenticated_status: int
    """What ``/metrics`` answered without the token."""
    log_lines: list[str]
    """Every line the JSON log handler wrote at INFO and above."""
    secrets: tuple[str, ...]
    """Every credential the bridge was configured with."""


def run_tool(
    args: Sequence[str], *, stdin: str | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run a checking tool; its output is in the result for the assertion message."""
    return subprocess.run(  # noqa: S603 - fixed tool, arguments from the test
        list(args), input=stdin, cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )


def require_tool(command: str, package: str) -> str:
    """The path of ``command``; skips locally and fails under ``CI=true`` when it is missing."""
    found = shutil.which(command)
    if found is None:
        message = (
            f"{command} not found: run `bash tests/ensure-tools.sh` as root, or "
            f"`apt-get install {package}` (Debian's package ships it)"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return found


@pytest.fixture(scope="session")
def promtool() -> str:
    """The path of promtool (Debian's prometheus package)."""
    return require_tool("promtool", "prometheus")


@pytest.fixture(scope="session")
def docker_compose() -> str:
    """The path of docker-compose (Debian's docker-compose package: Compose 1.29, no engine)."""
    return require_tool("docker-compose", "docker-compose")


async def _eventually(check: object, seconds: float = 15.0) -> None:
    assert callable(check)
    with trio.fail_after(seconds):
        while not check():  # noqa: ASYNC110 - polling another party's state: no event exists
            await trio.sleep(0.02)


async def _healthy_traffic(stack: Stack) -> None:
    ok = await stack.whatsapp(PHONES[0], DELIVERED_BODY, name="Ana")
    assert ok.status_code == 200
    assert (await stack.sms(PHONES[1], "hello by sms")).status_code == 200
    assert (await stack.telegram(424242, "hello by telegram")).status_code == 200
    await _eventually(lambda: len(stack.conversations()) == 3)
    bad = await stack.http.post(
        "/webhooks/whatsapp", content=b"{}", headers={"x-hub-signature-256": "sha256=00"}
    )
    assert bad.status_code == 401
    conversation = next(
        c for c in stack.conversations() if DELIVERED_BODY in str(c["parts"][0]["body"])
    )
    await stack.sandbox.intercom.teammates.reply(conversation["id"], REPLY_BODY)
    await _eventually(lambda: any(REPLY_BODY in m.text for m in stack.sent() if m.text))


async def _outage(stack: Stack) -> None:
    # An Intercom outage: every API call answers 5xx until the entry is dead-lettered.
    stack.sandbox.intercom.configure(error_rate=1.0)
    assert (await stack.whatsapp(PHONES[2], DEAD_BODY)).status_code == 200
    dead = stack.node.registry
    await _eventually(
        lambda: (
            (dead.get_sample_value("threadline_dead_letters_total", {"direction": "inbound"}))
            == 1.0
        )
    )
    stack.sandbox.intercom.configure(error_rate=0.0)


async def _live_run(tmp: Path) -> LiveRun:
    async with open_stack(
        database_url=f"sqlite:///{tmp / 'threadline.db'}",
        media_dir=str(tmp / "media"),
        metrics_token=METRICS_TOKEN,
        retry_max_attempts=2,
        retry_base_seconds=0.01,
        retry_cap_seconds=0.05,
        shutdown_drain_seconds=1.0,
    ) as stack:
        url = stack.node.metrics.url + "/metrics"
        auth = {"authorization": f"Bearer {METRICS_TOKEN}"}
        async with httpx.AsyncClient() as client:
            await _healthy_traffic(stack)
            before = await client.get(url, headers=auth)
            await _outage(stack)
            denied = await client.get(url)
            scraped = await client.get(url, headers=auth)
        assert before.status_code == scraped.status_code == 200
        env = sandbox_settings_env(stack.sandbox_url, "https://bridge.example")
    secrets = {
        SANDBOX_SECRETS.intercom_token,
        SANDBOX_SECRETS.intercom_client_secret,
        SANDBOX_SECRETS.whatsapp_app_secret,
        SANDBOX_SECRETS.whatsapp_verify_token,
        SANDBOX_SECRETS.telegram_secret_token,
        env["THREADLINE_WHATSAPP_ACCESS_TOKEN"],
        env["THREADLINE_TWILIO_AUTH_TOKEN"],
        env["THREADLINE_TELEGRAM_BOT_TOKEN"],
        METRICS_TOKEN,
        API_TOKEN,
    }
    return LiveRun(scraped.text, before.text, denied.status_code, [], tuple(sorted(secrets)))


@pytest.fixture(scope="session")
def live_run(tmp_path_factory: pytest.TempPathFactory) -> LiveRun:
    """Run the scenario once, with the production logging configuration writing JSON lines."""
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    noisy = ("httpx", "httpcore", "hypercorn.access", "hypercorn.error")
    saved_noisy = {name: logging.getLogger(name).level for name in noisy}
    buffer = io.StringIO()
    configure_logging("json", "INFO")
    handler = root.handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(buffer)
    try:
        run = trio.run(_live_run, tmp_path_factory.mktemp("live"))
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)
        for name, noisy_level in saved_noisy.items():
            logging.getLogger(name).setLevel(noisy_level)
    lines = [line for line in buffer.getvalue().splitlines() if line]
    return LiveRun(
        run.scrape, run.scrape_before_outage, run.unauthenticated_status, lines, run.secrets
    )
