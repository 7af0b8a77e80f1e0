"""The Kafka side of qroute: consume jobs, run them through a `Processor`, publish, commit.

`run_worker(settings, processor)` runs a worker until SIGTERM; `build_worker` gives
an unstarted `Worker` for embedding and tests. `Finished`, `Deferred` and `Processor`
are the seam to the attempt loop (`qroute.execute`).
"""

from qroute.worker.intake import KnownModel, known_models
from qroute.worker.loop import Worker
from qroute.worker.observe import WorkerCounters, WorkerMetrics, WorkerPhase
from qroute.worker.processing import Deferred, Finished, Processor
from qroute.worker.run import build_worker, run_worker

__all__ = [
    "Deferred",
    "Finished",
    "KnownModel",
    "Processor",
    "Worker",
    "WorkerCounters",
    "WorkerMetrics",
    "WorkerPhase",
    "build_worker",
    "known_models",
    "run_worker",
]
