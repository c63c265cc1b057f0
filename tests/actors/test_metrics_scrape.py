"""What ``/metrics`` of a running bridge exposes, scraped over real HTTP.

- No ``*_created`` series at all (they double the series count and nothing reads them).
- The label sets known at start (every configured channel by outcome, contact outcomes, the
  ingress routes by status classes) exist at 0 before any traffic, so rates and alerts see a
  0 rather than no series.
- The ingress request-duration and the provider send-duration histograms count real traffic,
  with their route / status class and channel / outcome labels.
"""

from __future__ import annotations

from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from actors.core import SEND_OUTCOMES
from actors.tools import Stack, open_stack
from channels import Channel
from channels.sandbox import SandboxFailure
from tests.actors.conftest import eventually

TOKEN = "metrics-scrape-test-token"
CHANNELS = ("telegram", "twilio", "whatsapp")
PHONE = "15550007777"
BLOCKED_PHONE = "15550008888"


Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(stack: Stack) -> str:
    async with httpx.AsyncClient() as client:
        response = await client.get(
            stack.node.metrics.url + "/metrics", headers={"authorization": f"Bearer {TOKEN}"}
        )
    assert response.status_code == 200
    return response.text


def samples(text: str) -> Samples:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(found: Samples, name: str, **labels: str) -> float | None:
    return found.get((name, frozenset(labels.items())))


def created_lines(text: str) -> list[str]:
    """Every sample or metadata line of a ``*_created`` series."""
    return [line for line in text.splitlines() if "_created{" in line or "_created " in line]


async def test_metrics_exist_at_zero_have_no_created_series_and_time_requests_and_sends(
    tmp_path: Path,
) -> None:
    async with open_stack(
        database_url=f"sqlite:///{tmp_path / 'threadline.db'}",
        media_dir=str(tmp_path / "media"),
        metrics_token=TOKEN,
        retry_base_seconds=0.01,
        retry_cap_seconds=0.05,
        shutdown_drain_seconds=1.0,
    ) as stack:
        first = await scrape(stack)

        # Before any traffic: no _created series, and the known label sets at 0.
        assert created_lines(first) == []
        found = samples(first)
        for channel in CHANNELS:
            for outcome in ("sent", "undeliverable"):
                assert value(found, "threadline_channel_sends_total", channel=channel,
                             outcome=outcome) == 0.0, (channel, outcome)  # fmt: skip
            for outcome in SEND_OUTCOMES:
                n = value(found, "threadline_channel_send_duration_seconds_count",
                              channel=channel, outcome=outcome)  # fmt: skip
                assert n == 0.0, (channel, outcome)
        for outcome in ("created", "existed"):
            assert value(found, "threadline_contacts_created_total", outcome=outcome) == 0.0
        for route in ("whatsapp", "twilio", "telegram", "intercom", "api", "media"):
            for status_class in ("2xx", "4xx", "5xx"):
                n = value(found, "threadline_ingress_request_duration_seconds_count",
                              route=route, status_class=status_class)  # fmt: skip
                assert n == 0.0, (route, status_class)

        # Traffic: two customers write, one is blocked; a bad signature; teammate replies.
        assert (await stack.whatsapp(PHONE, "hello", name="Ana")).status_code == 200
        assert (await stack.whatsapp(BLOCKED_PHONE, "hi", name="Bo")).status_code == 200
        bad = await stack.http.post(
            "/webhooks/whatsapp", content=b"{}", headers={"x-hub-signature-256": "sha256=00"}
        )
        assert bad.status_code == 401
        await eventually(lambda: len(stack.conversations()) == 2)
        stack.sandbox.providers.fail(Channel.WHATSAPP, BLOCKED_PHONE, SandboxFailure.BLOCKED)
        for conversation in stack.conversations():
            await stack.sandbox.intercom.teammates.reply(conversation["id"], "on its way")
        await eventually(lambda: any(m.text and "on its way" in m.text for m in stack.sent()))

        registry = stack.node.registry
        labels = {"channel": "whatsapp", "outcome": "undeliverable"}
        # The blocked customer's reply: refused by the provider, then noted in the conversation.
        await eventually(
            lambda: (registry.get_sample_value("threadline_channel_sends_total", labels) or 0) >= 1
        )
        last = await scrape(stack)

    assert created_lines(last) == []
    found = samples(last)

    def count(name: str, **labels: str) -> float:
        return value(found, f"{name}_count", **labels) or 0.0

    ingress = "threadline_ingress_request_duration_seconds"
    assert count(ingress, route="whatsapp", status_class="2xx") >= 2
    assert count(ingress, route="whatsapp", status_class="4xx") >= 1
    assert count(ingress, route="intercom", status_class="2xx") >= 2  # the teammate replies
    inf = value(found, f"{ingress}_bucket", route="whatsapp", status_class="2xx", le="+Inf")
    assert inf == count(ingress, route="whatsapp", status_class="2xx")

    send = "threadline_channel_send_duration_seconds"
    assert count(send, channel="whatsapp", outcome="sent") >= 1
    assert count(send, channel="whatsapp", outcome="rejected") >= 1
    assert (value(found, f"{send}_sum", channel="whatsapp", outcome="sent") or 0.0) > 0.0
    assert count(send, channel="telegram", outcome="sent") == 0.0  # still there, at 0
