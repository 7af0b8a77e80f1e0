"""Parsed deployment files, shared by the tests in this package (each file is read once)."""

from __future__ import annotations

import json
import os
import shutil
import tomllib
from typing import Any

import pytest
import yaml

from tests.deploy.files import ALERTS, COMPOSE_CONFIG, COMPOSE_FILE, DASHBOARD, KUBERNETES, in_ci, load_yaml


@pytest.fixture(scope="session")
def compose() -> dict[str, Any]:
    """docker-compose.yml with YAML anchors and merge keys resolved, as Compose sees it."""
    data = load_yaml(COMPOSE_FILE)
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="session")
def compose_config() -> dict[str, Any]:
    """deploy/qroute.compose.toml as raw TOML (the settings tests load it with load_settings)."""
    with COMPOSE_CONFIG.open("rb") as fh:
        return tomllib.load(fh)


@pytest.fixture(scope="session")
def manifests() -> dict[str, dict[str, Any]]:
    """Kubernetes manifests by file name (one document per file)."""
    out: dict[str, dict[str, Any]] = {}
    for path in sorted(KUBERNETES.glob("*.yaml")):
        with path.open(encoding="utf-8") as fh:
            docs = [d for d in yaml.safe_load_all(fh) if d is not None]
        assert len(docs) == 1, f"{path.name}: expected one document, found {len(docs)}"
        out[path.name] = docs[0]
    return out


@pytest.fixture(scope="session")
def k8s_qroute_toml(manifests: dict[str, dict[str, Any]]) -> str:
    """The qroute.toml carried by the ConfigMap."""
    text = manifests["configmap.yaml"]["data"]["qroute.toml"]
    assert isinstance(text, str)
    return text


@pytest.fixture(scope="session")
def alerts() -> dict[str, Any]:
    data = load_yaml(ALERTS)
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="session")
def dashboard() -> dict[str, Any]:
    data = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="session")
def promtool() -> str:
    """Path of promtool. Missing: skipped locally, a failure in CI (where .ci/run installs it)."""
    found = shutil.which("promtool")
    if found is not None:
        return found
    message = "promtool not found: apt-get install prometheus (Debian ships promtool in it)"
    if in_ci(os.environ):
        pytest.fail(f"{message}; CI must run the Prometheus rule checks", pytrace=False)
    pytest.skip(message)
