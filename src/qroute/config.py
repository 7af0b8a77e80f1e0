"""Settings: one typed object, from `qroute.toml` and `QROUTE_*` environment variables.

Precedence (highest first): environment variables, the TOML file, defaults.
Nested fields use `__` in variable names: `QROUTE_KAFKA__BOOTSTRAP_SERVERS`,
`QROUTE_WORKER__MAX_IN_FLIGHT`. `QROUTE_CONFIG` names the TOML file.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from qroute.catalog.types import ModelSpec, ProviderSpec

DEFAULT_CONFIG_PATH = Path("qroute.toml")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class KafkaSettings(_Section):
    """How to reach the broker."""

    bootstrap_servers: str | None = Field(
        default=None,
        description="host:port[,host:port]. Unset: commands that can start the embedded broker do so.",
    )
    client_id: str = "qroute"
    session_timeout_ms: int = Field(default=10_000, ge=100)
    heartbeat_interval_ms: int = Field(default=3_000, ge=50)
    max_poll_interval_ms: int = Field(default=300_000, ge=1_000)
    request_timeout_ms: int = Field(default=40_000, ge=1_000)
    max_request_size: int = Field(default=4 * 1024 * 1024, ge=1024, description="Largest record produced.")
    linger_ms: int = Field(default=5, ge=0)
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password_env: str | None = Field(default=None, description="Variable holding the SASL password.")


class TopicSettings(_Section):
    """Topic names and how `qroute topics create` makes them."""

    jobs: str = "qroute.jobs"
    results: str = "qroute.results"
    costs: str = "qroute.costs"
    dlq: str = "qroute.dlq"
    delay_prefix: str = Field(default="qroute.jobs.delay", description="Delay topics are PREFIX.<seconds>s.")
    delay_tiers_s: list[int] = Field(default_factory=lambda: [5, 30, 300], min_length=1)
    reply_prefixes: list[str] = Field(
        default_factory=lambda: ["qroute.results"],
        description="A job's reply_to must start with one of these; otherwise the default results topic is used.",
    )
    partitions: int = Field(default=8, ge=1)
    replication_factor: int = Field(default=1, ge=1)
    create_missing: bool = Field(default=False, description="Worker creates missing topics at start-up.")

    def delay_topic(self, tier_s: int) -> str:
        return f"{self.delay_prefix}.{tier_s}s"


class WorkerSettings(_Section):
    """The consume loop's knobs. Defaults suit one worker process on 2 cores."""

    group_id: str = "qroute-workers"
    max_in_flight: int = Field(default=512, ge=1, description="Jobs being processed at once, all partitions.")
    max_uncommitted_per_partition: int = Field(
        default=2_000,
        ge=1,
        description="Pause a partition when this many of its records are not yet committed.",
    )
    commit_interval_s: float = Field(default=1.0, gt=0)
    drain_timeout_s: float = Field(
        default=30.0, ge=0, description="On SIGTERM, wait this long for jobs in flight."
    )
    max_job_bytes: int = Field(default=1024 * 1024, ge=256)
    metrics_host: str = "0.0.0.0"
    metrics_port: int = Field(default=9464, ge=0, le=65535, description="0 turns the HTTP endpoint off.")


class RoutingSettings(_Section):
    """How the attempt loop trades money against time."""

    max_attempts: int = Field(default=6, ge=1, description="Attempts per job unless the job says otherwise.")
    defer_threshold_s: float = Field(
        default=5.0,
        ge=0,
        description="Waits longer than this go to a delay topic instead of sleeping in process.",
    )
    deadline_margin_s: float = Field(
        default=2.0, ge=0, description="Safety margin added to expected latency."
    )
    default_expected_output_ratio: float = Field(
        default=0.5, gt=0, le=1, description="Expected output tokens as a share of max_tokens, for estimates."
    )
    backoff_base_s: float = Field(default=0.5, gt=0)
    backoff_cap_s: float = Field(default=30.0, gt=0)
    circuit_failure_threshold: int = Field(default=5, ge=1)
    circuit_failure_rate: float = Field(default=0.5, gt=0, le=1)
    circuit_window_s: float = Field(default=30.0, gt=0)
    circuit_min_calls: int = Field(default=20, ge=1)
    circuit_open_s: float = Field(default=10.0, gt=0)


class Settings(_Section):
    """Everything a qroute process reads at start-up."""

    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    topics: TopicSettings = Field(default_factory=TopicSettings)
    worker: WorkerSettings = Field(default_factory=WorkerSettings)
    routing: RoutingSettings = Field(default_factory=RoutingSettings)
    catalog_file: Path | None = Field(
        default=None, description="Replace the shipped catalog with this TOML file (same format)."
    )
    use_default_catalog: bool = Field(default=True, description="Start from the shipped catalog.")
    providers: dict[str, ProviderSpec] = Field(
        default_factory=dict, description="Providers to add, or to replace by name."
    )
    models: list[ModelSpec] = Field(
        default_factory=list, description="Models to add, or to replace by route id."
    )
