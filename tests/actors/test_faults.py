"""Production faults: a poisoned entry, PostgreSQL going away, Intercom misbehaving."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from actors.tools import Stack, open_stack
from runtime import NewEntry
from tests.actors.conftest import eventually
from tests.actors.customers import Customers, all_delivered, assert_exactly_once_in_order
from tests.postgres import throwaway_server
from tests.quirks import HTTPX_3686

PHONE = "15550001111"


def sample(stack: Stack, name: str, **labels: str) -> float:
    value = stack.node.registry.get_sample_value(name, labels or None)
    return 0.0 if value is None else value


async def test_poisoned_entries_are_dead_lettered_and_threads_continue(stack: Stack) -> None:
    await stack.whatsapp(PHONE, "before")
    await eventually(lambda: len(stack.conversations()) == 1)
    thread_key = f"whatsapp:100000000000001:{PHONE}"
    journal = stack.node.journal
    corrupt = await journal.append([NewEntry(thread_key, "poison-payload", b'{"kind": "?"}')])
    unreadable_key = await journal.append([NewEntry("not a thread key", "poison-key", b"{}")])
    stack.node.dispatcher.wake()
    await stack.whatsapp(PHONE, "after")
    await stack.telegram(31337, "another customer, unaffected")
    await eventually(lambda: len(stack.conversations()) == 2)
    await eventually(
        lambda: [str(p["body"]) for p in stack.conversations()[0]["parts"]] == ["before", "after"]
    )

    async def dead() -> list[int]:
        return [d.entry.id for d in await journal.dead_letters()]

    with trio.fail_after(20):
        while len(await dead()) < 2:  # noqa: ASYNC110 - the journal has no event for this
            await trio.sleep(0.05)
    assert sorted(await dead()) == sorted([corrupt[0].id, unreadable_key[0].id])
    letters = {d.entry.id: d.error for d in await journal.dead_letters()}
    assert "ValidationError" in letters[corrupt[0].id]  # given up at once: it can never succeed
    assert "restart budget exhausted" in letters[unreadable_key[0].id]  # crashed, restarted, parked
    assert sample(stack, "threadline_dead_letters_total", direction="inbound") == 2
    assert sample(stack, "threadline_supervisor_restarts_total", actor_kind="thread") >= 1


@pytest.mark.slow
@HTTPX_3686
async def test_postgresql_outage_answers_503_and_loses_nothing(tmp_path: Path) -> None:
    with throwaway_server() as server:
        url = server.create_database()
        async with open_stack(
            database_url=url,
            media_dir=str(tmp_path / "media"),
            retry_base_seconds=0.1,
            retry_cap_seconds=1.0,
            retry_max_attempts=100,
        ) as stack:
            customers = Customers([stack.node.ingress.url], threads=6, messages=40, interval=0.05)
            async with trio.open_nursery() as nursery:
                nursery.start_soon(customers.play)
                with trio.fail_after(60):
                    while customers.total_acked < 40:  # noqa: ASYNC110 - counting acks
                        await trio.sleep(0.02)
                await trio.to_thread.run_sync(server.stop)
                await trio.sleep(10)  # PostgreSQL is down for ten seconds under load
                assert customers.statuses.get(503, 0) > 0
                assert customers.retry_after  # 503s carry Retry-After
                await trio.to_thread.run_sync(server.start)
            await all_delivered(stack.conversations, 6 * 40)
            assert_exactly_once_in_order(customers, stack.conversations())
            assert set(customers.statuses) <= {200, 503}


@pytest.mark.slow
async def test_intercom_errors_timeouts_and_429s_for_a_minute(tmp_path: Path) -> None:
    async with open_stack(
        database_url=f"sqlite:///{tmp_path / 'j.db'}",
        media_dir=str(tmp_path / "media"),
        retry_base_seconds=0.1,
        retry_cap_seconds=2.0,
        retry_max_attempts=1000,
        intercom_timeout_seconds=1.0,
    ) as stack:
        stack.sandbox.intercom.configure(
            error_rate=0.20,
            timeout_rate=0.05,
            timeout_hold_seconds=2.0,
            rate_limit=40,
            rate_window_seconds=2.0,
        )
        customers = Customers([stack.node.ingress.url], threads=10, messages=30, interval=0.15)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(customers.play)
            await trio.sleep(60)  # a minute of 20% 5xx, 5% timeouts and 429 windows
            stack.sandbox.intercom.configure(error_rate=0.0, timeout_rate=0.0, rate_limit=None)
        await all_delivered(stack.conversations, 10 * 30)
        assert_exactly_once_in_order(customers, stack.conversations())
        stats = stack.sandbox.intercom.stats()
        assert stats["server_errors"] > 0
        assert stats["timeouts"] > 0
        assert sample(stack, "threadline_retry_attempts_total", actor_kind="thread") > 0
        waited = sample(stack, "threadline_intercom_ratelimit_waits_total")
        assert waited > 0 or stats["rate_limited"] > 0
        assert (
            sample(
                stack,
                "threadline_intercom_requests_total",
                endpoint="reply_conversation",
                code="500",
            )
            > 0
        )
        assert sample(stack, "threadline_dead_letters_total", direction="inbound") == 0


@pytest.mark.slow
@HTTPX_3686
async def test_a_delivery_outliving_its_lease_is_cut_off_and_not_sent_twice(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # A node whose lease renewals stop (here: PostgreSQL goes away) while a reply is in flight
    # must stop that delivery when the lease's validity runs out, as another node could take
    # the partition soon after. The part may still land at Intercom: the retry looks for it.
    lease = 1.5
    with throwaway_server() as server:
        async with open_stack(
            database_url=server.create_database(),
            media_dir=str(tmp_path / "media"),
            lease_seconds=lease,
            retry_base_seconds=0.1,
            retry_cap_seconds=0.5,
            retry_max_attempts=1000,
        ) as stack:
            await stack.whatsapp(PHONE, "first")
            await eventually(lambda: len(stack.conversations()) == 1)
            stack.sandbox.intercom.configure(latency_seconds=3.0)  # lands after the cut-off

            def replies() -> int:
                return int(stack.sandbox.intercom.stats()["requests"].get("reply_conversation", 0))

            before = replies()
            assert (await stack.whatsapp(PHONE, "second")).status_code == 200
            await eventually(lambda: replies() > before)  # the reply has reached Intercom
            await trio.to_thread.run_sync(server.stop)
            with trio.fail_after(10):
                while "delivery cut off" not in caplog.text:  # noqa: ASYNC110 - a log line
                    await trio.sleep(0.05)
            await trio.sleep(3.0)
            stack.sandbox.intercom.configure(latency_seconds=0.0)
            await trio.to_thread.run_sync(server.start)
            await eventually(lambda: len(stack.conversations()[0]["parts"]) >= 2, seconds=30)
            await trio.sleep(2 * lease)  # time for a second, wrong, copy to appear
            bodies = [str(p["body"]) for p in stack.conversations()[0]["parts"]]
            assert bodies == ["first", "second"]
