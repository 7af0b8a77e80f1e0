"""`qroute bench`: measure a worker process against the embedded broker and the simulator.

Three scenarios (`qroute.bench.scenarios`): CPU per job at zero provider latency,
throughput against 1-second providers with the one-job-per-partition baseline,
and routing under a cheap route's rate limit. The worker runs as a real
`qroute worker` subprocess so only its own CPU and memory are counted; see
docs/benchmarks.md for what each number means.
"""

from qroute.bench.report import Check, Metric, ScenarioReport
from qroute.bench.runner import SCENARIOS, BenchOptions, run_bench

__all__ = ["SCENARIOS", "BenchOptions", "Check", "Metric", "ScenarioReport", "run_bench"]
