"""The load test's HTML report as a browser draws it, and what the report and its verdict say.

The legend test renders the generated page in headless Chromium (Debian's ``chromium``;
tests/ensure-tools.sh installs it) and reads the pixels of its screenshot: every series'
legend swatch and label must have its line's colour, and the series of one chart must differ.
Where the positions come from: a copy of the page with a script appended reports the boxes
(``--dump-dom``); the screenshot is of the page as generated, without the script.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import zlib
from pathlib import Path
from typing import Any

import pytest

from actors.tools import LoadReport, bucket_for, percentiles, render_html, summary_lines

Pixel = tuple[int, int, int]

CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--hide-scrollbars",
)  # fmt: skip
WIDTH = 820

# Appended to a copy of the page: the viewport boxes of the legend labels and swatches, and a
# point on each line (a vertex, in viewport pixels), per chart, into the document's title.
LABELS = [["acknowledged/s", "delivered/s"], ["p50", "p99"]]
PROBE = """<script>
const LABELS = __LABELS__;
const charts = [];
for (const svg of document.querySelectorAll("figure svg")) {
  const lines = [...svg.querySelectorAll("polyline")];
  const box = (e) => { const r = e.getBoundingClientRect();
    return [r.left, r.top, r.right, r.bottom]; };
  const series = lines.map((line, i) => {
    const k = Math.floor(line.points.numberOfItems / 2);
    const p = line.points.getItem(k).matrixTransform(line.getScreenCTM());
    const label = [...svg.querySelectorAll("text")].filter(
      (t) => t.textContent === LABELS[charts.length][i])[0];
    const swatch = svg.querySelectorAll(".legend .swatch")[i];
    return {point: [p.x, p.y], label: label ? box(label) : null,
            swatch: swatch ? box(swatch) : null};
  });
  if (lines.length) charts.push(series);
}
document.title = JSON.stringify({charts, height: document.documentElement.scrollHeight});
</script>""".replace("__LABELS__", json.dumps(LABELS))


def chromium() -> str:
    """Debian's chromium; skips locally and fails under ``CI=true`` when it is missing."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        message = (
            "chromium not found: run `bash tests/ensure-tools.sh` as root, or "
            "`apt-get install --no-install-recommends chromium fonts-dejavu-core` (Debian)"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return found


def run_chromium(binary: str, profile: Path, *args: str) -> str:
    profile.mkdir(exist_ok=True)
    done = subprocess.run(  # noqa: S603 - a fixed tool, arguments from the test
        [binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def decode_png(data: bytes) -> tuple[int, list[bytes]]:
    """(width, rows of RGB bytes) of an 8-bit, non-interlaced RGB or RGBA PNG."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks, header = 8, [], b""
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            chunks.append(body)
    width, height, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", header)
    assert (depth, interlace) == (8, 0), (depth, interlace)
    assert color in (2, 6), color  # RGB or RGBA
    bpp = 3 if color == 2 else 4
    raw = zlib.decompress(b"".join(chunks))
    stride = width * bpp
    rows: list[bytes] = []
    previous = bytearray(stride)
    for y in range(height):
        kind = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        if kind == 1:  # Sub
            for i in range(bpp, stride):
                line[i] = (line[i] + line[i - bpp]) & 0xFF
        elif kind == 2:  # Up
            line = bytearray((a + b) & 0xFF for a, b in zip(line, previous, strict=True))
        elif kind == 3:  # Average
            for i in range(stride):
                left = line[i - bpp] if i >= bpp else 0
                line[i] = (line[i] + ((left + previous[i]) >> 1)) & 0xFF
        elif kind == 4:  # Paeth
            for i in range(stride):
                a = line[i - bpp] if i >= bpp else 0
                b, c = previous[i], previous[i - bpp] if i >= bpp else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else b if pb <= pc else c
                line[i] = (line[i] + pred) & 0xFF
        previous = line
        rows.append(bytes(line) if bpp == 3 else bytes(v for i, v in enumerate(line) if i % 4 != 3))
    return width, rows


def pixel(rows: list[bytes], x: int, y: int) -> Pixel:
    r, g, b = rows[y][3 * x : 3 * x + 3]
    return (r, g, b)


def chroma(p: Pixel) -> int:
    return max(p) - min(p)


def most_coloured(rows: list[bytes], box: tuple[float, float, float, float]) -> Pixel:
    """The most saturated pixel in a box: a line's or a glyph's own colour, not its edge."""
    left, top, right, bottom = (round(v) for v in box)
    found = [pixel(rows, x, y) for y in range(top, bottom + 1) for x in range(left, right + 1)]
    return max(found, key=chroma)


def distance(a: Pixel, b: Pixel) -> int:
    return max(abs(x - y) for x, y in zip(a, b, strict=True))


def report_with_separate_series() -> LoadReport:
    """Two charts whose series are far apart, so a point on one line touches no other."""
    report = LoadReport(sent=300, acknowledged=300, delivered=300, duration_s=3.0)
    report.bucket_s = bucket_for(report.duration_s)
    for i in range(30):
        report.timeline.append(
            {"t": round(i * 0.1, 1), "acknowledged": 10.0, "delivered": 4.0 + (i % 3),
             "p50_ms": 10.0 + i % 4, "p99_ms": 80.0 + i % 5}
        )  # fmt: skip
    report.latencies = [5.0 + i % 90 for i in range(300)]
    report.latency_ms = percentiles(report.latencies)
    report.ack_latency_ms = percentiles([2.0, 3.0])
    return report


META: dict[str, Any] = {
    "mode": "embedded",
    "target": "http://127.0.0.1:1",
    "bridge_version": "0.1.0 (abc1234)",
    "loadtest_version": "0.1.0",
    "store": "sqlite",
    "host": {"hostname": "loadhost", "cpu_count": 2, "platform": "Linux", "python": "3.11"},
    "thresholds": {"lost": 0, "duplicated": 0, "out_of_order": 0, "max_p99_ms": None},
    "plan": {"threads": 10, "messages_per_thread": 30, "rate": 100.0, "total": None,
             "duration_s": None, "channels": ["whatsapp", "twilio", "telegram"],
             "attachment_share": 0.0, "concurrency": 64},
    "faults": {"delete_conversations": 0},
    "intercom_requests": 320,
    "started_at": 1_800_000_000.0,
}  # fmt: skip


def test_legend_swatches_have_their_lines_colours_in_chromium(tmp_path: Path) -> None:
    binary = chromium()
    page = render_html(report_with_separate_series(), META)
    report = tmp_path / "report.html"
    report.write_text(page, encoding="utf-8")
    probe = tmp_path / "probe.html"
    probe.write_text(page.replace("</body>", PROBE + "</body>"), encoding="utf-8")
    dom = run_chromium(
        binary, tmp_path / "profile-a", f"--window-size={WIDTH},1200", "--dump-dom", probe.as_uri()
    )
    title = dom.split("<title>", 1)[1].split("</title>", 1)[0]
    layout = json.loads(title.replace("&quot;", '"').replace("&amp;", "&"))
    charts: list[list[dict[str, Any]]] = layout["charts"]
    assert len(charts) == 2, charts
    shot = tmp_path / "shot.png"
    height = int(layout["height"]) + 20
    run_chromium(
        binary, tmp_path / "profile-b", f"--window-size={WIDTH},{height}",
        f"--screenshot={shot}", report.as_uri(),
    )  # fmt: skip
    _, rows = decode_png(shot.read_bytes())

    for labels, series in zip(LABELS, charts, strict=True):
        assert len(series) == 2
        seen: list[Pixel] = []
        for label, one in zip(labels, series, strict=True):
            x, y = one["point"]
            line = most_coloured(rows, (x - 3, y - 3, x + 3, y + 3))
            assert chroma(line) > 120, f"{label}: no line colour near its vertex ({line})"
            assert one["label"] is not None, f"{label}: no legend label"
            text = most_coloured(rows, one["label"])
            assert distance(text, line) <= 60, f"{label}: legend label {text}, line {line}"
            assert one["swatch"] is not None, f"{label}: no legend swatch"
            left, top, right, bottom = one["swatch"]
            swatch = pixel(rows, round((left + right) / 2), round((top + bottom) / 2))
            assert distance(swatch, line) <= 40, f"{label}: legend swatch {swatch}, line {line}"
            seen.append(swatch)
        assert distance(seen[0], seen[1]) > 100, f"{labels}: swatches alike: {seen}"


def test_buckets_adapt_to_the_run_length() -> None:
    assert bucket_for(3.0) == 0.1  # a few seconds: 30 points, not 3
    assert bucket_for(0.5) == 0.1
    assert bucket_for(60.0) == 0.5
    assert bucket_for(600.0) == 5.0
    assert bucket_for(4 * 3600.0) == 120.0
    for duration in (1.0, 5.0, 13.0, 90.0, 1000.0, 20_000.0, 90_000.0):
        assert duration / bucket_for(duration) <= 120


def test_report_shows_run_metadata_thresholds_and_verdict() -> None:
    report = report_with_separate_series()
    report.max_p99_ms = 50.0  # the p99 above is 93 ms
    report.negative_latencies = 2
    page = render_html(report, META)
    assert 'threadline loadtest: <span class="fail">FAIL</span>' in page
    for shown in (
        "0.1.0 (abc1234)",
        "sqlite",
        "loadhost",
        "whatsapp, twilio, telegram",
        "messages per thread",
        "2027-01-15T08:00:00",
        "≤ 50",
        "negative latencies (clock bug)",
    ):
        assert shown in page, shown  # fmt: skip
    assert "0.1-s buckets" in page
    lines = summary_lines(report, META)
    assert lines[0].startswith("FAIL: latency p99 93.0 ms above the threshold 50 ms")
    assert "latency p99 50 ms" in lines[1]
    assert "negative (clock bug) 2" in "\n".join(lines)
    report.max_p99_ms = 100.0
    assert report.passed
    assert summary_lines(report, META)[0].startswith("PASS")
