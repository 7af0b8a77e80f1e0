"""Paths of the deployment files and how to read them (shared by the tests and fixtures here)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
COMPOSE_FILE = ROOT / "docker-compose.yml"
COMPOSE_CONFIG = DEPLOY / "qroute.compose.toml"
KUBERNETES = DEPLOY / "kubernetes"
ALERTS = DEPLOY / "prometheus" / "alerts.yml"
PROMETHEUS_CONFIG = DEPLOY / "prometheus" / "prometheus.yml"
DASHBOARD = DEPLOY / "grafana" / "qroute.json"
WORKER_CONFIG_PATH = "/etc/qroute/qroute.toml"
"""Where the image's CMD, compose and Kubernetes all put the worker's qroute.toml."""


def load_yaml(path: Path) -> Any:
    with path.open(encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def in_ci(env: Mapping[str, str]) -> bool:
    """Whether this run is CI (.ci/run exports CI=true), where no deployment check may be skipped."""
    return env.get("CI", "").strip().lower() in ("1", "true", "yes")
