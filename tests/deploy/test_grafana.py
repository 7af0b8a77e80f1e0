"""deploy/grafana: the dashboard shows what issue 6 lists, and provisioning finds it and its datasource."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.deploy.files import DASHBOARD, DEPLOY, load_yaml

PROVISIONING = DEPLOY / "grafana" / "provisioning"

REQUIRED_PANELS = {
    "jobs/s by status": ("qroute_jobs_total", "by (status)"),
    "spend per minute by route": ("qroute_cost_usd_total", "by (route)"),
    "cumulative spend": ("qroute_cost_usd_total", "[$__range]"),
    "429s by route": ("qroute_rate_limited_total", "by (route)"),
    "failovers by route": ("qroute_failovers_total", "by (from_route)"),
    "circuit state": ("qroute_circuit_state", "by (route)"),
    "in flight": ("qroute_in_flight", ""),
    "lag per partition": ("qroute_consumer_lag", "partition"),
    "provider latency p50 / p95": ("qroute_provider_latency_seconds_bucket", "by (route, le)"),
    "end-to-end": ("qroute_job_latency_seconds_bucket", "by (le)"),
}
"""Title fragment -> (metric, grouping) the panel must query."""


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in dashboard["panels"] if p["type"] != "row"]


def panel_text(panel: dict[str, Any]) -> str:
    return " ".join(t["expr"] for t in panel["targets"])


class TestDashboard:
    """Panels, layout and datasource references of qroute.json."""

    @pytest.mark.parametrize("fragment", sorted(REQUIRED_PANELS))
    def test_required_panel_queries_its_metric(self, dashboard: dict[str, Any], fragment: str) -> None:
        """The panel exists (by title) and queries the metric with the grouping the issue asks for."""
        metric, grouping = REQUIRED_PANELS[fragment]
        matching = [p for p in panels(dashboard) if fragment in p["title"].lower()]
        assert matching, f"no panel titled like {fragment!r}"
        assert any(metric in panel_text(p) and grouping in panel_text(p) for p in matching), fragment

    def test_latency_panels_show_p50_and_p95(self, dashboard: dict[str, Any]) -> None:
        """Provider latency has both quantiles; end-to-end at least p50 and p95."""
        for fragment in ("provider latency", "end-to-end"):
            panel = next(p for p in panels(dashboard) if fragment in p["title"].lower())
            text = panel_text(panel)
            assert "histogram_quantile(0.5," in text
            assert "histogram_quantile(0.95," in text

    def test_ids_are_unique(self, dashboard: dict[str, Any]) -> None:
        """Grafana keys panel state by id: duplicates break links and edits."""
        ids = [p["id"] for p in dashboard["panels"]]
        assert len(ids) == len(set(ids))

    def test_panels_fit_the_grid_without_overlap(self, dashboard: dict[str, Any]) -> None:
        """Each panel is inside the 24-column grid and no two panels cover the same cell."""
        taken: set[tuple[int, int]] = set()
        for panel in dashboard["panels"]:
            pos = panel["gridPos"]
            assert pos["x"] >= 0, panel["title"]
            assert pos["x"] + pos["w"] <= 24, panel["title"]
            cells = {
                (x, y)
                for x in range(pos["x"], pos["x"] + pos["w"])
                for y in range(pos["y"], pos["y"] + pos["h"])
            }
            assert not cells & taken, f"{panel['title']} overlaps another panel"
            taken |= cells

    def test_queries_use_the_datasource_variable(self, dashboard: dict[str, Any]) -> None:
        """Every panel and target names ${datasource}, so the dashboard imports into any Grafana."""
        variables = {v["name"]: v for v in dashboard["templating"]["list"]}
        assert variables["datasource"]["type"] == "datasource"
        assert variables["datasource"]["query"] == "prometheus"
        for panel in panels(dashboard):
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
            for target in panel["targets"]:
                assert target["datasource"]["uid"] == "${datasource}", panel["title"]
                assert target["expr"].strip(), panel["title"]

    def test_route_filter_is_applied_to_route_panels(self, dashboard: dict[str, Any]) -> None:
        """Panels grouped by route honour the $route selection."""
        for panel in panels(dashboard):
            text = panel_text(panel)
            if re.search(r"by \((from_)?route\b", text):
                assert '=~"$route"' in text, panel["title"]


class TestProvisioning:
    """Grafana loads the datasource and the dashboard from the compose mounts."""

    def test_datasource_is_the_dashboard_default(self, dashboard: dict[str, Any]) -> None:
        """The provisioned Prometheus datasource has the uid the dashboard selects by default."""
        sources = load_yaml(PROVISIONING / "datasources" / "prometheus.yml")["datasources"]
        (prometheus,) = [s for s in sources if s["type"] == "prometheus"]
        variable = next(v for v in dashboard["templating"]["list"] if v["name"] == "datasource")
        assert prometheus["uid"] == variable["current"]["value"]
        assert prometheus["url"] == "http://prometheus:9090"

    def test_dashboard_provider_reads_the_mounted_file(self, compose: dict[str, Any]) -> None:
        """The provider's path is the directory the compose file mounts qroute.json into."""
        providers = load_yaml(PROVISIONING / "dashboards" / "qroute.yml")["providers"]
        path = providers[0]["options"]["path"]
        mounts = [str(v).split(":") for v in compose["services"]["grafana"]["volumes"]]
        sources = {target: source for source, target, *_ in mounts}
        assert sources[f"{path}/qroute.json"] == "./deploy/grafana/qroute.json"
        assert sources["/etc/grafana/provisioning"] == "./deploy/grafana/provisioning"
        assert DASHBOARD.is_file()
