"""`qroute demo`: the whole flow on one machine, with nothing configured.

An embedded Kafka-compatible broker, the provider simulator (four simulated
providers: a cheap one with a tight rate limit, a mid-priced one, a premium one
and a flaky one with an outage), two `qroute worker` processes, and a nightly
batch of summarisation jobs cut from a public-domain book shipped in the
package. The summary at the end is computed from the result, cost and
dead-letter topics only.
"""

from qroute.demo.run import DemoOptions, run_demo
from qroute.demo.summary import DemoSummary

__all__ = ["DemoOptions", "DemoSummary", "run_demo"]
