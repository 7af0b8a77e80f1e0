"""Logs, metrics and the ops HTTP endpoint (see docs/metrics.md).

- `metrics`: `Metrics` (Prometheus collectors behind typed methods), `METRIC_NAMES`;
- `logging`: `configure_logging`, `job_context`, the forbidden-key safety net;
- `http`: `OpsServer` serving /metrics, /healthz and /readyz.

Nothing is imported here, so `qroute.observability.metrics` stays cheap to import.
"""
