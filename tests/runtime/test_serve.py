from __future__ import annotations

import httpx
import pytest
import trio

from runtime import BoundAddress, Request, Response, Router, hypercorn_config, serve_asgi


async def _hello(request: Request) -> Response:
    return Response(200, f"hello {request.path}".encode())


hello = Router(max_body_bytes=1024)
hello.add_fallback("hello", _hello)


async def test_serves_on_port_zero_and_reports_the_bound_address() -> None:
    async with trio.open_nursery() as nursery:
        addr: BoundAddress = await nursery.start(serve_asgi, hello, hypercorn_config("127.0.0.1:0"))
        assert addr.host == "127.0.0.1"
        assert addr.port > 0
        async with httpx.AsyncClient(base_url=addr.url) as client:
            response = await client.get("/x")
        assert response.status_code == 200
        assert response.text == "hello /x"
        nursery.cancel_scope.cancel()


async def test_shutdown_trigger_stops_the_server() -> None:
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        addr: BoundAddress = await nursery.start(
            lambda task_status: serve_asgi(
                hello,
                hypercorn_config("127.0.0.1:0", graceful_timeout=1.0),
                shutdown_trigger=stop.wait,
                task_status=task_status,
            )
        )
        async with httpx.AsyncClient(base_url=addr.url) as client:
            assert (await client.get("/")).status_code == 200
        stop.set()
    # The nursery exited: serve_asgi returned after the trigger.


async def test_connections_beyond_the_cap_wait_until_one_closes() -> None:
    async with trio.open_nursery() as nursery:
        addr: BoundAddress = await nursery.start(
            lambda task_status: serve_asgi(
                hello,
                hypercorn_config("127.0.0.1:0"),
                max_connections=2,
                task_status=task_status,
            )
        )
        idle = [await trio.open_tcp_stream(addr.host, addr.port) for _ in range(2)]
        async with httpx.AsyncClient(base_url=addr.url) as client:
            with trio.move_on_after(0.5) as waited:
                await client.get("/blocked")  # both slots are taken: not accepted
            assert waited.cancelled_caught
            await idle.pop().aclose()
            with trio.fail_after(5.0):
                assert (await client.get("/now")).text == "hello /now"
        await idle.pop().aclose()
        nursery.cancel_scope.cancel()


async def test_every_closed_connection_gives_its_slot_back() -> None:
    async with trio.open_nursery() as nursery:
        addr: BoundAddress = await nursery.start(
            lambda task_status: serve_asgi(
                hello,
                hypercorn_config("127.0.0.1:0"),
                max_connections=1,
                task_status=task_status,
            )
        )
        # Each client closes its kept-alive connection right after the answer. Hypercorn alone
        # often kept such a connection's handler (and so its slot) for keep_alive_timeout (5 s).
        with trio.fail_after(4.0):
            for i in range(8):  # a new connection each time, eight times the cap
                async with httpx.AsyncClient(base_url=addr.url) as client:
                    assert (await client.get(f"/{i}")).status_code == 200
        nursery.cancel_scope.cancel()


async def test_a_router_fallback_takes_every_path_no_route_knows() -> None:
    async def where(request: Request) -> Response:
        return Response(200, f"{request.scheme} {request.root_path} {request.path}".encode())

    router = Router(max_body_bytes=1024)
    router.add("GET", "/known", "known", _hello)
    router.add_fallback("other", where)
    config = hypercorn_config("127.0.0.1:0", root_path="/mnt")
    async with trio.open_nursery() as nursery:
        addr: BoundAddress = await nursery.start(serve_asgi, router, config)
        async with httpx.AsyncClient(base_url=addr.url) as client:
            assert (await client.get("/known")).text == "hello /known"
            assert (await client.post("/known")).status_code == 405  # a known path's methods
            answer = await client.delete("/mnt/else?x=1")
        assert (answer.status_code, answer.text) == (200, "http /mnt /mnt/else")
        nursery.cancel_scope.cancel()


def test_ipv6_urls_are_bracketed() -> None:
    assert BoundAddress("::1", 8080).url == "http://[::1]:8080"


def test_unknown_hypercorn_options_are_refused() -> None:
    with pytest.raises(AttributeError, match="no_such_option"):
        hypercorn_config("127.0.0.1:0", no_such_option=1)


_FREEZE_PROBE = """
import gc, weakref
from runtime import freeze_startup_heap

class Node:
    pass

old = Node()
frozen = freeze_startup_heap()
tracked = {id(o) for o in gc.get_objects()}
cycle = Node()
cycle.me = cycle
alive = weakref.ref(cycle)
del cycle
gc.collect()
print(frozen, gc.get_freeze_count() == frozen, id(old) in tracked, alive() is None)
"""


def test_freeze_startup_heap_takes_start_up_objects_out_of_collections() -> None:
    import subprocess
    import sys

    # In a child process: freezing is process-wide and would keep this test run's garbage.
    done = subprocess.run(  # noqa: S603 - this interpreter, a fixed script
        [sys.executable, "-c", _FREEZE_PROBE], capture_output=True, text=True, check=True
    )
    frozen, counted, old_still_scanned, new_garbage_collected = done.stdout.split()
    assert int(frozen) > 1000  # the interpreter and the imported modules
    assert counted == "True"
    assert old_still_scanned == "False"  # start-up objects are no longer walked
    assert new_garbage_collected == "True"  # later cycles are still collected
