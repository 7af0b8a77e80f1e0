"""deploy/Dockerfile, parsed (Docker cannot run here): stages, user, health check, entry point."""

from __future__ import annotations

import json
from typing import Any

import pytest
from dockerfile_parse import DockerfileParser

from qroute.config import WorkerSettings
from tests.deploy.files import DEPLOY, ROOT, WORKER_CONFIG_PATH

DOCKERFILE = DEPLOY / "Dockerfile"
BUILD_TOOLS = ("gcc", "build-essential", "apt-get", "make ", "cargo", "rustc")

Instruction = dict[str, Any]


@pytest.fixture(scope="module")
def stages() -> list[list[Instruction]]:
    """Instructions grouped by stage (each begins with its FROM)."""
    out: list[list[Instruction]] = []
    for inst in DockerfileParser(path=str(DOCKERFILE)).structure:
        if inst["instruction"] == "FROM":
            out.append([])
        if out and inst["instruction"] != "COMMENT":
            out[-1].append(inst)
    return out


def values(stage: list[Instruction], instruction: str) -> list[str]:
    return [str(i["value"]) for i in stage if i["instruction"] == instruction]


class TestImage:
    """The runtime stage is small, non-root and runs the worker."""

    def test_multi_stage_on_python_311_slim(self, stages: list[list[Instruction]]) -> None:
        """A build stage and a runtime stage, both on the python:3.11-slim base."""
        parser = DockerfileParser(path=str(DOCKERFILE))
        assert len(stages) >= 2
        assert set(parser.parent_images) == {"python:3.11-slim"}

    def test_runtime_stage_copies_only_the_built_environment(self, stages: list[list[Instruction]]) -> None:
        """The final stage takes the virtualenv from the build stage and installs nothing itself."""
        final = stages[-1]
        copies = values(final, "COPY")
        assert copies, "nothing copied into the runtime stage"
        assert all(c.startswith("--from=build ") for c in copies), copies
        for run in values(final, "RUN"):
            assert "pip install" not in run
            assert not any(tool in run for tool in BUILD_TOOLS), run

    def test_runs_as_a_numeric_non_root_user(self, stages: list[list[Instruction]]) -> None:
        """USER is a numeric uid other than 0 (Kubernetes runAsNonRoot can verify it)."""
        (user,) = values(stages[-1], "USER")
        uid = user.split(":")[0]
        assert uid.isdigit()
        assert int(uid) != 0

    def test_entry_point_is_the_worker(self, stages: list[list[Instruction]]) -> None:
        """ENTRYPOINT qroute worker, CMD the config path compose and Kubernetes mount."""
        (entrypoint,) = values(stages[-1], "ENTRYPOINT")
        (cmd,) = values(stages[-1], "CMD")
        assert json.loads(entrypoint) == ["qroute", "worker"]
        assert json.loads(cmd) == ["--config", WORKER_CONFIG_PATH]

    def test_health_check_probes_healthz_without_curl(self, stages: list[list[Instruction]]) -> None:
        """The health check asks /healthz on the default metrics port with Python's urllib."""
        (check,) = values(stages[-1], "HEALTHCHECK")
        port = WorkerSettings().metrics_port
        assert "CMD" in check
        assert "/healthz" in check
        assert f"'{port}'" in check
        assert "urllib.request" in check
        assert "curl" not in check
        assert str(port) in values(stages[-1], "EXPOSE")

    def test_build_context_excludes_secrets(self) -> None:
        """The Dockerfile's ignore file allow-lists sources, so .env and .venv never reach the build."""
        lines = [
            line.strip()
            for line in (DEPLOY / "Dockerfile.dockerignore").read_text(encoding="utf-8").splitlines()
            if line.strip() and not line.startswith("#")
        ]
        assert lines[0] == "*"
        included = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
        assert included == {"pyproject.toml", "README.md", "src"}
        for path in included:
            assert (ROOT / path).exists(), path
