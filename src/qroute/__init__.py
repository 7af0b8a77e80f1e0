"""qroute: route LLM jobs from Kafka to the cheapest provider that satisfies them."""

from qroute.models import CostRecord, DeadLetter, Job, Message, Result

__all__ = ["CostRecord", "DeadLetter", "Job", "Message", "Result"]
__version__ = "0.1.0"
