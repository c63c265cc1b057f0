"""The load test's HTML report: one self-contained file (inline CSS and SVG, no scripts).

Three plots drawn here as SVG: throughput over time (acknowledged and delivered per second),
latency over time (p50 and p99 from the provider's send time to the part in Intercom, per
bucket of delivery; the bucket adapts to the run's length), and the latency distribution (a
histogram over logarithmic bins). Each series has its own colour, on its line and on its
legend swatch and label (set as attributes and inline styles, which the page's stylesheet does
not override). Above them: the verdict with its thresholds, and what describes the run (bridge
version, settings, host, start time).
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from ._loadcheck import LoadReport

__all__ = ["render_html"]

_W, _H = 720, 260
_LEFT, _RIGHT, _TOP, _BOTTOM = 64, 16, 16, 40
_COLORS = ("#2563eb", "#dc2626", "#16a34a")
_INK = "#333"


def _nice_max(value: float) -> float:
    if value <= 0:
        return 1.0
    magnitude = 10.0 ** math.floor(math.log10(value))
    for step in (1.0, 2.0, 2.5, 5.0, 10.0):
        if value <= step * magnitude:
            return step * magnitude
    return 10.0 * magnitude


def _fmt(value: float) -> str:
    return f"{value:.0f}" if value >= 10 or value == int(value) else f"{value:.2g}"


def _frame(x_max: float, y_max: float, x_label: str, y_label: str) -> list[str]:
    plot_w, plot_h = _W - _LEFT - _RIGHT, _H - _TOP - _BOTTOM
    out = [
        f'<rect x="{_LEFT}" y="{_TOP}" width="{plot_w}" height="{plot_h}" '
        'fill="#fff" stroke="#999"/>'
    ]
    for i in range(5):
        y = _TOP + plot_h - plot_h * i / 4
        out.append(
            f'<line x1="{_LEFT}" x2="{_W - _RIGHT}" y1="{y:.1f}" y2="{y:.1f}" stroke="#eee"/>'
        )
        out.append(
            f'<text x="{_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" fill="{_INK}">'
            f"{_fmt(y_max * i / 4)}</text>"
        )
    for i in range(5):
        x = _LEFT + plot_w * i / 4
        out.append(
            f'<text x="{x:.1f}" y="{_H - _BOTTOM + 16}" text-anchor="middle" fill="{_INK}">'
            f"{_fmt(x_max * i / 4)}</text>"
        )
    out.append(
        f'<text x="{_LEFT + plot_w / 2}" y="{_H - 6}" text-anchor="middle" fill="{_INK}">'
        f"{x_label}</text>"
    )
    out.append(
        f'<text x="14" y="{_TOP + plot_h / 2}" text-anchor="middle" fill="{_INK}" '
        f'transform="rotate(-90 14 {_TOP + plot_h / 2})">{y_label}</text>'
    )
    return out


def line_chart(
    title: str,
    series: Sequence[tuple[str, Sequence[tuple[float, float]]]],
    x_label: str,
    y_label: str,
) -> str:
    """An SVG line chart of ``(label, [(x, y), ...])`` series."""
    points = [p for _, values in series for p in values]
    x_max = _nice_max(max((x for x, _ in points), default=1.0))
    y_max = _nice_max(max((y for _, y in points), default=1.0))
    plot_w, plot_h = _W - _LEFT - _RIGHT, _H - _TOP - _BOTTOM
    out = _frame(x_max, y_max, x_label, y_label)
    for index, (label, values) in enumerate(series):
        color = _COLORS[index % len(_COLORS)]
        coords = " ".join(
            f"{_LEFT + plot_w * x / x_max:.1f},{_TOP + plot_h - plot_h * y / y_max:.1f}"
            for x, y in values
        )
        if coords:
            out.append(f'<polyline class="series" data-series="{index}" points="{coords}" '
                       f'fill="none" stroke="{color}" stroke-width="2"/>')  # fmt: skip
        x = _LEFT + 10 + 150 * index
        out.append(
            f'<g class="legend" data-series="{index}">'
            f'<rect class="swatch" x="{x}" y="{_TOP + 6}" width="14" height="10" '
            f'fill="{color}" style="fill:{color}"/>'
            f'<text x="{x + 20}" y="{_TOP + 15}" fill="{color}" style="fill:{color}">'
            f"{html.escape(label)}</text></g>"
        )
    return _svg(title, out)


def histogram(title: str, values: Sequence[float], x_label: str) -> str:
    """An SVG histogram of ``values`` over logarithmic bins (so tails stay visible)."""
    positive = [max(v, 0.1) for v in values if v > 0]  # the caller reports the others
    low = math.floor(math.log10(min(positive, default=1.0)) * 4) / 4
    high = math.ceil(math.log10(max(positive, default=10.0)) * 4) / 4
    high = max(high, low + 0.25)
    bins = round((high - low) * 4)
    counts = [0] * bins
    for value in positive:
        index = min(bins - 1, int((math.log10(value) - low) * 4))
        counts[index] += 1
    y_max = _nice_max(max(counts, default=1))
    plot_w, plot_h = _W - _LEFT - _RIGHT, _H - _TOP - _BOTTOM
    out = _frame(1.0, y_max, x_label, "messages")
    out = [line for line in out if 'y="' + str(_H - _BOTTOM + 16) + '"' not in line]
    width = plot_w / bins
    for index, count in enumerate(counts):
        height = plot_h * count / y_max
        x = _LEFT + width * index
        out.append(
            f'<rect x="{x + 1:.1f}" y="{_TOP + plot_h - height:.1f}" width="{width - 2:.1f}" '
            f'height="{height:.1f}" fill="{_COLORS[0]}"><title>{count}</title></rect>'
        )
        if index % max(1, bins // 8) == 0:
            edge = 10 ** (low + index / 4)
            out.append(
                f'<text x="{x:.1f}" y="{_H - _BOTTOM + 16}" text-anchor="middle">'
                f"{_fmt(edge)}</text>"
            )
    return _svg(title, out)


def _svg(title: str, body: list[str]) -> str:
    inner = "\n".join(body)
    return (
        f"<figure><figcaption>{html.escape(title)}</figcaption>"
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {_W} {_H}" width="{_W}" '
        f'height="{_H}" role="img" aria-label="{html.escape(title)}">{inner}</svg></figure>'
    )


_CSS = """
body { font-family: system-ui, sans-serif; margin: 2rem; color: #111; max-width: 60rem; }
table { border-collapse: collapse; margin: 1rem 0; }
td, th { border: 1px solid #ddd; padding: .3rem .6rem; text-align: right; }
th { background: #f5f5f5; text-align: left; }
.pass { color: #16a34a; } .fail { color: #dc2626; }
svg text { font-size: 11px; }
figure { margin: 1.5rem 0; } figcaption { font-weight: 600; margin-bottom: .3rem; }
pre { background: #f5f5f5; padding: .6rem; overflow-x: auto; }
"""


def render_html(report: LoadReport, meta: dict[str, Any]) -> str:
    """The whole report as one HTML document."""
    data = report.as_json()
    verdict = "PASS" if report.passed else "FAIL"
    lat = report.latency_ms
    rows = [
        ("sent", data["sent"]),
        ("acknowledged", data["acknowledged"]),
        ("delivered", data["delivered"]),
        ("lost", data["lost"]),
        ("duplicated", data["duplicated"]),
        ("out of order", data["out_of_order"]),
        ("throughput (messages/s)", data["throughput_per_s"]),
        ("duration (s)", data["duration_s"]),
        *((f"latency {k}, send → Intercom (ms)", v) for k, v in data["latency_ms"].items()),
        ("negative latencies (clock bug)", data["negative_latencies"]),
        *((f"ingress ack {k} (ms)", v) for k, v in data["ack_latency_ms"].items()),
        ("Intercom 429s", data["rejected_429"]),
        ("bridge retries", data["retries"]),
        ("dead letters", data["dead_letters"]),
    ]
    table = "".join(
        f"<tr><th>{html.escape(name)}</th><td>{'unknown' if v is None else html.escape(str(v))}"
        "</td></tr>"
        for name, v in rows
    )
    timeline, bucket = report.timeline, report.bucket_s
    per = f"{bucket:g}-s buckets"
    throughput = line_chart(
        f"Throughput over time ({per})",
        [
            ("acknowledged/s", [(r["t"], r["acknowledged"] / bucket) for r in timeline]),
            ("delivered/s", [(r["t"], r["delivered"] / bucket) for r in timeline]),
        ],
        "seconds since start",
        "messages per second",
    )
    latency = line_chart(
        f"Latency over time (send → Intercom, {per})",
        [
            ("p50", [(r["t"], r["p50_ms"]) for r in timeline if r["delivered"]]),
            ("p99", [(r["t"], r["p99_ms"]) for r in timeline if r["delivered"]]),
        ],
        "seconds since start (by delivery)",
        "milliseconds",
    )
    negative = report.negative_latencies
    distribution = histogram(
        "Latency distribution (send → Intercom)"
        + (f"; {negative} negative values (clock bug) not drawn" if negative else ""),
        report.latencies,
        "milliseconds (log)",
    )
    started = datetime.fromtimestamp(float(meta.get("started_at", 0)), UTC).isoformat()
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in report.notes)
    settings = html.escape(json.dumps({k: meta[k] for k in ("plan", "faults")}, indent=2))
    run_table = _rows(_run_rows(meta, started))
    limit = report.max_p99_ms
    checks = [
        ("lost", "0", str(report.lost), report.lost == 0),
        ("duplicated", "0", str(report.duplicated), report.duplicated == 0),
        ("out of order", "0", str(report.out_of_order), report.out_of_order == 0),
        (
            "acknowledged",
            f"= sent ({report.sent})",
            str(report.acknowledged),
            report.acknowledged == report.sent,
        ),
        (
            "latency p99 (ms)",
            "no limit" if limit is None else f"≤ {limit:g}",
            str(lat.get("p99", 0.0)),
            limit is None or lat.get("p99", 0.0) <= limit,
        ),
    ]
    threshold_table = (
        "<tr><th>check</th><th>threshold</th><th>measured</th><th></th></tr>"
        + "".join(
            f"<tr><th>{html.escape(name)}</th><td>{html.escape(want)}</td><td>{html.escape(got)}</td>"
            f'<td class="{"pass" if ok else "fail"}">{"pass" if ok else "FAIL"}</td></tr>'
            for name, want, got, ok in checks
        )
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>threadline loadtest: {verdict}</title>
<style>{_CSS}</style></head>
<body>
<h1>threadline loadtest: <span class="{verdict.lower()}">{verdict}</span></h1>
<p>{html.escape(str(meta["mode"]))} bridge at {html.escape(str(meta["target"]))}, started
{started}. A pass needs every acknowledged message delivered once, in order per thread, and the
latency p99 within its threshold when one is set (<code>--max-p99-ms</code>). Latency runs from
the provider's send time (when the customer's message was sent) to the part in Intercom.</p>
<h2>Verdict</h2><table class="thresholds">{threshold_table}</table>
<h2>Run</h2><table class="run">{run_table}</table>
<h2>Results</h2><table>{table}</table>
{f"<ul>{notes}</ul>" if notes else ""}
{throughput}
{latency}
{distribution}
<h2>Settings</h2><pre>{settings}</pre>
</body></html>
"""


def _rows(rows: Sequence[tuple[str, object]]) -> str:
    return "".join(
        f"<tr><th>{html.escape(name)}</th><td>{'unknown' if v is None else html.escape(str(v))}"
        "</td></tr>"
        for name, v in rows
    )


def _run_rows(meta: dict[str, Any], started: str) -> list[tuple[str, object]]:
    plan, host = meta.get("plan", {}), meta.get("host", {})
    rate = plan.get("rate")
    return [
        ("started (UTC)", started),
        ("bridge version", meta.get("bridge_version")),
        ("loadtest version", meta.get("loadtest_version")),
        ("mode", meta.get("mode")),
        ("target", meta.get("target")),
        ("store", meta.get("store")),
        ("channels", ", ".join(plan.get("channels", ()))),
        ("rate (messages/s)", rate or "as fast as acknowledged"),
        ("threads", plan.get("threads")),
        ("messages per thread", plan.get("messages_per_thread")),
        ("total limit", plan.get("total") or "none"),
        ("duration limit (s)", plan.get("duration_s") or "none"),
        ("attachments (share)", plan.get("attachment_share")),
        ("concurrency", plan.get("concurrency")),
        ("host", host.get("hostname")),
        ("CPUs", host.get("cpu_count")),
        ("platform", f"{host.get('platform')}, Python {host.get('python')}"),
    ]
