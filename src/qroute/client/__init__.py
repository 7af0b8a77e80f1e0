"""The producer SDK: submit jobs to qroute and await their results.

`QRouteClient` (async) and `SyncQRouteClient` (blocking, for code without an event
loop) publish jobs with acks=all and correlate results by job id over one shared
reply reader. Errors are typed: `JobRejected` (invalid, nothing sent),
`SubmitFailed`, `ResultTimeout`, `TopicMissing`, `ClientClosed`; all derive from
`ClientError`.
"""

from qroute.client.async_client import QRouteClient
from qroute.client.errors import (
    ClientClosed,
    ClientError,
    JobRejected,
    ResultTimeout,
    SubmitFailed,
    TopicMissing,
)
from qroute.client.replies import ResultStream
from qroute.client.sync_client import SyncQRouteClient

__all__ = [
    "ClientClosed",
    "ClientError",
    "JobRejected",
    "QRouteClient",
    "ResultStream",
    "ResultTimeout",
    "SubmitFailed",
    "SyncQRouteClient",
    "TopicMissing",
]
