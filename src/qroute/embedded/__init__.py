"""Local Kafka-compatible broker (Tansu, memory only) for the demo and tests on Docker-less machines."""

from qroute.embedded.binary import BrokerBinaryNotFoundError, find_tansu_binary
from qroute.embedded.broker import BrokerStartError, EmbeddedBroker

__all__ = ["BrokerBinaryNotFoundError", "BrokerStartError", "EmbeddedBroker", "find_tansu_binary"]
