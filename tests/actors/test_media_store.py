"""Oversize media where every node can serve it (issue 19): the journal's database keeps the
linked files, so a link made on one node is served by any other, after restarts too, and the
retention and the size cap delete from the journal. In process on both journal backends, and
as two ``serve`` processes on one PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from actors.tools import PUBLIC_URL, SANDBOX_SECRETS, SandboxApp, Stack, open_stack
from channels.sandbox import WebhookMedia, WhatsAppInbound, whatsapp_webhook
from runtime import hypercorn_config, serve_asgi
from tests.actors.conftest import eventually
from tests.actors.processes import ServeProcess, serve_env
from tests.postgres import PostgresServer, throwaway_server

PHONE = "15550003333"
VIDEO = b"\x00\x00\x00\x18ftypmp42" + b"v" * 20_000
LIMIT = 4096  # THREADLINE_INTERCOM_MAX_ATTACHMENT_BYTES: VIDEO is linked, not uploaded


def links(conversations: list[dict[str, Any]]) -> list[str]:
    """The media links (paths) in the notes of the only conversation, in order."""
    if len(conversations) != 1:
        return []
    found = []
    for part in conversations[0]["parts"]:
        body = str(part["body"])
        if "/media/" in body:
            found.append(body.rsplit(" ", 1)[1].removeprefix(PUBLIC_URL))
    return found


async def send_video(s: Stack, content: bytes) -> str:
    """Send ``content`` as an oversize WhatsApp video; returns its link once it is delivered."""
    before = len(links(s.conversations()))
    media_id = s.sandbox.providers.add_media(content, "video/mp4", "clip.mp4")
    await s.whatsapp(PHONE, media=WebhookMedia(ref=media_id, mime_type="video/mp4"))
    await eventually(lambda: len(links(s.conversations())) > before)
    return links(s.conversations())[-1]


def bridge(database_url: str, tmp_path: Path, **settings: Any) -> Any:  # noqa: ANN401
    return open_stack(
        database_url=database_url,
        media_dir=str(tmp_path / "media"),
        intercom_max_attachment_bytes=LIMIT,
        shutdown_drain_seconds=1.0,
        retry_base_seconds=0.05,
        retry_cap_seconds=0.2,
        **settings,
    )


# --- one node, on either journal backend --------------------------------------------------------


async def test_a_restarted_bridge_still_serves_a_link_from_the_journal(
    database_url: str, tmp_path: Path
) -> None:
    async with bridge(database_url, tmp_path) as s:
        link = await send_video(s, VIDEO)
        assert (await s.http.get(link)).content == VIDEO
    assert not (tmp_path / "media").exists()  # nothing was written to the local directory
    async with bridge(database_url, tmp_path) as s:
        served = await s.http.get(link)
        assert served.status_code == 200
        assert served.content == VIDEO
        assert served.headers["content-type"] == "video/mp4"
        assert (await s.http.get(link[:-2] + "xx")).status_code == 404


async def test_the_size_cap_evicts_the_oldest_file_from_the_journal(
    database_url: str, tmp_path: Path
) -> None:
    async with bridge(database_url, tmp_path, media_max_bytes=len(VIDEO) + 1000) as s:
        first = await send_video(s, VIDEO)
        await trio.sleep(0.05)
        second = await send_video(s, VIDEO + b"2")
        assert (await s.http.get(first)).status_code == 404
        assert (await s.http.get(second)).content == VIDEO + b"2"
        # Gone from the table, not merely hidden: read with no retention at all.
        token = first.removeprefix("/media/")
        assert await s.node.journal.get_media(token, stored_after=0.0) is None
        kept = await s.node.journal.get_media(second.removeprefix("/media/"), stored_after=0.0)
        assert kept is not None


async def test_expired_files_answer_404_and_are_deleted_from_the_journal(
    database_url: str, tmp_path: Path
) -> None:
    async with bridge(database_url, tmp_path, media_retention_seconds=1.0) as s:
        link = await send_video(s, VIDEO)
        assert (await s.http.get(link)).status_code == 200
        await trio.sleep(1.5)
        assert (await s.http.get(link)).status_code == 404
        token = link.removeprefix("/media/")
        deleted = False

        async def swept() -> None:
            nonlocal deleted
            deleted = await s.node.journal.get_media(token, stored_after=0.0) is None

        with trio.fail_after(15):  # the housekeeping sweeps without any further save
            while not deleted:
                await swept()
                await trio.sleep(0.2)


@pytest.fixture(scope="module")
def own_server() -> Iterator[PostgresServer]:
    """A server of this module's own, for the test that stops and starts it."""
    with throwaway_server() as server:
        yield server


async def test_a_link_answers_503_while_the_journal_is_down_then_200(
    own_server: PostgresServer, tmp_path: Path
) -> None:
    async with bridge(own_server.create_database(), tmp_path) as s:
        link = await send_video(s, VIDEO)
        await trio.to_thread.run_sync(own_server.stop)
        try:
            with trio.fail_after(15):
                down = await s.http.get(link)
            assert down.status_code == 503
            assert "retry-after" in down.headers
            assert (await s.http.get("/media/nonsense")).status_code == 404  # no lookup needed
        finally:
            await trio.to_thread.run_sync(own_server.start)
        with trio.fail_after(20):
            while (served := await s.http.get(link)).status_code != 200:  # noqa: ASYNC110 - the database's state
                await trio.sleep(0.2)
        assert served.content == VIDEO


# --- two serve processes on one PostgreSQL ------------------------------------------------------


def oversize_webhook(media_id: str) -> tuple[bytes, dict[str, str]]:
    message = WhatsAppInbound(
        from_phone=PHONE,
        media=WebhookMedia(ref=media_id, mime_type="video/mp4"),
        message_id="wamid.mediastore0001",
    )
    hook = whatsapp_webhook(
        SANDBOX_SECRETS.whatsapp_app_secret, SANDBOX_SECRETS.whatsapp_phone_number_id, [message]
    )
    return hook.body, dict(hook.headers)


@pytest.mark.slow
@pytest.mark.parametrize(
    "media",
    [
        pytest.param({}, id="journal-by-default"),
        pytest.param({"media_store": "directory", "media_dir": "shared"}, id="shared-directory"),
    ],
)
async def test_a_link_made_on_one_node_is_served_by_the_other_and_after_restarts(
    postgres_server: PostgresServer, tmp_path: Path, media: dict[str, str]
) -> None:
    """Two replicas behind one Service: the link made on A is fetched from B. Before issue 19
    each node kept files in its own directory (an emptyDir per pod), and B answered 404."""
    url = postgres_server.create_database()
    sandbox = SandboxApp()
    async with trio.open_nursery() as nursery:
        address = await nursery.start(serve_asgi, sandbox, hypercorn_config("127.0.0.1:0"))
        nodes = []
        for name in ("a", "b"):
            settings = {
                "node_id": f"node-{name}",
                "lease_seconds": "5",
                "intercom_max_attachment_bytes": str(LIMIT),
                "media_dir": str(tmp_path / f"media-{name}"),  # a pod's own directory
            }
            if "media_dir" in media:
                settings.update(media, media_dir=str(tmp_path / media["media_dir"]))
            else:
                settings.update(media)
            env = serve_env(address.url, url, tmp_path, **settings)
            nodes.append(ServeProcess(env, tmp_path / f"node-{name}.log"))
        a, b = nodes
        try:
            for node in nodes:
                await node.start()
            media_id = sandbox.providers.add_media(VIDEO, "video/mp4", "clip.mp4")
            body, headers = oversize_webhook(media_id)
            async with httpx.AsyncClient(timeout=10.0) as http:
                posted = await http.post(
                    f"{a.url}/webhooks/whatsapp", content=body, headers=headers
                )
                assert posted.status_code == 200
                with trio.fail_after(30):
                    while not links(sandbox.intercom.conversations()):  # noqa: ASYNC110 - sandbox state
                        await trio.sleep(0.05)
                (link,) = links(sandbox.intercom.conversations())
                for node in (b, a):
                    served = await http.get(f"{node.url}{link}")
                    assert served.status_code == 200, (node.url, served.status_code)
                    assert served.content == VIDEO
                # Both nodes stop (a rollout); B alone comes back and still serves it.
                await a.stop()
                await b.stop()
                await b.start()
                served = await http.get(f"{b.url}{link}")
                assert served.status_code == 200
                assert served.content == VIDEO
        finally:
            for node in nodes:
                await node.stop()
            nursery.cancel_scope.cancel()
