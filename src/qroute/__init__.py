"""qroute: route LLM jobs from Kafka to the cheapest provider that satisfies them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from qroute.models import CostRecord, DeadLetter, Job, Message, Result

if TYPE_CHECKING:
    from qroute.client import JobRejected, QRouteClient, ResultTimeout, SyncQRouteClient

__all__ = [
    "CostRecord",
    "DeadLetter",
    "Job",
    "JobRejected",
    "Message",
    "QRouteClient",
    "Result",
    "ResultTimeout",
    "SyncQRouteClient",
]
__version__ = "0.1.0"

# The SDK pulls in FastStream and aiokafka (about 0.3 s); import it on first use so that
# `import qroute.models` (and every worker module) does not pay for it.
_LAZY = frozenset({"JobRejected", "QRouteClient", "ResultTimeout", "SyncQRouteClient"})


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from qroute import client

        return getattr(client, name)
    raise AttributeError(f"module 'qroute' has no attribute {name!r}")
