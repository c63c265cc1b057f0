"""The alert rules and the scrape config, checked by promtool; the metrics a live bridge exposes.

- ``promtool check rules`` / ``check config`` / ``test rules`` over ``deploy/prometheus``.
- Every alert has a unit test where it fires and one where it must not, a severity, a summary
  and a runbook link whose anchor is a heading of ``docs/operations.md``.
- ``promtool check metrics`` lints a live ``/metrics`` scrape (names, units, help text).
- ``promtool test rules`` over two live scrapes (before and after an Intercom outage): the
  dead-letter alert fires on the bridge's real series, the others stay quiet.
- Every metric name an alert or a dashboard panel uses exists in that scrape, with the labels
  the expression matches on, so a rename cannot silently break paging.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.deploy.conftest import DEPLOY, REPO, LiveRun, load_yaml, run_tool

PROMETHEUS = DEPLOY / "prometheus"
RULES = PROMETHEUS / "alerts.yml"
RULE_TESTS = PROMETHEUS / "alerts.test.yml"
RUNBOOK = REPO / "docs" / "operations.md"
RUNBOOK_URL = "https://github.com/threadline/threadline/blob/main/docs/operations.md#"
METRIC = re.compile(r"\b(?:threadline|process)_[a-z0-9_]+\b")
"""Ours, and the process collector's (memory, CPU, file descriptors) the bridge registers."""
SELECTOR = re.compile(r"\b((?:threadline|process)_[a-z0-9_]+)\s*\{([^}]*)\}")
MATCHER = re.compile(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)")
TARGET_LABELS = {"job", "instance"}
"""Labels Prometheus attaches to every scraped series."""


def load(path: Path) -> Any:  # noqa: ANN401 - parsed YAML
    (doc,) = load_yaml(path)
    return doc


def alerts() -> list[dict[str, Any]]:
    return [rule for group in load(RULES)["groups"] for rule in group["rules"] if "alert" in rule]


def github_anchors(markdown: str) -> set[str]:
    """The anchors GitHub gives the headings of a Markdown document."""
    anchors = set()
    for line in markdown.splitlines():
        if match := re.match(r"#{1,6}\s+(.*)", line):
            text = re.sub(r"[^\w\- ]", "", match.group(1).strip().lower())
            anchors.add(text.replace(" ", "-"))
    return anchors


def test_promtool_checks_the_rules(promtool: str) -> None:
    result = run_tool([promtool, "check", "rules", str(RULES)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(alerts())} rules found" in result.stdout


def test_promtool_checks_the_scrape_config_and_it_loads_the_tested_rules(promtool: str) -> None:
    config = PROMETHEUS / "prometheus.yml"
    result = run_tool([promtool, "check", "config", str(config)])
    assert result.returncode == 0, result.stdout + result.stderr
    parsed = load(config)
    assert [(PROMETHEUS / f).resolve() for f in parsed["rule_files"]] == [RULES.resolve()]
    (job,) = [j for j in parsed["scrape_configs"] if j["job_name"] == "threadline"]
    assert len(job["static_configs"][0]["targets"]) == 2  # both nodes of the compose stack


def test_promtool_unit_tests_of_the_alerts_pass(promtool: str) -> None:
    result = run_tool([promtool, "test", "rules", RULE_TESTS.name], cwd=PROMETHEUS)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_alert_has_a_case_where_it_fires_and_one_where_it_must_not() -> None:
    fires: set[str] = set()
    silent: set[str] = set()
    for case in load(RULE_TESTS)["tests"]:
        for check in case.get("alert_rule_test", []):
            (fires if check.get("exp_alerts") else silent).add(check["alertname"])
    names = {rule["alert"] for rule in alerts()}
    assert names - fires == set(), "alerts without a unit test where they fire"
    assert names - silent == set(), "alerts without a unit test where they must not fire"


@pytest.mark.parametrize("rule", alerts(), ids=lambda rule: rule["alert"])
def test_alert_has_severity_summary_and_a_runbook_entry(rule: dict[str, Any]) -> None:
    assert rule["labels"]["severity"] in {"critical", "warning"}
    assert rule["annotations"]["summary"]
    url = rule["annotations"]["runbook_url"]
    assert url == RUNBOOK_URL + rule["alert"].lower()
    assert rule["alert"].lower() in github_anchors(RUNBOOK.read_text(encoding="utf-8"))


def test_promtool_check_metrics_accepts_a_live_scrape(promtool: str, live_run: LiveRun) -> None:
    result = run_tool([promtool, "check", "metrics"], stdin=live_run.scrape)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout + result.stderr == "", "promtool lint findings"


def test_metrics_endpoint_requires_its_bearer_token(live_run: LiveRun) -> None:
    assert live_run.unauthenticated_status == 401


def exposed(scrape: str) -> dict[str, set[str]]:
    """Every series name a scrape exposes (``_total``, ``_bucket``… included) → its labels."""
    names: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(scrape):
        suffixes = {
            "counter": ("_total",),
            "histogram": ("_bucket", "_sum", "_count"),
            "summary": ("_sum", "_count", ""),
        }.get(family.type, ("",))
        for suffix in suffixes:  # a labelled family without samples yet is still declared
            names.setdefault(family.name + suffix, set())
        for sample in family.samples:
            names.setdefault(sample.name, set()).update(sample.labels)
    return names


def used_in_rules() -> list[tuple[str, str]]:
    return [(rule["alert"], rule["expr"]) for rule in alerts()]


def dashboard_queries(node: object) -> list[str]:
    """Every ``expr`` of every panel target (and templating query) in a dashboard."""
    if isinstance(node, dict):
        found = [node["expr"]] if isinstance(node.get("expr"), str) else []
        return found + [q for value in node.values() for q in dashboard_queries(value)]
    if isinstance(node, list):
        return [q for value in node for q in dashboard_queries(value)]
    return []


def used_in_dashboards() -> list[tuple[str, str]]:
    found = []
    for path in sorted((DEPLOY / "grafana" / "dashboards").glob("*.json")):
        dashboard = json.loads(path.read_text(encoding="utf-8"))
        found += [(f"{path.name}: {expr}", expr) for expr in dashboard_queries(dashboard)]
    return found


def test_the_rules_and_dashboards_use_some_metrics() -> None:
    assert len(used_in_rules()) >= 10
    assert len(used_in_dashboards()) >= 15


@pytest.mark.parametrize(
    ("where", "expr"), used_in_rules() + used_in_dashboards(), ids=lambda v: v[:60]
)
def test_every_metric_an_alert_or_panel_uses_exists_in_a_live_scrape(
    live_run: LiveRun, where: str, expr: str
) -> None:
    names = exposed(live_run.scrape)
    used = set(METRIC.findall(expr))
    if not used:  # only `up`, which Prometheus itself records for every target
        assert re.search(r"\bup\{job=", expr), f"{where} uses no threadline metric"
    assert used - set(names) == set(), f"{where} uses metrics a live bridge does not expose"
    for metric, matchers in SELECTOR.findall(expr):
        labels = set(MATCHER.findall(matchers)) - TARGET_LABELS
        if names[metric]:  # the scenario produced samples, so their labels are known
            assert labels <= names[metric], f"{where}: {metric} has no label {labels}"


def test_the_live_scrape_has_the_metrics_architecture_lists(live_run: LiveRun) -> None:
    names = exposed(live_run.scrape)
    for name in (
        "threadline_webhook_requests_total",
        "threadline_journal_appends_total",
        "threadline_journal_commit_duration_seconds_bucket",
        "threadline_journal_pending_entries",
        "threadline_journal_oldest_pending_age_seconds",
        "threadline_actors_live",
        "threadline_mailbox_depth",
        "threadline_messages_total",
        "threadline_delivery_latency_seconds_bucket",
        "threadline_intercom_requests_total",
        "threadline_intercom_request_duration_seconds_bucket",
        "threadline_intercom_ratelimit_waits_total",
        "threadline_retry_attempts_total",
        "threadline_supervisor_restarts_total",
        "threadline_dead_letters_total",
        "threadline_conversations_created_total",
        "threadline_partitions_owned",
        "threadline_partitions",
        "threadline_build_info",
        "threadline_ingress_request_duration_seconds_bucket",
        "threadline_channel_send_duration_seconds_bucket",
        "process_resident_memory_bytes",
        "process_cpu_seconds_total",
    ):
        assert name in names, name
    assert {"version", "commit"} <= names["threadline_build_info"]
    assert {"channel", "code"} <= names["threadline_webhook_requests_total"]
    assert {"endpoint", "code"} <= names["threadline_intercom_requests_total"]
    assert {"route", "status_class"} <= names["threadline_ingress_request_duration_seconds_bucket"]
    assert {"channel", "outcome"} <= names["threadline_channel_send_duration_seconds_bucket"]


def test_the_live_scrape_has_no_created_series(live_run: LiveRun) -> None:
    """prometheus-client's ``*_created`` timestamps double the series and nothing reads them."""
    for scrape in (live_run.scrape_before_outage, live_run.scrape):
        assert [n for n in exposed(scrape) if n.endswith("_created")] == []


def as_input_series(before: str, after: str, minutes: int) -> list[dict[str, str]]:
    """promtool input series: each live sample at its ``before`` value at 0m, then ``after``.

    Series the outage created (absent before) start at 1m. ``*_created`` timestamps are left
    out: no rule or panel reads them.
    """

    def samples(scrape: str) -> dict[str, float]:
        found = {}
        for family in text_string_to_metric_families(scrape):
            for sample in family.samples:
                if sample.name.endswith("_created"):
                    continue
                labels = {**sample.labels, "job": "threadline", "instance": "live:9464"}
                text = ", ".join(f"{k}={json.dumps(v)}" for k, v in sorted(labels.items()))
                found[f"{sample.name}{{{text}}}"] = sample.value
        return found

    old, new = samples(before), samples(after)
    series = [{"series": 'up{job="threadline", instance="live:9464"}', "values": f"1x{minutes}"}]
    for name, value in new.items():
        first = repr(old[name]) if name in old else "_"
        series.append({"series": name, "values": f"{first} {value!r}x{minutes}"})
    return series


def test_the_alerts_fire_on_what_a_live_bridge_exposes_during_an_outage(
    promtool: str, live_run: LiveRun, tmp_path: Path
) -> None:
    """The live scrapes before and after an Intercom outage that dead-lettered an entry, fed
    to promtool as series: the dead-letter alert fires on the bridge's real series, and the
    alerts that have no reason to fire stay quiet."""
    quiet = {rule["alert"] for rule in alerts()} - {"ThreadlineDeadLettersIncreasing"}
    runbook = RUNBOOK_URL + "threadlinedeadlettersincreasing"
    case = {
        "rule_files": [str(RULES)],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": as_input_series(
                    live_run.scrape_before_outage, live_run.scrape, minutes=15
                ),
                "alert_rule_test": [
                    {
                        "eval_time": "5m",
                        "alertname": "ThreadlineDeadLettersIncreasing",
                        "exp_alerts": [
                            {
                                "exp_labels": {
                                    "severity": "warning",
                                    "job": "threadline",
                                    "direction": "inbound",
                                },
                                "exp_annotations": {
                                    "summary": "New inbound dead letters in the last 15 minutes:"
                                    " operators must inspect and replay them",
                                    "runbook_url": runbook,
                                },
                            }
                        ],
                    },
                    *({"eval_time": "5m", "alertname": name, "exp_alerts": []} for name in quiet),
                ],
            }
        ],
    }
    path = tmp_path / "live.test.yml"
    path.write_text(json.dumps(case), encoding="utf-8")  # JSON is YAML
    result = run_tool([promtool, "test", "rules", str(path)])
    assert result.returncode == 0, result.stdout + result.stderr
