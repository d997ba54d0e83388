"""The alert rules pass ``promtool check rules`` and their unit tests (``promtool test
rules``), every alert has a case where it fires, and the dashboard is well formed.

promtool comes from Debian's ``prometheus`` package, installed by
scripts/setup.sh --tests (which the test command runs). Missing, these tests fail: a
rule file nobody checks is worse than none.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from typing import Any

import pytest
import yaml

from tests.e2e.test_metric_names import ALERTS, DASHBOARD, panels

TESTS = ALERTS.with_name("alerts.test.yaml")


@pytest.fixture(scope="module")
def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.fail(
            "promtool is missing: run scripts/setup.sh --tests "
            "(or apt-get install prometheus) — the test command does"
        )
    return found


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, cwd=ALERTS.parent, capture_output=True, text=True, timeout=120, check=False
    )


def test_promtool_checks_the_rules(promtool: str) -> None:
    checked = run(promtool, "check", "rules", ALERTS.name)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS" in checked.stdout


def test_promtool_unit_tests_of_the_rules_pass(promtool: str) -> None:
    tested = run(promtool, "test", "rules", TESTS.name)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout


def test_every_alert_fires_in_a_unit_test_and_stays_quiet_in_another() -> None:
    alerts = {
        rule["alert"]
        for group in yaml.safe_load(ALERTS.read_text())["groups"]
        for rule in group["rules"]
        if "alert" in rule
    }
    tests = yaml.safe_load(TESTS.read_text())["tests"]
    cases: list[dict[str, Any]] = [case for test in tests for case in test["alert_rule_test"]]
    firing = {case["alertname"] for case in cases if case.get("exp_alerts")}
    quiet = {case["alertname"] for case in cases if not case.get("exp_alerts")}
    assert alerts - firing == set(), "alerts never seen firing"
    assert alerts - quiet == set(), "alerts never seen staying quiet"
    # The seed design's alerts and the projector's, by name.
    assert {
        "A4CBootstrapFailureRateHigh",
        "A4CDNSConfigurationFailures",
        "A4CBootstrapSlow",
        "A4CProjectorLagging",
        "A4CProjectorParkedEvents",
        "A4CProjectorLoopStalled",
    } <= alerts
    for group in yaml.safe_load(ALERTS.read_text())["groups"]:
        for rule in group["rules"]:
            assert rule["labels"]["severity"] in ("warning", "critical"), rule["alert"]
            assert rule["annotations"]["summary"] and rule["annotations"]["description"]


def test_the_dashboard_covers_each_part_and_every_panel_has_a_query() -> None:
    board = json.loads(DASHBOARD.read_text())
    assert board["uid"] and board["title"]
    rows = [p["title"] for p in panels(board) if p["type"] == "row"]
    assert {"Bootstraps", "Invitations", "Worker", "Projector", "API"} <= set(rows)
    ids = [p["id"] for p in panels(board)]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in panels(board):
        if panel["type"] == "row":
            continue
        assert panel["targets"], panel["title"]
        # The Prometheus data source is the dashboard's variable: importable anywhere.
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        for target in panel["targets"]:
            assert target["expr"].strip() and target["refId"], panel["title"]
