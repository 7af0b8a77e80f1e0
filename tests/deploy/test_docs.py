"""docs/operating.md explains the compose stack, the simulator profile and Kubernetes, with working links."""

from __future__ import annotations

import re

import pytest

from tests.deploy.files import ROOT

OPERATING = ROOT / "docs" / "operating.md"


@pytest.fixture(scope="module")
def text() -> str:
    return OPERATING.read_text(encoding="utf-8")


class TestOperatingGuide:
    """The operating section covers what issue 6 asks it to explain."""

    @pytest.mark.parametrize(
        "command",
        [
            "docker compose up",
            "cp .env.example .env",
            "COMPOSE_PROFILES=sim",
            "--profile sim",
            "QROUTE_SIM_API_KEY",
            "kubectl apply -k deploy/kubernetes",
            "qroute-provider-keys",
            "qroute topics create",
            "/healthz",
            "/readyz",
        ],
    )
    def test_mentions(self, text: str, command: str) -> None:
        """Each command or name an operator needs appears in the guide."""
        assert command in text

    def test_relative_links_resolve(self, text: str) -> None:
        """Every relative Markdown link points at a file or directory of the repository."""
        links = [t for t in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", text) if "://" not in t]
        assert links
        for target in links:
            assert (OPERATING.parent / target).exists(), target

    def test_lists_every_alert(self, text: str, alerts: dict[str, object]) -> None:
        """The alert table names each alert defined in deploy/prometheus/alerts.yml."""
        groups = alerts["groups"]
        assert isinstance(groups, list)
        names = {r["alert"] for g in groups for r in g["rules"] if "alert" in r}
        for name in names:
            assert f"`{name}`" in text, name
