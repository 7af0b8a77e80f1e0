"""deploy/kubernetes: schema-valid manifests, tied together by the kustomization, consistent with qroute.toml.

Built-in kinds are validated offline against the Kubernetes OpenAPI schemas by
kubernetes-validate (strict: unknown fields fail). It has no schemas for the
KEDA ScaledObject and Prometheus Operator ServiceMonitor CRDs, nor for the
Kustomization file, so those are checked structurally here: apiVersion, kind and
the fields their controllers require.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
from dockerfile_parse import DockerfileParser

from qroute.catalog.load import build_catalog
from qroute.config import Settings, load_settings, validate_runtime
from tests.deploy.files import DEPLOY, KUBERNETES, WORKER_CONFIG_PATH

Manifests = dict[str, dict[str, Any]]

KUBERNETES_VERSIONS = ("1.30.0", "1.37.0")
"""Oldest supported (the preStop `sleep` action is on by default from 1.30) and newest schemas shipped."""

CRDS = {
    "scaledobject.yaml": ("keda.sh/v1alpha1", "ScaledObject"),
    "servicemonitor.yaml": ("monitoring.coreos.com/v1", "ServiceMonitor"),
}
KUSTOMIZATION = "kustomization.yaml"
POD_LABELS = {"app.kubernetes.io/name": "qroute", "app.kubernetes.io/component": "worker"}
PROVIDER_KEY_ENV = {"OPENAI_API_KEY": "sk-test"}


def built_in(manifests: Manifests) -> list[str]:
    return [name for name in manifests if name not in CRDS and name != KUSTOMIZATION]


def container(manifests: Manifests) -> dict[str, Any]:
    containers = manifests["deployment.yaml"]["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    worker = containers[0]
    assert isinstance(worker, dict)
    return worker


@pytest.fixture(scope="module")
def k8s_settings(k8s_qroute_toml: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """The ConfigMap's qroute.toml loaded like the worker loads it."""
    path: Path = tmp_path_factory.mktemp("k8s") / "qroute.toml"
    path.write_text(k8s_qroute_toml, encoding="utf-8")
    return load_settings(path, env=PROVIDER_KEY_ENV)


class TestSchemas:
    """Each manifest is valid for the API server."""

    @pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
    def test_built_in_kinds_validate_offline(self, manifests: Manifests, version: str) -> None:
        """Deployment, Service, ConfigMap, PDB, ... validate strictly against the Kubernetes schemas."""
        names = built_in(manifests)
        assert {"deployment.yaml", "configmap.yaml", "service.yaml", "poddisruptionbudget.yaml"} <= set(names)
        for name in names:
            kubernetes_validate.validate(manifests[name], version, strict=True)

    def test_validator_rejects_an_unknown_field(self, manifests: Manifests) -> None:
        """A misspelt field is an error, so the check above can fail."""
        broken = copy.deepcopy(manifests["deployment.yaml"])
        spec = broken["spec"]["template"]["spec"]
        spec["terminationGracePeriodSecond"] = spec.pop("terminationGracePeriodSeconds")
        with pytest.raises(kubernetes_validate.ValidationError):
            kubernetes_validate.validate(broken, KUBERNETES_VERSIONS[-1], strict=True)

    @pytest.mark.parametrize("name", sorted(CRDS))
    def test_crds_are_unknown_to_the_validator(self, manifests: Manifests, name: str) -> None:
        """The CRD kinds have no offline schema: they are checked structurally by the tests below."""
        with pytest.raises(kubernetes_validate.SchemaNotFoundError):
            kubernetes_validate.validate(manifests[name], KUBERNETES_VERSIONS[-1], strict=True)

    @pytest.mark.parametrize("name", sorted(CRDS))
    def test_crd_identity(self, manifests: Manifests, name: str) -> None:
        """Each CRD manifest names its API group version and kind, and has a name."""
        api_version, kind = CRDS[name]
        doc = manifests[name]
        assert (doc["apiVersion"], doc["kind"]) == (api_version, kind)
        assert doc["metadata"]["name"]

    def test_every_object_carries_the_app_label(self, manifests: Manifests) -> None:
        """All objects are findable with app.kubernetes.io/name=qroute."""
        for name, doc in manifests.items():
            if name != KUSTOMIZATION:
                assert doc["metadata"]["labels"]["app.kubernetes.io/name"] == "qroute", name


class TestKustomization:
    """kubectl apply -k deploy/kubernetes applies every manifest."""

    def test_lists_every_manifest_exactly_once(self, manifests: Manifests) -> None:
        """resources == all other YAML files of the directory, without duplicates."""
        kust = manifests[KUSTOMIZATION]
        assert (kust["apiVersion"], kust["kind"]) == ("kustomize.config.k8s.io/v1beta1", "Kustomization")
        resources = kust["resources"]
        assert len(resources) == len(set(resources))
        assert set(resources) == set(manifests) - {KUSTOMIZATION}
        assert not list(KUBERNETES.glob("*.yml")), "use .yaml so the kustomization check sees the file"

    def test_image_override_names_the_deployment_image(self, manifests: Manifests) -> None:
        """The `images` entry rewrites the image the Deployment actually uses."""
        image = container(manifests)["image"].rsplit(":", 1)[0]
        assert [i["name"] for i in manifests[KUSTOMIZATION]["images"]] == [image]

    def test_namespace_matches_the_namespace_manifest(self, manifests: Manifests) -> None:
        """Objects go into the namespace the kustomization also creates."""
        assert manifests[KUSTOMIZATION]["namespace"] == manifests["namespace.yaml"]["metadata"]["name"]


class TestWorkerDeployment:
    """Probes, drain and resources of the worker pods."""

    def test_config_map_is_mounted_where_the_worker_reads_it(self, manifests: Manifests) -> None:
        """--config points at the ConfigMap's qroute.toml key under the mount path."""
        worker = container(manifests)
        args = worker["args"]
        assert args[args.index("--config") + 1] == WORKER_CONFIG_PATH
        mount = next(m for m in worker["volumeMounts"] if m["name"] == "config")
        volumes = manifests["deployment.yaml"]["spec"]["template"]["spec"]["volumes"]
        source = next(v for v in volumes if v["name"] == "config")["configMap"]["name"]
        assert source == manifests["configmap.yaml"]["metadata"]["name"]
        key = WORKER_CONFIG_PATH.rsplit("/", 1)[1]
        assert f"{mount['mountPath']}/{key}" == WORKER_CONFIG_PATH
        assert key in manifests["configmap.yaml"]["data"]

    def test_grace_period_covers_pre_stop_and_drain(
        self, manifests: Manifests, k8s_settings: Settings
    ) -> None:
        """terminationGracePeriodSeconds > preStop pause + drain_timeout_s, with room to commit."""
        pod = manifests["deployment.yaml"]["spec"]["template"]["spec"]
        pre_stop = container(manifests)["lifecycle"]["preStop"]["sleep"]["seconds"]
        grace = pod["terminationGracePeriodSeconds"]
        assert grace >= pre_stop + k8s_settings.worker.drain_timeout_s + 10

    def test_probes_use_the_ops_endpoints(self, manifests: Manifests, k8s_settings: Settings) -> None:
        """Readiness asks /readyz and liveness /healthz, on the port the config serves them on."""
        worker = container(manifests)
        port = next(p for p in worker["ports"] if p["name"] == "metrics")
        assert port["containerPort"] == k8s_settings.worker.metrics_port
        assert worker["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}
        assert worker["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}

    def test_keys_come_from_a_secret(self, manifests: Manifests) -> None:
        """Provider keys are referenced from a Secret, never written in the manifests."""
        worker = container(manifests)
        assert worker["envFrom"] == [{"secretRef": {"name": "qroute-provider-keys"}}]
        assert "Secret" not in {doc.get("kind") for doc in manifests.values()}

    def test_resources_and_non_root(self, manifests: Manifests) -> None:
        """Requests are set, memory is capped, and the pod runs as the image's non-root uid."""
        worker = container(manifests)
        assert {"cpu", "memory"} <= set(worker["resources"]["requests"])
        assert "memory" in worker["resources"]["limits"]
        pod = manifests["deployment.yaml"]["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        image_user = DockerfileParser(path=str(DEPLOY / "Dockerfile")).structure
        user = [i["value"] for i in image_user if i["instruction"] == "USER"][-1]
        assert str(pod["securityContext"]["runAsUser"]) == user.split(":")[0]
        assert worker["securityContext"]["readOnlyRootFilesystem"] is True

    def test_replicas_are_left_to_the_autoscaler(self, manifests: Manifests) -> None:
        """No replicas field: `kubectl apply` must not fight KEDA."""
        assert "replicas" not in manifests["deployment.yaml"]["spec"]

    def test_config_map_is_a_working_config(self, k8s_settings: Settings) -> None:
        """The ConfigMap's qroute.toml loads and, given a provider key, passes the worker's start checks."""
        assert k8s_settings.kafka.bootstrap_servers
        assert k8s_settings.topics.create_missing is False
        validate_runtime(k8s_settings, build_catalog(k8s_settings, env=PROVIDER_KEY_ENV), PROVIDER_KEY_ENV)


class TestSelectors:
    """Service, PDB and ServiceMonitor select the worker pods."""

    def test_deployment_selects_its_pods(self, manifests: Manifests) -> None:
        """The Deployment's selector matches its own pod template."""
        deployment = manifests["deployment.yaml"]["spec"]
        assert deployment["selector"]["matchLabels"] == POD_LABELS
        assert POD_LABELS.items() <= deployment["template"]["metadata"]["labels"].items()

    def test_service_and_pdb_select_the_pods(self, manifests: Manifests) -> None:
        """Both select exactly the Deployment's pod labels."""
        assert manifests["service.yaml"]["spec"]["selector"] == POD_LABELS
        assert manifests["poddisruptionbudget.yaml"]["spec"]["selector"]["matchLabels"] == POD_LABELS

    def test_service_monitor_scrapes_the_metrics_port(self, manifests: Manifests) -> None:
        """It selects the Service by its labels and scrapes the named port's /metrics."""
        service = manifests["service.yaml"]
        monitor = manifests["servicemonitor.yaml"]["spec"]
        assert monitor["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
        port_names = {p["name"] for p in service["spec"]["ports"]}
        assert monitor["endpoints"]
        for endpoint in monitor["endpoints"]:
            assert endpoint["port"] in port_names
            assert endpoint["path"] == "/metrics"

    def test_unready_workers_are_still_scraped(self, manifests: Manifests) -> None:
        """Idle or draining workers fail /readyz but must keep reporting metrics."""
        assert manifests["service.yaml"]["spec"]["publishNotReadyAddresses"] is True


class TestScaledObject:
    """KEDA scales the Deployment on the consumer group's lag of the jobs topic."""

    @staticmethod
    def kafka_trigger(manifests: Manifests) -> dict[str, str]:
        triggers = manifests["scaledobject.yaml"]["spec"]["triggers"]
        kafka = [t for t in triggers if t["type"] == "kafka"]
        assert len(kafka) == 1
        metadata = kafka[0]["metadata"]
        assert isinstance(metadata, dict)
        return metadata

    def test_targets_the_worker_deployment(self, manifests: Manifests) -> None:
        """scaleTargetRef names the worker Deployment."""
        ref = manifests["scaledobject.yaml"]["spec"]["scaleTargetRef"]
        assert ref["name"] == manifests["deployment.yaml"]["metadata"]["name"]
        assert ref.get("kind", "Deployment") == "Deployment"

    def test_trigger_watches_the_configured_group_and_topic(
        self, manifests: Manifests, k8s_settings: Settings
    ) -> None:
        """bootstrapServers, consumerGroup and topic are those of the ConfigMap's qroute.toml."""
        trigger = self.kafka_trigger(manifests)
        assert trigger["bootstrapServers"] == k8s_settings.kafka.bootstrap_servers
        assert trigger["consumerGroup"] == k8s_settings.worker.group_id
        assert trigger["topic"] == k8s_settings.topics.jobs

    def test_trigger_metadata_values_are_strings(self, manifests: Manifests) -> None:
        """KEDA reads trigger metadata as a map of strings; a bare YAML number is rejected."""
        trigger = self.kafka_trigger(manifests)
        assert all(isinstance(v, str) for v in trigger.values())
        assert int(trigger["lagThreshold"]) > 0
        assert trigger["allowIdleConsumers"] == "false"

    def test_replicas_bounded_by_partitions(self, manifests: Manifests, k8s_settings: Settings) -> None:
        """1 <= minReplicaCount <= maxReplicaCount <= topics.partitions: extra replicas would idle."""
        spec = manifests["scaledobject.yaml"]["spec"]
        assert 1 <= spec["minReplicaCount"] <= spec["maxReplicaCount"] <= k8s_settings.topics.partitions
