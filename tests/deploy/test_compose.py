"""docker-compose.yml: valid by the compose spec, wired so `docker compose up` comes up in order."""

from __future__ import annotations

import base64
import copy
import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from compose_spec import PyCompose

from qroute.catalog.load import active_routes, build_catalog, default_catalog
from qroute.config import ConfigError, Settings, load_settings, validate_runtime
from qroute.sim.config import default_config
from tests.deploy.files import COMPOSE_CONFIG, PROMETHEUS_CONFIG, ROOT, WORKER_CONFIG_PATH, load_yaml

SIM_ENV = {"QROUTE_SIM_API_KEY": "sim-local"}
WORKERS = ("worker-1", "worker-2")


def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    out = compose["services"]
    assert isinstance(out, dict)
    return out


def depends_on(service: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """depends_on in long form (the short list form means condition service_started)."""
    raw = service.get("depends_on", {})
    if isinstance(raw, list):
        return {name: {"condition": "service_started"} for name in raw}
    assert isinstance(raw, dict)
    return raw


def published_ports(service: dict[str, Any]) -> list[int]:
    """Host ports of the short syntax `[HOST_IP:]HOST:CONTAINER`."""
    out: list[int] = []
    for entry in service.get("ports", []):
        match = re.fullmatch(r"(?:[\d.]+:)?(\d+):(\d+)(?:/tcp|/udp)?", str(entry))
        assert match, f"unexpected port syntax {entry!r}: use HOST:CONTAINER"
        out.append(int(match.group(1)))
    return out


def flag(args: list[str], name: str) -> str:
    """The value after `name` in an argument list."""
    assert name in args, f"{name} missing from {args}"
    return args[args.index(name) + 1]


def compose_settings(env: dict[str, str]) -> Settings:
    return load_settings(COMPOSE_CONFIG, env=env)


def env_example() -> dict[str, str]:
    """Active (uncommented) assignments of .env.example."""
    out: dict[str, str] = {}
    for line in (ROOT / ".env.example").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            out[key.strip()] = value.strip()
    return out


class TestComposeSpec:
    """The file is accepted by a compose-spec validating parser."""

    def test_file_validates_against_the_compose_spec(self, compose: dict[str, Any]) -> None:
        """compose-spec (the Rust compose_spec parser and its pydantic models) accepts the whole file."""
        parsed = PyCompose.from_json(json.dumps(compose))
        parsed.validate()
        spec = parsed.to_spec()
        assert spec.services is not None
        assert set(spec.services) == {"kafka", "topics", *WORKERS, "sim", "prometheus", "grafana"}

    @pytest.mark.parametrize(
        ("path", "value"),
        [
            (("services", "worker-1", "restrat"), "always"),
            (("services", "topics", "depends_on", "kafka", "condition"), "service_ready"),
            (("services", "kafka", "healthcheck", "interval"), "ten seconds"),
        ],
    )
    def test_validator_rejects_mistakes(
        self, compose: dict[str, Any], path: tuple[str, ...], value: str
    ) -> None:
        """The same parser refuses a typo'd key, an unknown condition and a malformed duration."""
        broken = copy.deepcopy(compose)
        node = broken
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
        with pytest.raises(ValueError):  # noqa: PT012 - a failure may come from either step
            parsed = PyCompose.from_json(json.dumps(broken))
            parsed.validate()
            parsed.to_spec()


class TestWiring:
    """Services reference each other correctly and start in order."""

    def test_every_dependency_exists(self, compose: dict[str, Any]) -> None:
        """Each depends_on target is a service of the file."""
        names = set(services(compose))
        for name, service in services(compose).items():
            assert set(depends_on(service)) <= names, name

    def test_always_on_services_do_not_depend_on_profiled_ones(self, compose: dict[str, Any]) -> None:
        """A service without a profile never depends on one that only a profile starts."""
        profiled = {n for n, s in services(compose).items() if s.get("profiles")}
        for name, service in services(compose).items():
            if not service.get("profiles"):
                assert not set(depends_on(service)) & profiled, name

    def test_healthy_conditions_have_health_checks(self, compose: dict[str, Any]) -> None:
        """service_healthy waits on a service that defines an enabled health check."""
        svcs = services(compose)
        for name, service in svcs.items():
            for target, cond in depends_on(service).items():
                if cond.get("condition") == "service_healthy":
                    check = svcs[target].get("healthcheck", {})
                    assert check.get("test"), f"{name} -> {target}"
                    assert not check.get("disable"), f"{name} -> {target}"

    def test_start_order(self, compose: dict[str, Any]) -> None:
        """Kafka healthy, then topics created, then workers; Grafana after a ready Prometheus."""
        svcs = services(compose)
        assert depends_on(svcs["topics"])["kafka"]["condition"] == "service_healthy"
        for worker in WORKERS:
            assert depends_on(svcs[worker])["topics"]["condition"] == "service_completed_successfully"
        assert depends_on(svcs["grafana"])["prometheus"]["condition"] == "service_healthy"

    def test_one_shot_topic_service_is_not_restarted_forever(self, compose: dict[str, Any]) -> None:
        """`topics` exits after creating topics, so it must not be restarted after success."""
        assert services(compose)["topics"].get("restart", "no") in ("no", "on-failure")

    def test_published_host_ports_do_not_clash(self, compose: dict[str, Any]) -> None:
        """No two services (profiles included) publish the same host port."""
        ports = [p for s in services(compose).values() for p in published_ports(s)]
        assert ports, "nothing is published"
        assert len(ports) == len(set(ports)), sorted(ports)

    def test_prometheus_scrapes_each_worker_on_its_metrics_port(self, compose: dict[str, Any]) -> None:
        """The scrape targets are exactly the worker services at worker.metrics_port."""
        port = compose_settings(SIM_ENV).worker.metrics_port
        config = load_yaml(PROMETHEUS_CONFIG)
        targets = {
            t for job in config["scrape_configs"] for sc in job["static_configs"] for t in sc["targets"]
        }
        assert targets == {f"{w}:{port}" for w in WORKERS}
        assert set(WORKERS) <= set(services(compose))

    def test_bind_mounted_files_exist(self, compose: dict[str, Any]) -> None:
        """Every ./relative bind-mount source is in the repository."""
        for name, service in services(compose).items():
            for volume in service.get("volumes", []):
                source = str(volume).split(":")[0]
                if source.startswith("./"):
                    assert (ROOT / source).exists(), f"{name}: {source}"


class TestWorkers:
    """The two workers get their config, keys, health check and drain time."""

    @pytest.mark.parametrize("worker", WORKERS)
    def test_config_path_is_mounted(self, compose: dict[str, Any], worker: str) -> None:
        """The --config path of the command is the target of a read-only mount of the compose config."""
        service = services(compose)[worker]
        path = flag(service["command"], "--config")
        assert path == WORKER_CONFIG_PATH
        mounts = {str(v).split(":")[1]: str(v) for v in service["volumes"]}
        assert path in mounts
        source, _, mode = mounts[path].split(":")
        assert (ROOT / source).resolve() == COMPOSE_CONFIG
        assert mode == "ro"

    def test_topics_service_creates_topics_from_the_same_config(self, compose: dict[str, Any]) -> None:
        """`topics` runs `qroute topics create` against the mounted worker config."""
        service = services(compose)["topics"]
        assert service["entrypoint"] == ["qroute", "topics", "create"]
        path = flag(service["command"], "--config")
        assert any(
            str(v).split(":")[:2] == ["./deploy/qroute.compose.toml", path] for v in service["volumes"]
        )
        assert service["env_file"] == services(compose)[WORKERS[0]]["env_file"], "same QROUTE_* overrides"

    @pytest.mark.parametrize("worker", WORKERS)
    def test_keys_come_from_an_uncommitted_env_file(self, compose: dict[str, Any], worker: str) -> None:
        """Keys are read from .env (optional, so a keyless sim run needs none), which git ignores."""
        env_files = services(compose)[worker]["env_file"]
        assert env_files == [{"path": ".env", "required": False}]
        ignored = (ROOT / ".gitignore").read_text(encoding="utf-8").splitlines()
        assert ".env" in ignored
        assert "environment" not in services(compose)[worker], "keys belong in .env, not in the file"

    @pytest.mark.parametrize("worker", WORKERS)
    def test_stop_grace_period_exceeds_drain_timeout(self, compose: dict[str, Any], worker: str) -> None:
        """Compose waits longer than worker.drain_timeout_s before it kills a stopping worker."""
        grace = services(compose)[worker]["stop_grace_period"]
        match = re.fullmatch(r"(\d+)s", grace)
        assert match, grace
        assert int(match.group(1)) > compose_settings(SIM_ENV).worker.drain_timeout_s

    @pytest.mark.parametrize("worker", WORKERS)
    def test_health_check_probes_healthz_on_the_metrics_port(
        self, compose: dict[str, Any], worker: str
    ) -> None:
        """The container health check asks the worker's own /healthz."""
        test = " ".join(services(compose)[worker]["healthcheck"]["test"])
        port = compose_settings(SIM_ENV).worker.metrics_port
        assert f"http://127.0.0.1:{port}/healthz" in test


class TestKafka:
    """Kafka runs in KRaft mode with listeners for the compose network and for the host."""

    @staticmethod
    def env(compose: dict[str, Any]) -> dict[str, str]:
        return {k: str(v) for k, v in services(compose)["kafka"]["environment"].items()}

    @staticmethod
    def listeners(value: str) -> dict[str, str]:
        """NAME://host:port,... as name -> host:port."""
        return dict(item.split("://", 1) for item in value.split(","))

    def test_official_image_in_kraft_mode(self, compose: dict[str, Any]) -> None:
        """apache/kafka, combined broker+controller, and no ZooKeeper setting."""
        env = self.env(compose)
        assert services(compose)["kafka"]["image"].startswith("apache/kafka:")
        assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
        assert not any("ZOOKEEPER" in key for key in env)
        controller = env["KAFKA_CONTROLLER_LISTENER_NAMES"]
        port = self.listeners(env["KAFKA_LISTENERS"])[controller].rsplit(":", 1)[1]
        assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == f"{env['KAFKA_NODE_ID']}@kafka:{port}"

    def test_cluster_id_is_a_kafka_uuid(self, compose: dict[str, Any]) -> None:
        """CLUSTER_ID is 16 bytes in unpadded base64url, as `kafka-storage format` requires."""
        raw = self.env(compose)["CLUSTER_ID"]
        assert len(raw) == 22
        assert len(base64.urlsafe_b64decode(raw + "==")) == 16

    def test_listeners_are_declared_and_mapped(self, compose: dict[str, Any]) -> None:
        """Every advertised listener is a bound listener with a security protocol."""
        env = self.env(compose)
        bound = self.listeners(env["KAFKA_LISTENERS"])
        advertised = self.listeners(env["KAFKA_ADVERTISED_LISTENERS"])
        protocols = dict(item.split(":") for item in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(","))
        assert set(advertised) <= set(bound) <= set(protocols)
        assert env["KAFKA_INTER_BROKER_LISTENER_NAME"] in advertised

    def test_workers_use_the_internal_listener_and_the_host_the_published_one(
        self, compose: dict[str, Any]
    ) -> None:
        """The config's bootstrap is advertised on the compose network; localhost:PORT is published."""
        env = self.env(compose)
        advertised = set(self.listeners(env["KAFKA_ADVERTISED_LISTENERS"]).values())
        bootstrap = compose_settings(SIM_ENV).kafka.bootstrap_servers
        assert bootstrap in advertised
        assert bootstrap is not None
        assert bootstrap.startswith("kafka:")
        host = {a for a in advertised if a.startswith("localhost:")}
        assert len(host) == 1
        assert int(host.pop().split(":")[1]) in published_ports(services(compose)["kafka"])

    def test_data_directory_is_a_volume(self, compose: dict[str, Any]) -> None:
        """KAFKA_LOG_DIRS is on the named volume, so a restart keeps the topics."""
        log_dir = self.env(compose)["KAFKA_LOG_DIRS"]
        targets = {str(v).split(":")[1] for v in services(compose)["kafka"]["volumes"]}
        assert log_dir in targets


class TestWorkerConfig:
    """deploy/qroute.compose.toml is a working config, and its sim providers match the simulator."""

    def test_loads_and_passes_runtime_checks_with_the_simulator(self) -> None:
        """With QROUTE_SIM_API_KEY set, the config validates and only sim-* routes are active."""
        settings = compose_settings(SIM_ENV)
        catalog = build_catalog(settings, env=SIM_ENV)
        validate_runtime(settings, catalog, SIM_ENV)
        routes = active_routes(catalog, env=SIM_ENV)
        assert routes
        assert {r.provider.name for r in routes} == {"sim-cheap", "sim-mid", "sim-premium", "sim-flaky"}

    def test_sim_providers_are_off_without_the_switch(self) -> None:
        """Without QROUTE_SIM_API_KEY (and no real key) no route is active: the worker refuses to start."""
        settings = compose_settings({})
        catalog = build_catalog(settings, env={})
        assert active_routes(catalog, env={}) == []
        with pytest.raises(ConfigError, match="QROUTE_SIM_API_KEY"):
            validate_runtime(settings, catalog, {})

    def test_sim_providers_point_at_the_sim_service(self, compose: dict[str, Any]) -> None:
        """Each sim-* base_url is http://sim:PORT/NAME/v1 with the port `qroute sim` listens on."""
        sim = services(compose)["sim"]
        assert sim["profiles"] == ["sim"]
        assert sim["entrypoint"] == ["qroute", "sim"]
        port = int(flag(sim["command"], "--port"))
        assert flag(sim["command"], "--host") == "0.0.0.0"
        served = {p.name: p for p in default_config().providers}
        settings = compose_settings(SIM_ENV)
        sim_providers = {n: p for n, p in settings.providers.items() if n.startswith("sim-")}
        assert sim_providers
        for name, provider in sim_providers.items():
            url = urlsplit(provider.base_url)
            assert (url.hostname, url.port) == ("sim", port), name
            prefix = url.path.strip("/").split("/")
            assert len(prefix) == 2, provider.base_url
            assert prefix[1] == "v1", provider.base_url
            assert prefix[0] in served, f"{name}: the simulator serves no provider {prefix[0]!r}"
            assert provider.family == served[prefix[0]].family, name

    def test_sim_models_carry_the_simulator_prices(self) -> None:
        """Every sim-* model exists at its simulated provider with the same prices (ledger == costs)."""
        served = {p.name: p for p in default_config().providers}
        settings = compose_settings(SIM_ENV)
        models = [m for m in settings.models if m.provider.startswith("sim-")]
        assert len(models) == sum(len(p.models) for p in served.values())
        for spec in models:
            sim_name = urlsplit(settings.providers[spec.provider].base_url).path.strip("/").split("/")[0]
            served_model = served[sim_name].model(spec.model)
            assert served_model is not None, spec.route_id
            assert spec.input_per_m == served_model.input_per_m, spec.route_id
            assert spec.cached_input_price == served_model.cached_input_per_m, spec.route_id
            assert spec.output_per_m == served_model.output_per_m, spec.route_id
            assert spec.context_window <= served_model.context_window, spec.route_id


class TestEnvExample:
    """.env.example documents every key and commits none."""

    def test_names_every_catalog_key_variable(self) -> None:
        """Each provider key variable of the shipped catalog appears in the template."""
        text = (ROOT / ".env.example").read_text(encoding="utf-8")
        names = {p.api_key_env for p in default_catalog().providers.values() if p.api_key_env}
        assert names
        for name in names:
            assert re.search(rf"^#?\s*{name}=", text, re.MULTILINE), name

    def test_sets_no_real_provider_key(self) -> None:
        """No provider key variable has a value; the simulator switch and profile do."""
        active = env_example()
        names = {p.api_key_env for p in default_catalog().providers.values() if p.api_key_env}
        assert not names & set(active)
        assert active.get("COMPOSE_PROFILES") == "sim"
        assert active.get("QROUTE_SIM_API_KEY")

    def test_sim_key_name_matches_the_compose_config(self) -> None:
        """The switch variable of .env.example is the one the sim-* providers read."""
        settings = compose_settings(SIM_ENV)
        switches = {p.api_key_env for n, p in settings.providers.items() if n.startswith("sim-")}
        assert switches == {"QROUTE_SIM_API_KEY"}
        assert Path(ROOT / ".env.example").read_text(encoding="utf-8").count("QROUTE_SIM_API_KEY=") == 1
