"""The ingress benchmark's load: signed WhatsApp webhooks built before the clock starts, ``wrk``
(closed loop, a Lua script cycling through them) and an open-loop Trio client that measures
each request from its scheduled send time."""

from __future__ import annotations

import json
import math
import re
import subprocess
from pathlib import Path

import trio

from channels.sandbox import WhatsAppInbound, whatsapp_webhook

__all__ = [
    "CONNECTIONS",
    "LUA",
    "PHONE_ID",
    "SECRET",
    "build_requests",
    "open_loop",
    "run_wrk",
    "write_requests",
]

SECRET = "bench-whatsapp-app-secret"  # noqa: S105 - a benchmark fixture
PHONE_ID = "100000000000001"
CONNECTIONS = 64

LUA = r"""
local reqs = {}
local i = 0
init = function(args)
  local f = assert(io.open(args[1], "r"))
  while true do
    local sig = f:read("*l")
    if not sig then break end
    local body = f:read("*l")
    reqs[#reqs + 1] = wrk.format("POST", "/webhooks/whatsapp",
      {["Content-Type"] = "application/json", ["X-Hub-Signature-256"] = sig}, body)
  end
  f:close()
end
request = function()
  i = i + 1
  if i > #reqs then i = 1 end
  return reqs[i]
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "WRKJSON {\"requests\": %d, \"duration_us\": %d, \"p50_us\": %d, \"p90_us\": %d, " ..
    "\"p99_us\": %d, \"max_us\": %d, \"status_errors\": %d, \"socket_errors\": %d}\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, e.status, e.connect + e.read + e.write + e.timeout))
end
"""


def build_requests(count: int, run: str, customers: int = 5000) -> list[tuple[str, bytes]]:
    out = []
    for i in range(count):
        message = WhatsAppInbound(
            from_phone=f"1555{i % customers:07d}",
            text=f"benchmark message {i} of run {run}",
            message_id=f"wamid.bench{run}{i:09d}",
        )
        hook = whatsapp_webhook(SECRET, PHONE_ID, [message])
        out.append((hook.headers["X-Hub-Signature-256"], hook.body))
    return out


def write_requests(path: Path, requests: list[tuple[str, bytes]]) -> None:
    with path.open("wb") as f:
        for signature, body in requests:
            assert b"\n" not in body
            f.write(signature.encode() + b"\n" + body + b"\n")


def run_wrk(
    port: int, requests_file: Path, script: Path, seconds: float, pin: str | None = "1"
) -> dict[str, float]:
    done = subprocess.run(  # noqa: S603 - fixed arguments
        [*([] if pin is None else ["taskset", "-c", pin]),
         "wrk", "-t1", f"-c{CONNECTIONS}", f"-d{seconds:.0f}s",
         "-s", str(script), f"http://127.0.0.1:{port}/webhooks/whatsapp", "--", str(requests_file)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    match = re.search(r"WRKJSON (\{.*\})", done.stdout)
    if match is None:
        raise RuntimeError(f"wrk said: {done.stdout}\n{done.stderr}")
    data = json.loads(match.group(1))
    return {
        "rate": data["requests"] / (data["duration_us"] / 1e6),
        "p50_ms": data["p50_us"] / 1000,
        "p99_ms": data["p99_us"] / 1000,
        "errors": data["status_errors"] + data["socket_errors"],
        "requests": data["requests"],
    }


async def open_loop(
    port: int, requests: list[tuple[str, bytes]], rate: float, seconds: float
) -> dict[str, float]:
    """Send at a fixed rate over keep-alive connections; latency from the scheduled time."""
    count = min(len(requests), int(rate * seconds))
    head = (
        "POST /webhooks/whatsapp HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        "Content-Type: application/json\r\nX-Hub-Signature-256: {sig}\r\n"
        "Content-Length: {length}\r\n\r\n"
    )
    wire = [
        head.format(port=port, sig=sig, length=len(body)).encode() + body
        for sig, body in requests[:count]
    ]
    send, receive = trio.open_memory_channel[tuple[float, bytes]](math.inf)
    latencies: list[float] = []
    errors = [0]

    async def connection() -> None:
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        buffer = b""
        async with stream:
            async for due, data in receive:
                await stream.send_all(data)
                while b"\r\n\r\n" not in buffer:
                    buffer += await stream.receive_some(65536)
                header, _, buffer = buffer.partition(b"\r\n\r\n")
                sized = re.search(rb"(?i)content-length: *(\d+)", header)
                if sized is not None:
                    length = int(sized.group(1))
                    while len(buffer) < length:
                        buffer += await stream.receive_some(65536)
                    buffer = buffer[length:]
                else:  # chunked: small answers, read through the last chunk
                    while b"0\r\n\r\n" not in buffer:
                        buffer += await stream.receive_some(65536)
                    buffer = buffer.partition(b"0\r\n\r\n")[2]
                if not header.startswith(b"HTTP/1.1 200"):
                    errors[0] += 1
                latencies.append((trio.current_time() - due) * 1000)

    async with trio.open_nursery() as nursery:
        for _ in range(CONNECTIONS):
            nursery.start_soon(connection)
        await trio.sleep(0.2)  # connections open
        start = trio.current_time() + 0.05
        async with send:
            for index, data in enumerate(wire):
                due = start + index / rate
                await trio.sleep_until(due)
                send.send_nowait((due, data))
    ordered = sorted(latencies)

    def pct(q: float) -> float:
        return ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)]

    return {
        "rate": rate,
        "sent": count,
        "p50_ms": pct(0.5),
        "p90_ms": pct(0.9),
        "p99_ms": pct(0.99),
        "max_ms": ordered[-1],
        "errors": errors[0],
    }
