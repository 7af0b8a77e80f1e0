"""Which adapter speaks which API family."""

from __future__ import annotations

from qroute.catalog.types import ApiFamily
from qroute.providers.anthropic import AnthropicAdapter
from qroute.providers.base import Adapter
from qroute.providers.gemini import GeminiAdapter
from qroute.providers.openai import OpenAIAdapter

_ADAPTERS: dict[ApiFamily, Adapter] = {
    "openai": OpenAIAdapter(),
    "anthropic": AnthropicAdapter(),
    "gemini": GeminiAdapter(),
}


def adapter_for(family: ApiFamily) -> Adapter:
    """The shared, stateless adapter for `family` (KeyError only for a family the catalog cannot hold)."""
    return _ADAPTERS[family]
